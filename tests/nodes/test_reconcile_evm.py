# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""EVM vaults in reconciliation, against a real anvil: a Safe holding ETH and an ERC-20.

The watcher (`deposits.sync`) records the funding; the report then reconciles clean. ETH
sent to the Safe behind the service's back is an unrecorded deposit; a Safe execution the
ledger never heard of is an unexpected spend; the report's hash is anchored in the
ReserveRegistry, recorded in the ledger and checked against both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reserve.errors import EVMError, ReconcileError
from reserve.ledger import Ledger
from reserve.reconcile import export
from reserve.reconcile.evm import EVMTarget, anchor_report, verify_report_anchor
from reserve.reconcile.report import AuditorSigner
from reserve.reconcile.run import run_report
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
    w3,
)
from tests.support.reconcile_fixtures import auditor, signed_ledger
from wallets.evm import contracts, deposits
from wallets.evm.demo import execute_with_keys
from wallets.evm.safe_tx import SafeTx
from wallets.evm.vault import read_state

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
    assert "EVM vaults (wei)" in export.to_html(document)


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


def test_unrecorded_safe_execution_is_an_unexpected_spend(
        chain: Reserve, books: Ledger, signer: AuditorSigner) -> None:
    sync(books, chain)
    safe = chain.deployment.safe
    tx = SafeTx.call(COLD_STORAGE, 2 * ETHER, b"", read_state(chain.w3, safe).nonce)
    execution = execute_with_keys(chain.w3, chain.deployer, safe, tx,
                                  chain.owner_keys[:THRESHOLD])
    assert execution.success
    document = report(books, chain, signer)
    (finding,) = document["report"]["evm"]["findings"]
    assert (finding["kind"], finding["severity"]) == ("unexpected_spend", "critical")
    assert finding["txid"] == "0x" + execution.tx_hash.hex()
    assert finding["difference"] == str(-2 * ETHER)
    assert export.overall_status(document["report"]) == "critical"


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
    assert "wei (ok)" in shown.stdout
    refused = CliRunner().invoke(app, ["reconcile", "run", "--config", str(config)])
    assert refused.exit_code != 0 and "at least one" in refused.output
