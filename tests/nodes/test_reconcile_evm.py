# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""EVM vaults in reconciliation, against a real anvil: a Safe holding ETH and an ERC-20.

The watcher (`deposits.sync`) records the funding; the report then reconciles clean, also
after a transfer the workflow released and executed. ETH sent to the Safe behind the
service's back is an unrecorded deposit; a Safe execution the workflow never released (made
up and signed by owners directly, or recorded by the bare executor for a digest never
proposed) is an unauthorised spend; the report's hash is anchored in the
ReserveRegistry, recorded in the ledger and checked against both. A third party re-derives
the EVM section later from a ledger export and the node's state at the pinned block, and
rejects edited, forged or reorganised reports.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account import Account
from web3 import Web3

from reserve.errors import EVMError, ReconcileError, ReportRejected
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.reconcile import export, proof
from reserve.reconcile.evm import EVMTarget, anchor_report, verify_report_anchor
from reserve.reconcile.report import AuditorSigner, check_in
from reserve.reconcile.run import run_report
from reserve.reconcile.verify import Verdict, verify_report
from tests.support.evm_fixtures import (  # noqa: F401
    COLD_STORAGE,
    ETHER,
    THRESHOLD,
    VAULT_ETH,
    VAULT_TOKENS,
    Reserve,
    anvil,
    chain,
    deployed,
    rpc,
    w3,
)
from tests.support.reconcile_fixtures import auditor, resign, signed_ledger
from tests.support.reconcile_fixtures import export as export_ledger
from tests.support.workflow import EVM_POLICY, approve, propose, workflow_service
from wallets.evm import contracts, deposits, executor
from wallets.evm.adapter import EVMAdapter
from wallets.evm.demo import execute_with_keys
from wallets.evm.safe_tx import SafeTx, safe_tx_hash
from wallets.evm.transfer import ApprovedEVMTransfer, to_safe_tx
from wallets.evm.vault import read_state
from wallets.signer import evm as evm_signer

VAULT = "reserve-safe"


@pytest.fixture
def books(tmp_path: Path) -> Iterator[Ledger]:
    ledger = signed_ledger(tmp_path, "evm")
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture
def signer(tmp_path: Path) -> AuditorSigner:
    return auditor(tmp_path)


def sync(ledger: Ledger, reserve: Reserve) -> None:
    deposits.sync(ledger, reserve.w3, vault_id=VAULT, safe=reserve.deployment.safe,
                  tokens=[reserve.deployment.token], confirmations=1, from_block=0)


def report(ledger: Ledger, reserve: Reserve, signer: AuditorSigner) -> dict[str, Any]:
    target = EVMTarget(VAULT, reserve.deployment.safe, (reserve.deployment.token,), 0)
    document, entry = run_report(ledger, None, [], signer, evm=(reserve.w3, [target]))
    assert entry.kind == "reconcile.report"
    assert entry.payload["evm"]["summary"] == document["report"]["evm"]["summary"]
    return document


def rows(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["asset"]: row for row in document["report"]["evm"]["summary"]}


def test_clean_reconciliation(chain: Reserve, books: Ledger, signer: AuditorSigner) -> None:
    sync(books, chain)
    document = report(books, chain, signer)
    body = document["report"]
    assert body["evm"]["findings"] == []
    assert rows(document)["ETH"] == {"vault_id": VAULT, "asset": "ETH", "ledger": str(VAULT_ETH),
                                     "chain": str(VAULT_ETH), "difference": "0",
                                     "status": "ok", "unit": "wei"}
    assert rows(document)[chain.deployment.token]["chain"] == str(VAULT_TOKENS)
    assert export.overall_status(body) == "ok"
    pin = body["evm"]["block"]
    assert pin["hash"] == "0x" + bytes(chain.w3.eth.get_block(pin["number"])["hash"]).hex()
    assert body["block"] == {"network": f"evm:{pin['chain_id']}", "height": pin["number"],
                             "blockhash": pin["hash"]}
    assert f"EVM vaults at block {pin['number']}" in export.to_html(document)


