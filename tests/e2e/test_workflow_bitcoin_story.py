"""The national Bitcoin wallet moves reserve money: from policy to a confirmed transaction.

This story is documentation as much as a test. The 3-of-5 vault in
config/vaults/reserve-btc-3of5.toml is governed by the policy in
config/policies/national-btc.toml: the policy decides *whether* value may move (approvals by
custodians of enough institutions, time delays, an allowlist), the vault's multisig decides
*how* (three custodians' signatures on a PSBT). The workflow hands an approved transfer to
the Bitcoin layer through `BitcoinAdapter`, and every step, from the deposit to the
confirmation, lands in one append-only ledger from which the whole state can be rebuilt.

Time is an injected clock: the story advances it over the 24-hour delay, it never sleeps.
The story runs its own regtest node, because the config vaults' addresses are fixed and
other stories on the shared node use them too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from reserve import keystore
from reserve.errors import ApprovalError
from reserve.ledger import CheckpointSigner, Ledger
from reserve.ledger.verify import verify_ledger
from reserve.policy import loader
from reserve.policy.testkeys import private_key_of
from reserve.proposals.approval import sign
from reserve.transfers.package import build_signing_package, package_json
from reserve.transfers.projection import Projection
from reserve.transfers.service import WorkflowService
from tests.support.workflow import workflow_service
from wallets.bitcoin.adapter import BitcoinAdapter
from wallets.bitcoin.psbt_check import parse_psbt
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC, sats_to_btc
from wallets.bitcoin.shares import QuorumNotMet
from wallets.bitcoin.vault import load_vault
from wallets.signer import approval as approval_signer
from wallets.signer.cli import app as signer_app

ROOT = Path(__file__).resolve().parents[2]
VAULT_FILE = ROOT / "config" / "vaults" / "reserve-btc-3of5.toml"
POLICY_FILE = ROOT / "config" / "policies" / "national-btc.toml"
COLD_STORAGE = "bcrt1qmxjnkhk4s0pw9m6hzstm44rechuy3yar4jgq0m"  # allowlisted in the policy
SETTLEMENT = "bcrt1qm9rr2m3e7whcch4j6eer0rsr833atel3fstwt7"  # allowlisted in the policy
PASSPHRASE = "story-passphrase"  # TEST keystores only
SCRYPT_N_TEST = 2**12  # fast key stretching: these keystores hold public TEST keys
TEST_CUSTODIAN_NUMBER = {"finance-ministry": 1, "central-bank": 2, "vasp-regulator": 3,
                         "auditor-general": 4, "crypto-council": 5}
runner = CliRunner()


class Clock:
    """The story's clock: starts at the real time, moves only when the story says so."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def node() -> Iterator[RegtestNode]:
    with RegtestNode() as started:
        started.miner()
        yield started


def _approval_keystores(folder: Path, custodians: list[str]) -> dict[str, Path]:
    """Each custodian's Ed25519 approval key in an encrypted file (TEST seeds)."""
    paths = {}
    for custodian in custodians:
        path = folder / f"{custodian}-approval.json"
        keystore.write(path, approval_signer.seal_key(
            private_key_of(custodian), custodian=custodian, passphrase=PASSPHRASE,
            scrypt_n=SCRYPT_N_TEST))
        paths[custodian] = path
    return paths


def _bitcoin_keystore(folder: Path, custodian: str) -> Path:
    """A custodian's BIP 32 key, made by `reserve-sign keygen` (TEST seed) into a keystore."""
    path = folder / f"{custodian}-btc.json"
    if path.exists():  # made for an earlier transfer; the tool never overwrites a key
        return path
    _sign_tool(["keygen", "--name", custodian, "--institution", "test", "--out", str(path),
                "--test-custodian", str(TEST_CUSTODIAN_NUMBER[custodian]),
                "--scrypt-n", str(SCRYPT_N_TEST)])
    return path


def _sign_tool(args: list[str]) -> str:
    result = runner.invoke(signer_app, args, catch_exceptions=False,
                           env={"RESERVE_SIGNER_PASSPHRASE": PASSPHRASE})
    assert result.exit_code == 0, result.output
    output: str = result.output
    return output


def _approve(workflow: WorkflowService, digest: str, keys: dict[str, Path], folder: Path,
             custodian: str) -> str:
    """One custodian, offline: read the proposal, recompute its digest, sign, hand back."""
    document = folder / f"proposal-{digest[:16]}.json"
    document.write_text(json.dumps(workflow.status(digest).proposal.document()))
    proposal = approval_signer.read_proposal(document)
    assert COLD_STORAGE in approval_signer.describe(proposal) or \
        SETTLEMENT in approval_signer.describe(proposal)
    private_key, owner = approval_signer.load_key(keys[custodian], PASSPHRASE)
    assert owner == custodian
    vote = approval_signer.sign_proposal(proposal, private_key, custodian,
                                         expected_digest=digest)
    return workflow.vote(vote).explain()