def test_eth_sent_behind_the_back_is_an_unrecorded_deposit(
        chain: Reserve, books: Ledger, signer: AuditorSigner) -> None:
    sync(books, chain)
    receipt = contracts.send_ether(chain.w3, chain.deployer, chain.deployment.safe, ETHER)
    document = report(books, chain, signer)
    (finding,) = document["report"]["evm"]["findings"]
    assert (finding["kind"], finding["severity"], finding["asset"]) == (
        "unrecorded_deposit", "high", "ETH")
    assert finding["txid"] == "0x" + bytes(receipt["transactionHash"]).hex()
    assert finding["difference"] == str(ETHER) == rows(document)["ETH"]["difference"]
    assert rows(document)["ETH"]["status"] == "discrepancy"
    assert rows(document)[chain.deployment.token]["status"] == "ok"
    assert export.overall_status(document["report"]) == "discrepancy"
    assert "unrecorded_deposit" in export.findings_csv(document)
    sync(books, chain)  # the watcher catches up: clean again
    assert report(books, chain, signer)["report"]["evm"]["findings"] == []


def test_made_up_safe_execution_is_an_unauthorised_spend(
        chain: Reserve, books: Ledger, signer: AuditorSigner, tmp_path: Path) -> None:
    """Owners sign a Safe transaction nobody proposed and execute it themselves."""
    sync(books, chain)
    safe = chain.deployment.safe
    tx = SafeTx.call(COLD_STORAGE, 2 * ETHER, b"", read_state(chain.w3, safe).nonce)
    execution = execute_with_keys(chain.w3, chain.deployer, safe, tx,
                                  chain.owner_keys[:THRESHOLD])
    assert execution.success
    document = report(books, chain, signer)
    (finding,) = document["report"]["evm"]["findings"]
    assert (finding["kind"], finding["severity"]) == ("unauthorised_spend", "critical")
    assert finding["txid"] == "0x" + execution.tx_hash.hex()
    assert finding["difference"] == str(-2 * ETHER)
    assert "no proposal in the ledger names this transaction" in finding["detail"]
    assert export.overall_status(document["report"]) == "critical"
    verify(books, chain, signer, document, tmp_path)
    sync(books, chain)  # the watcher catches up: the balances agree, still critical
    document = report(books, chain, signer)
    assert [f["kind"] for f in document["report"]["evm"]["findings"]] == ["unauthorised_spend"]
    assert export.overall_status(document["report"]) == "critical"


def test_executor_record_for_a_digest_never_proposed_is_unauthorised(
        chain: Reserve, books: Ledger, signer: AuditorSigner, tmp_path: Path) -> None:
    """The bare executor (propose, owners' signatures, execute) records every step for a
    hand-written approval; the workflow never released it, so the report is critical."""
    sync(books, chain)
    safe = chain.deployment.safe
    transfer = ApprovedEVMTransfer(
        proposal_digest=hashlib.sha256(b"never proposed").digest(), policy_version=1,
        vault_id=VAULT, chain_id=int(chain.w3.eth.chain_id), safe_address=safe, asset="ETH",
        to=COLD_STORAGE, amount_wei=ETHER, nonce=read_state(chain.w3, safe).nonce)
    executor.propose(books, chain.w3, transfer)
    owners = read_state(chain.w3, safe).owners
    request = evm_signer.signing_request(transfer, to_safe_tx(transfer))
    for key in chain.owner_keys[:THRESHOLD]:
        executor.submit_signature(books, transfer, evm_signer.sign(request,
                                                                   Account.from_key(key)),
                                  owners)
    execution = executor.execute(books, chain.w3, transfer, chain.deployer)
    document = report(books, chain, signer)
    (finding,) = document["report"]["evm"]["findings"]
    assert (finding["kind"], finding["txid"]) == ("unauthorised_spend",
                                                  "0x" + execution.tx_hash.hex())
    assert finding["difference"] == "0" and rows(document)["ETH"]["difference"] == "0"
    assert "which the workflow never recorded as a transfer proposal" in finding["detail"]
    assert export.overall_status(document["report"]) == "critical"
    verify(books, chain, signer, document, tmp_path)


def test_transfer_released_by_the_workflow_reconciles_clean(
        chain: Reserve, books: Ledger, signer: AuditorSigner, tmp_path: Path) -> None:
    """Proposed, approved, released, signed by three owners and executed through the
    workflow: the execution pays exactly what was approved, so no finding."""
    sync(books, chain)
    policy = loader.to_document(loader.load_file(EVM_POLICY))
    policy["destinations"] = [{"asset": "ETH", "address": COLD_STORAGE, "label": "cold (TEST)"}]
    workflow = workflow_service(books, loader.from_mapping(policy, source="test"), clock=None)
    evm = EVMAdapter(w3=chain.w3, vault_id=VAULT, safe_address=chain.deployment.safe,
                     account=chain.deployer)
    now = datetime.now(UTC)
    status = propose(workflow, ETHER // 2, COLD_STORAGE, at=now, vault=VAULT, asset="ETH",
                     fee_max=0)
    approve(workflow, status, "central-bank", "vasp-regulator", at=now)
    step = workflow.release(status.digest, evm, actor="treasury-ops")
    tx = SafeTx.from_json(dict(step.payload["safe_tx"]))
    digest = safe_tx_hash(int(chain.w3.eth.chain_id), chain.deployment.safe, tx)
    for key in chain.owner_keys[:THRESHOLD]:
        signed = Account.unsafe_sign_hash(digest, key)
        workflow.add_signature_share(status.digest, evm, Account.from_key(key).address,
                                     "0x" + bytes(signed.signature).hex())
    workflow.broadcast(status.digest, evm, actor="treasury-ops")
    assert workflow.check_confirmation(status.digest, evm) >= 1
    sync(books, chain)
    document = report(books, chain, signer)
    assert document["report"]["evm"]["findings"] == []
    assert rows(document)["ETH"]["chain"] == str(VAULT_ETH - ETHER // 2)
    assert export.overall_status(document["report"]) == "ok"
    verify(books, chain, signer, document, tmp_path)


def test_report_is_anchored_and_verifiable(chain: Reserve, books: Ledger,
                                           signer: AuditorSigner) -> None:
    sync(books, chain)
    document = report(books, chain, signer)
    digest = document["signature"]["report_sha256"]
    registry = chain.deployment.registry
    entry = anchor_report(books, chain.w3, registry, chain.deployer, document)
    assert entry.kind == "ledger.anchor"
    assert entry.payload["subject"] == "reconcile.report"
    assert entry.payload["report_sha256"] == digest
    assert verify_report_anchor(list(books.entries()), chain.w3, registry, digest) == []
    other = "ab" * 32
    (missing,) = verify_report_anchor(list(books.entries()), chain.w3, registry, other)
    assert missing.code == "anchor-unrecorded"
    size = books.size()
    with pytest.raises(EVMError, match="already anchored"):
        anchor_report(books, chain.w3, registry, chain.deployer, document)
    assert books.size() == size  # refused before sending: nothing recorded


def test_bad_targets_are_refused(chain: Reserve, books: Ledger, signer: AuditorSigner) -> None:
    target = EVMTarget(VAULT, chain.deployment.safe)
    size = books.size()
    with pytest.raises(ReconcileError, match="distinct ids"):
        run_report(books, None, [], signer, evm=(chain.w3, [target, target]))
    with pytest.raises(ReconcileError, match="reconcile 1 to"):
        run_report(books, None, [], signer, evm=(chain.w3, []))
    assert books.size() == size


def test_cli_run_reconciles_and_anchors(chain: Reserve, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`reserve reconcile run --evm-vault ... --evm-rpc-url ...` as an auditor runs it."""
    import json

    from typer.testing import CliRunner

    from reserve.cli.main import app
    from tests.support.reconcile_fixtures import PASSPHRASE

    monkeypatch.delenv("RESERVE_DATABASE_URL", raising=False)
    monkeypatch.setenv("RESERVE_AUDITOR_PASSPHRASE", PASSPHRASE)
    import shutil

    (tmp_path / "config" / "evm").mkdir(parents=True)  # paths resolve from the config's root
    shutil.copy(Path(__file__).resolve().parents[2] / "config" / "evm" / "networks.toml",
                tmp_path / "config" / "evm" / "networks.toml")
    config = tmp_path / "config" / "reserve.toml"
    config.write_text('network = "regtest"\n\n[ledger]\n'
                      f'database_url = "sqlite:///{tmp_path}/cli.sqlite"\n'
                      'origin = "cli.test/ledger"\nkey_path = "ledger-key.json"\n')
    auditor(tmp_path, "cli-auditor")
    books = Ledger.open(f"sqlite:///{tmp_path}/cli.sqlite")
    books.append("vault.registered", "service:evm",
                 {"vault_id": VAULT, **chain.deployment.as_json()})
    sync(books, chain)
    books.close()
    url = chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, [
        "reconcile", "run", "--evm-vault", VAULT, "--evm-rpc-url", str(url), "--config",
        str(config), "--key-file", str(tmp_path / "cli-auditor.key.json"),
        "--output-dir", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {row["status"] for row in out["evm_summary"]} == {"ok"}
    assert out["anchor"]["report_sha256"] == out["report_sha256"]
    books = Ledger.open(f"sqlite:///{tmp_path}/cli.sqlite")
    try:
        assert verify_report_anchor(list(books.entries()), chain.w3, chain.deployment.registry,
                                    out["report_sha256"]) == []
    finally:
        books.close()
    shown = CliRunner().invoke(app, ["reconcile", "show", f"{out['files']}.json"])
    assert "difference 0.000000000000000000 ETH (ok)" in shown.stdout
    assert f"difference 0 {chain.deployment.token} (ok)" in shown.stdout  # no node: base units
    named = CliRunner().invoke(app, ["reconcile", "show", f"{out['files']}.json",
                                     "--evm-rpc-url", str(chain.w3.provider.endpoint_uri)])  # type: ignore[attr-defined]
    assert "difference 0.000000000000000000 tRGT (ok)" in named.stdout, named.output
    books = Ledger.open(f"sqlite:///{tmp_path}/cli.sqlite")
    try:
        ledger_file = export_ledger(books, tmp_path / "cli.jsonl")
    finally:
        books.close()
    contracts.send_ether(chain.w3, chain.deployer, chain.deployment.safe, ETHER)  # moves on
    key = (tmp_path / "cli-auditor.key.json")
    public = json.loads(key.read_text())["public"]
    verify_args = ["reconcile", "verify", f"{out['files']}.json", "--export", str(ledger_file),
                   "--auditor-key", public, "--config", str(config), "--json"]
    verified = CliRunner().invoke(app, [*verify_args, "--evm-rpc-url", str(url)])
    assert verified.exit_code == 0, verified.output
    verdict = json.loads(verified.stdout)
    assert verdict["holds"] and verdict["vaults"] == [VAULT]
    assert any("holds" in note for note in verdict["notes"])
    needs_node = CliRunner().invoke(app, verify_args)
    assert needs_node.exit_code != 0 and "--evm-rpc-url" in needs_node.output
    from wallets.evm.anvil import free_port

    unreachable = CliRunner().invoke(app, [*verify_args, "--evm-rpc-url",
                                           f"http://127.0.0.1:{free_port()}"])
    assert unreachable.exit_code == 2, unreachable.output  # no verdict, not "does not hold"
    assert json.loads(unreachable.stdout)["reason"] == "cannot_verify"
    published = CliRunner().invoke(app, ["reconcile", "proof-of-reserves", f"{out['files']}.json",
                                         "--config", str(config), "--key-file", str(key)])
    assert published.exit_code == 0, published.output
    (statement,) = json.loads(published.stdout)
    (tmp_path / "statement.json").write_text(json.dumps(statement))
    checked = CliRunner().invoke(app, [
        "reconcile", "proof-of-reserves", str(tmp_path / "statement.json"), "--check",
        "--auditor-key", public, "--evm-rpc-url", str(url), "--config", str(config), "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["balances"]["ETH"] == str(VAULT_ETH)
    refused = CliRunner().invoke(app, ["reconcile", "run", "--config", str(config)])
    assert refused.exit_code != 0 and "at least one" in refused.output


def verify(ledger: Ledger, reserve: Reserve, signer: AuditorSigner, document: dict[str, Any],
           tmp_path: Path) -> Verdict:
    path = export_ledger(ledger, tmp_path / "ledger.jsonl")
    return verify_report(document, path, None, [signer.verifier], evm=reserve.w3)


def rejected(ledger: Ledger, reserve: Reserve, signer: AuditorSigner, document: dict[str, Any],
             tmp_path: Path, reason: str, match: str) -> None:
    path = export_ledger(ledger, tmp_path / "ledger.jsonl")
    size = ledger.size()
    with pytest.raises(ReportRejected, match=match) as caught:
        verify_report(document, path, None, [signer.verifier], evm=reserve.w3)
    assert caught.value.reason == reason
    assert ledger.size() == size  # verifying writes nothing


def test_report_verifies_later_from_historical_state(
        chain: Reserve, books: Ledger, signer: AuditorSigner, tmp_path: Path) -> None:
    sync(books, chain)
    contracts.send_ether(chain.w3, chain.deployer, chain.deployment.safe, ETHER)
    document = report(books, chain, signer)
    assert [f["kind"] for f in document["report"]["evm"]["findings"]] == ["unrecorded_deposit"]
    pinned = document["report"]["evm"]["block"]["number"]
    # the chain moves on: more ETH in, a Safe execution out, blocks mined, the watcher syncs
    contracts.send_ether(chain.w3, chain.deployer, chain.deployment.safe, 3 * ETHER)
    safe = chain.deployment.safe
    tx = SafeTx.call(COLD_STORAGE, ETHER, b"", read_state(chain.w3, safe).nonce)
    assert execute_with_keys(chain.w3, chain.deployer, safe, tx,
                             chain.owner_keys[:THRESHOLD]).success
    rpc(chain.w3, "anvil_mine", hex(5))
    sync(books, chain)
    now = chain.w3.eth.get_balance(Web3.to_checksum_address(safe))
    assert now != int(rows(document)["ETH"]["chain"])
    assert chain.w3.eth.block_number > pinned
    verdict = verify(books, chain, signer, document, tmp_path)
    assert verdict.vaults == (VAULT,)
    assert verdict.report_sha256 == document["signature"]["report_sha256"]
    with pytest.raises(ReconcileError, match="give an EVM node"):
        verify_report(document, export_ledger(books, tmp_path / "l.jsonl"), None,
                      [signer.verifier])


def test_edited_evm_summary_is_rejected(chain: Reserve, books: Ledger, signer: AuditorSigner,
                                        tmp_path: Path) -> None:
    sync(books, chain)
    document = report(books, chain, signer)

    def richer(body: dict[str, Any]) -> None:
        row = body["evm"]["summary"][0]
        row["chain"] = row["ledger"] = str(int(row["chain"]) + ETHER)

    edited = resign(document, signer, lambda body: None)
    richer(edited["report"])  # edited after signing
    rejected(books, chain, signer, edited, tmp_path, "tampered", "edited after signing")
    impostor = AuditorSigner("auditor-general", Ed25519PrivateKey.generate())
    rejected(books, chain, signer, resign(document, impostor, richer), tmp_path,
             "not_auditor", "not an auditor key")
    # even signed by the auditor and checked in, the chain does not hold that balance
    lying = resign(document, signer, richer)
    check_in(books, lying, "auditor")
    rejected(books, chain, signer, lying, tmp_path, "mismatch", "differs from the re-derived")
    invented: dict[str, Any] = {
        "kind": "unrecorded_deposit", "severity": "high", "vault_id": VAULT, "asset": "ETH",
        "txid": None, "amount": "1", "difference": "1", "unit": "wei", "detail": "invented",
        "ledger_seqs": []}
    padded = resign(document, signer, lambda body: body["evm"]["findings"].append(invented))
    check_in(books, padded, "auditor")
    rejected(books, chain, signer, padded, tmp_path, "mismatch", "findings differ")
    verify(books, chain, signer, document, tmp_path)  # the genuine report still holds


def test_pinned_evm_block_not_on_chain(chain: Reserve, books: Ledger, signer: AuditorSigner,
                                       tmp_path: Path) -> None:
    sync(books, chain)
    snapshot = rpc(chain.w3, "evm_snapshot")
    contracts.send_ether(chain.w3, chain.deployer, chain.deployment.safe, ETHER)
    document = report(books, chain, signer)
    pin = document["report"]["evm"]["block"]
    forged = resign(document, signer, lambda body: body["evm"]["block"].update(
        hash="0x" + "00" * 32))
    check_in(books, forged, "auditor")
    rejected(books, chain, signer, forged, tmp_path, "block_not_on_chain", "not on the node")
    verify(books, chain, signer, document, tmp_path)
    # a reorg replaces the pinned block: same number, another hash
    assert rpc(chain.w3, "evm_revert", snapshot) is True
    contracts.send_ether(chain.w3, chain.deployer, chain.deployment.safe, 2 * ETHER)
    assert chain.w3.eth.block_number == pin["number"]
    rejected(books, chain, signer, document, tmp_path, "block_not_on_chain",
             f"not on the node's best chain at number {pin['number']}")


def test_anchor_is_checked_by_the_verifier(chain: Reserve, books: Ledger,
                                           signer: AuditorSigner, tmp_path: Path) -> None:
    sync(books, chain)
    document = report(books, chain, signer)
    anchored = anchor_report(books, chain.w3, chain.deployment.registry, chain.deployer,
                             document)
    verdict = verify(books, chain, signer, document, tmp_path)
    assert any("holds" in note for note in verdict.notes), verdict.notes
    # a second report whose anchor entry points at the first report's registry slot
    other = report(books, chain, signer)
    books.append("ledger.anchor", "service:anchor", {
        **anchored.payload, "report_sha256": other["signature"]["report_sha256"]})
    rejected(books, chain, signer, other, tmp_path, "anchor", "anchor-differs")


def test_safe_proof_of_reserves(chain: Reserve, books: Ledger, signer: AuditorSigner) -> None:
    sync(books, chain)
    document = report(books, chain, signer)
    (statement,) = proof.statements(document, signer)
    body = statement["report"]
    assert body["balances"] == {"ETH": str(VAULT_ETH),
                                chain.deployment.token: str(VAULT_TOKENS)}
    contracts.send_ether(chain.w3, chain.deployer, chain.deployment.safe, ETHER)
    assert proof.check_evm_statement(statement, chain.w3, [signer.verifier]) == {
        "ETH": VAULT_ETH, chain.deployment.token: VAULT_TOKENS}
    lying = resign(statement, signer, lambda b: b["balances"].update(ETH=str(2 * VAULT_ETH)))
    with pytest.raises(ReportRejected, match="the statement says") as caught:
        proof.check_evm_statement(lying, chain.w3, [signer.verifier])
    assert caught.value.reason == "mismatch"


def test_bitcoin_and_evm_vaults_in_one_report_verify(  # type: ignore[no-untyped-def]
        bitcoind, miner, make_vault, chain: Reserve, signer: AuditorSigner,
        tmp_path: Path) -> None:
    kit = make_vault(2, 3, ledger=signed_ledger(tmp_path, "both"))
    kit.deposit(bitcoind, miner, [20_000_000])
    kit.watcher.sync()
    sync(kit.ledger, chain)
    target = EVMTarget(VAULT, chain.deployment.safe, (chain.deployment.token,), 0)
    document, _entry = run_report(kit.ledger, bitcoind.rpc(), [(kit.vault, 20)], signer,
                                  evm=(chain.w3, [target]))
    assert document["report"]["block"]["network"] == "regtest"
    kit.deposit(bitcoind, miner, [1_000_000])  # both chains move on
    contracts.send_ether(chain.w3, chain.deployer, chain.deployment.safe, ETHER)
    path = export_ledger(kit.ledger, tmp_path / "both.jsonl")
    verdict = verify_report(document, path, bitcoind.rpc(), [signer.verifier], evm=chain.w3)
    assert verdict.vaults == (kit.vault.vault_id, VAULT)
    with pytest.raises(ReconcileError, match="give a Bitcoin node"):
        verify_report(document, path, None, [signer.verifier], evm=chain.w3)


def test_node_without_history_is_a_clear_error() -> None:
    """A node that prunes old state cannot re-derive a past report: say so, name the fix."""
    from reserve.errors import NodeUnavailable
    from reserve.reconcile.evm import balances_at
    from wallets.evm import anvil as anvil_node

    node = anvil_node.start(extra_args=("--prune-history", "1"))
    try:
        pruned = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 10}))
        rpc(pruned, "anvil_mine", hex(20))
        with pytest.raises(NodeUnavailable, match="archive node"):
            balances_at(pruned, COLD_STORAGE, [], 2)
    finally:
        node.stop()