def _custodians_sign(workflow: WorkflowService, adapter: BitcoinAdapter, digest: str,
                     psbt_base64: str, signers: list[str], folder: Path) -> None:
    """Each signer re-checks the release from its signing package, offline, then signs.

    The package holds the ledger entries that decided the release, proven against a
    checkpoint; the custodian's tool trusts only its enrolment (the ledger's key and the
    policy the custodian reviewed), re-runs the policy and checks the PSBT itself.
    """
    now = workflow.clock()
    package = folder / f"package-{digest[:16]}.json"
    package.write_text(package_json(build_signing_package(workflow.ledger, digest, now=now)))
    # The package carries the PSBT as recorded (without previous transactions): the same
    # unsigned transaction as the one the release returned.
    assert parse_psbt(psbt_base64).tx.txid().hex() in package.read_text()
    enrolment = folder / "enrolment.json"
    if not enrolment.exists():  # once per custodian device; here one file serves them all
        _sign_tool(["enrol", "--ledger-key", workflow.ledger.signer.verifier.encode(),
                    "--vault", "national-btc", "--policy", str(POLICY_FILE),
                    "--out", str(enrolment)])
    for custodian in signers:
        copy = folder / f"{custodian}-{digest[:16]}.psbt"
        shown = _sign_tool(["btc-sign", "--package", str(package), "--enrolment",
                            str(enrolment), "--vault", str(VAULT_FILE), "--keystore",
                            str(_bitcoin_keystore(folder, custodian)), "--out", str(copy),
                            "--yes", "--now", now.isoformat()])
        assert "the package verifies and the PSBT matches the proposal" in shown
        workflow.add_signature_share(digest, adapter, custodian, copy.read_text().strip())


def test_national_wallet_pays_cold_storage_under_policy(node: RegtestNode,
                                                        tmp_path: Path) -> None:
    miner: BitcoinRPC = node.miner()
    clock = Clock()
    signer = CheckpointSigner("test.reserve/workflow-story", Ed25519PrivateKey.generate())
    ledger = Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite", signer=signer)

    # 1. The vault and its policy describe the same thing: one vault id, the same five
    #    custodians of five institutions. The workflow starts from policy v1.
    vault, policy = load_vault(VAULT_FILE), loader.load_file(POLICY_FILE)
    assert vault.vault_id == policy.vault == "national-btc"
    assert {(c.name, c.institution) for c in vault.custodians} == \
        {(c.id, c.institution) for c in policy.custodians}
    workflow = workflow_service(ledger, policy, clock=clock)  # "lead" records policy v1
    adapter = BitcoinAdapter.connect(vault, ledger, node.rpc(), clock=clock)
    adapter.service.ensure_watch_only(rescan_timestamp="now")

    # 2. Three bitcoin arrive; the watcher records the deposit once it is confirmed.
    address, _index = adapter.service.receive_address()
    miner.sendtoaddress(address, sats_to_btc(300_000_000))
    node.mine(1)
    assert len(adapter.watcher.sync().deposits) == 1

    # 3. Treasury operations propose 1.5 BTC to cold storage: the "large" tier, which needs
    #    three approvals from three institutions and then a 24-hour delay.
    large = workflow.propose_transfer(
        vault="national-btc", proposer="treasury-ops", asset="BTC",
        outputs=[(COLD_STORAGE, 150_000_000)], fee_max=20_000,
        purpose="move reserve to cold storage", reference="T-2026-001",
        expires_in_seconds=7 * 86400)
    digest = large.digest

    # 4. Nobody approves their own proposal: the signing tool refuses to sign it, and a vote
    #    signed by the proposer anyway is refused by the workflow (an operator is no
    #    custodian, and a proposer never votes on their own proposal), with nothing written.
    with pytest.raises(ApprovalError, match="may not vote"):
        approval_signer.sign_proposal(large.proposal, private_key_of("treasury-ops"),
                                      "treasury-ops")
    size = ledger.size()
    with pytest.raises(ApprovalError, match=r"treasury-ops.* is not a custodian"):
        workflow.vote(sign(private_key_of("treasury-ops"), large.proposal.digest, "approve",
                           "treasury-ops"))
    assert ledger.size() == size

    # 5. Three custodians of three institutions approve, each offline with their own
    #    encrypted approval key. The quorum is met, but the delay has just begun.
    keys = _approval_keystores(tmp_path, list(TEST_CUSTODIAN_NUMBER))
    for custodian in ("central-bank", "vasp-regulator"):
        _approve(workflow, digest, keys, tmp_path, custodian)
    explained = _approve(workflow, digest, keys, tmp_path, "auditor-general")
    assert "24 h of time delay left" in explained
    assert workflow.status(digest).state == "approved"

    # 6. A day passes (on the injected clock); the transfer becomes releasable.
    clock.advance(24 * 3600)
    workflow.refresh()
    assert workflow.status(digest).state == "releasable"

    # 7. Release: the Bitcoin layer builds the PSBT for exactly what was approved.
    psbt = workflow.release(digest, adapter, actor="treasury-ops").payload["psbt_base64"]
    assert workflow.status(digest).state == "signing"

    # 8. Two signatures are not enough for a 3-of-5 vault: broadcast is refused.
    _custodians_sign(workflow, adapter, digest, psbt, ["finance-ministry", "vasp-regulator"],
                     tmp_path)
    size = ledger.size()
    with pytest.raises(QuorumNotMet, match="2 of 3"):
        workflow.broadcast(digest, adapter, actor="treasury-ops")
    assert ledger.size() == size

    # 9. The third custodian signs; the service broadcasts; a block confirms it.
    _custodians_sign(workflow, adapter, digest, psbt, ["crypto-council"], tmp_path)
    txid = workflow.broadcast(digest, adapter, actor="treasury-ops")
    assert txid in node.rpc().getrawmempool()
    node.mine(1)
    assert workflow.check_confirmation(digest, adapter, confirmations_min=1) == 1
    assert workflow.status(digest).state == "confirmed"

    # 10. A small payment (0.05 BTC) needs only two approvals from two institutions and no
    #     delay: it is releasable as soon as the second vote is in. The multisig still
    #     needs three signatures: policy approvals and vault signatures are separate locks.
    small = workflow.propose_transfer(
        vault="national-btc", proposer="treasury-ops", asset="BTC",
        outputs=[(SETTLEMENT, 5_000_000)], fee_max=20_000, purpose="mining settlement",
        reference="T-2026-002")
    for custodian in ("finance-ministry", "crypto-council"):
        _approve(workflow, small.digest, keys, tmp_path, custodian)
    assert workflow.status(small.digest).state == "releasable"
    small_psbt = workflow.release(small.digest, adapter, "treasury-ops").payload["psbt_base64"]
    _custodians_sign(workflow, adapter, small.digest, small_psbt,
                     ["central-bank", "auditor-general", "crypto-council"], tmp_path)
    workflow.broadcast(small.digest, adapter, actor="treasury-ops")
    node.mine(1)
    workflow.check_confirmation(small.digest, adapter)
    assert workflow.status(small.digest).state == "confirmed"

    # 11. The ledger tells the whole story, in order.
    def told(kind: str, payload: dict[str, object]) -> str:
        return f"{kind}:{payload['to']}" if kind == "proposal.state" else kind

    transfer_story = [
        "proposal.created", *["proposal.approved"] * 2, "proposal.state:approved",
        "proposal.state:releasable", "btc.psbt_created", "proposal.state:signing",
        *["btc.share_received"] * 3, "btc.finalized", "btc.broadcast",
        "proposal.state:broadcast", "btc.confirmed", "proposal.state:confirmed"]
    assert [told(e.kind, e.payload) for e in ledger.entries()] == [
        "policy.version", "btc.deposit",
        # the large transfer: three votes, then the delay, then the chain
        "proposal.created", *["proposal.approved"] * 3, "proposal.state:approved",
        "proposal.state:releasable", "btc.psbt_created", "proposal.state:signing",
        *["btc.share_received"] * 3, "btc.finalized", "btc.broadcast",
        "proposal.state:broadcast", "btc.confirmed", "proposal.state:confirmed",
        # the small one: two votes, approved and releasable at once
        *transfer_story]
    # Every chain entry of a transfer is filed under its proposal.
    for status in (workflow.status(digest), workflow.status(small.digest)):
        assert [s.kind for s in status.chain_steps] == [
            "btc.psbt_created", *["btc.share_received"] * 3, "btc.finalized",
            "btc.broadcast", "btc.confirmed"]
    # Entries are dated on the one clock, so the ledger reads in time order too.
    times = [e.time for e in ledger.entries()]
    assert times == sorted(times)

    # 12. The ledger's balance of the vault equals bitcoind's, to the satoshi.
    fees = sum(int(e.payload["fee_sats"]) for e in ledger.entries(kinds=["btc.confirmed"]))
    assert adapter.watcher.ledger_balance_sats() == adapter.service.node_balance_sats() == \
        300_000_000 - 150_000_000 - 5_000_000 - fees

    # 13. The ledger verifies, and the state rebuilt from the ledger alone equals the live
    #     state the workflow built step by step.
    ledger.checkpoint()
    assert verify_ledger(ledger, signer.verifier).ok
    with Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite") as reopened:
        rebuilt = Projection()
        rebuilt.catch_up(reopened)
    assert rebuilt.snapshot() == workflow.sync().snapshot()
    ledger.close()
