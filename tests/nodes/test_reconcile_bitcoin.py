"""Reconciliation against a real regtest bitcoind: a clean report over a transfer the
workflow released, then each discrepancy produced for real (deposit behind the service's
back, a spend with custodian keys outside the workflow, a transfer hand-written to the
Bitcoin layer for a proposal that never existed, a PSBT recorded for other outputs than
the proposal released, a reorg that drops a recorded deposit), found, itemised, signed into
the ledger and re-verified independently from the ledger export plus the chain."""

from __future__ import annotations

from pathlib import Path

from reserve.ledger import Ledger
from reserve.reconcile.run import run_report
from reserve.reconcile.verify import verify_report
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.bitcoin_workflow import AMOUNT_SATS, confirm_small_transfer, sign_small_transfer
from tests.support.reconcile_fixtures import (
    auditor,
    export,
    signed_ledger,
    spend_behind_the_back,
    transfer_out,
)
from tests.support.workflow import SETTLEMENT, btc_policy, workflow_service
from wallets.bitcoin.adapter import BitcoinAdapter
from wallets.bitcoin.psbt_check import parse_psbt
from wallets.bitcoin.service import BitcoinVaultService
from wallets.bitcoin.transfer import ApprovedTransfer, TransferOutput

RANGE_END = 50


def _kinds(document) -> list[str]:  # type: ignore[no-untyped-def]
    return [f["kind"] for f in document["report"]["findings"]]


def _summary(document) -> dict:  # type: ignore[no-untyped-def,type-arg]
    (row,) = document["report"]["summary"]
    return row  # type: ignore[no-any-return]


def _kit(make_vault, tmp_path: Path, name: str) -> VaultKit:  # type: ignore[no-untyped-def]
    kit: VaultKit = make_vault(2, 3, ledger=signed_ledger(tmp_path, name))
    return kit


def _released_kit(make_vault, tmp_path: Path, name: str):  # type: ignore[no-untyped-def]
    """A 3-of-5 vault with the national policy as its own, and the workflow over it."""
    kit: VaultKit = make_vault(3, 5, ledger=signed_ledger(tmp_path, name))
    workflow = workflow_service(kit.ledger, btc_policy(kit.vault.vault_id), clock=None)
    return kit, workflow, BitcoinAdapter(kit.service, kit.watcher)


def _verified(kit: VaultKit, tmp_path: Path, document, signer, name: str) -> None:  # type: ignore[no-untyped-def]
    verify_report(document, export(kit.ledger, tmp_path / f"{name}.jsonl"), kit.service.node,
                  [signer.verifier])


def test_clean_reconciliation_then_verified_after_the_chain_moved(  # type: ignore[no-untyped-def]
        bitcoind, miner, make_vault, tmp_path) -> None:
    """The normal path: proposed, approved, released by the workflow, signed, broadcast
    and confirmed; the transaction pays exactly what was approved, change comes back."""
    kit, workflow, adapter = _released_kit(make_vault, tmp_path, "clean")
    kit.deposit(bitcoind, miner, [70_000_000, 30_000_000])
    kit.watcher.sync()
    confirm_small_transfer(kit, workflow, adapter, bitcoind)
    kit.watcher.sync()
    signer = auditor(tmp_path)
    document, entry = run_report(kit.ledger, bitcoind.rpc(), [(kit.vault, RANGE_END)], signer)
    row = _summary(document)
    assert row["difference"] == 0 and row["status"] == "ok", document["report"]["findings"]
    assert row["ledger"] == row["chain"] == kit.service.node_balance_sats()
    assert document["report"]["findings"] == []
    assert entry.kind == "reconcile.report"
    assert entry.payload["report_sha256"] == document["signature"]["report_sha256"]
    # the chain moves on (a new deposit, more blocks): the report still holds at its block
    kit.deposit(bitcoind, miner, [5_000_000])
    bitcoind.mine(2)
    verdict = verify_report(document, export(kit.ledger, tmp_path / "x.jsonl"), bitcoind.rpc(),
                            [signer.verifier])
    assert verdict.entry_seq == entry.seq and verdict.vaults == (kit.vault.vault_id,)


def test_unrecorded_deposit_found_signed_and_verified(  # type: ignore[no-untyped-def]
        bitcoind, miner, make_vault, tmp_path) -> None:
    kit = _kit(make_vault, tmp_path, "unrecorded")
    kit.deposit(bitcoind, miner, [40_000_000])
    kit.watcher.sync()
    (sneaky,) = kit.deposit(bitcoind, miner, [1_234_567])  # the watcher is not told
    signer = auditor(tmp_path)
    document, _entry = run_report(kit.ledger, bitcoind.rpc(), [(kit.vault, RANGE_END)], signer)
    row = _summary(document)
    assert row["difference"] == 1_234_567 and row["status"] == "discrepancy"
    (finding,) = document["report"]["findings"]
    assert finding["kind"] == "unrecorded_deposit" and finding["txid"] == sneaky
    assert finding["difference_sats"] == 1_234_567
    verify_report(document, export(kit.ledger, tmp_path / "x.jsonl"), bitcoind.rpc(),
                  [signer.verifier])


def test_spend_outside_the_workflow_is_critical(  # type: ignore[no-untyped-def]
        bitcoind, miner, make_vault, tmp_path) -> None:
    kit = _kit(make_vault, tmp_path, "spend")
    kit.deposit(bitcoind, miner, [50_000_000])
    kit.watcher.sync()
    node = bitcoind.rpc()
    thief = spend_behind_the_back(kit, node, miner.getnewaddress("", "bech32"), 20_000_000)
    bitcoind.mine(1)
    signer = auditor(tmp_path)
    document, _entry = run_report(kit.ledger, node, [(kit.vault, RANGE_END)], signer)
    row = _summary(document)
    assert row["status"] == "critical"
    (finding,) = document["report"]["findings"]
    assert finding["kind"] == "unauthorised_spend" and finding["severity"] == "critical"
    assert finding["txid"] == thief and finding["difference_sats"] == row["difference"] < 0
    assert -finding["difference_sats"] == finding["amount_sats"] > 20_000_000  # fee included
    assert "no proposal in the ledger names this transaction" in finding["detail"]
    verify_report(document, export(kit.ledger, tmp_path / "a.jsonl"), node, [signer.verifier])
    # once the watcher has recorded the spend the balances agree, but it stays critical
    kit.watcher.sync()
    document, _entry = run_report(kit.ledger, node, [(kit.vault, RANGE_END)], signer)
    row = _summary(document)
    assert row["difference"] == 0 and row["status"] == "critical"
    assert _kinds(document) == ["unauthorised_spend"]
    verify_report(document, export(kit.ledger, tmp_path / "b.jsonl"), node, [signer.verifier])


def _only_unauthorised(document, txid: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert _summary(document)["status"] == "critical"
    unauthorised = [f for f in document["report"]["findings"]
                    if f["kind"] == "unauthorised_spend"]
    assert [f["txid"] for f in unauthorised] == [txid], document["report"]["findings"]
    assert unauthorised[0]["severity"] == "critical"
    return unauthorised[0]  # type: ignore[no-any-return]


def test_a_hand_written_transfer_for_a_proposal_never_made_is_unauthorised(  # type: ignore[no-untyped-def]
        bitcoind, miner, make_vault, tmp_path) -> None:
    """A hand-written transfer handed straight to the Bitcoin layer (as the removed
    `reserve btc build-psbt` did, or any caller of `BitcoinVaultService`): it builds the
    PSBT, takes two custodians' shares and broadcasts it, recording each step. None of that
    is the workflow's release, so the confirmed spend is critical, before and after the
    watcher records its confirmation."""
    kit = _kit(make_vault, tmp_path, "handwritten")
    kit.deposit(bitcoind, miner, [60_000_000])
    kit.watcher.sync()
    txid = transfer_out(kit, miner, 25_000_000, "never-proposed")  # build, 2 shares, send
    bitcoind.mine(1)
    signer = auditor(tmp_path)
    node = kit.service.node
    document, _entry = run_report(kit.ledger, node, [(kit.vault, RANGE_END)], signer)
    finding = _only_unauthorised(document, txid)
    assert "which the workflow never recorded as a transfer proposal" in finding["detail"]
    assert finding["difference_sats"] == _summary(document)["difference"] < 0
    _verified(kit, tmp_path, document, signer, "a")
    kit.watcher.sync()  # the watcher attributes the confirmation to the claimed digest
    document, _entry = run_report(kit.ledger, node, [(kit.vault, RANGE_END)], signer)
    finding = _only_unauthorised(document, txid)
    assert _kinds(document) == ["unauthorised_spend"] and _summary(document)["difference"] == 0
    assert finding["amount_sats"] > 25_000_000  # fee included
    _verified(kit, tmp_path, document, signer, "b")


def test_a_psbt_recorded_for_other_outputs_than_released_is_unauthorised(  # type: ignore[no-untyped-def]
        bitcoind, miner, make_vault, tmp_path) -> None:
    """The workflow releases a proposal for 0.05 BTC to the settlement address; a PSBT
    naming that proposal but paying 0.05 BTC to another address is built by the Bitcoin
    layer (on a side ledger, since the real one already holds the release's PSBT), its
    records copied into the ledger as a compromised chain layer would write them, signed by
    custodians and broadcast. Reconciliation compares the chain's outputs with the release."""
    kit, workflow, adapter = _released_kit(make_vault, tmp_path, "other-outputs")
    kit.deposit(bitcoind, miner, [40_000_000])
    kit.watcher.sync()
    digest = sign_small_transfer(kit, workflow, adapter)  # released; never broadcast
    elsewhere = miner.getnewaddress("", "bech32")
    forged = ApprovedTransfer(proposal_digest=bytes.fromhex(digest), policy_version=1,
                              vault_id=kit.vault.vault_id, network=kit.vault.network,
                              outputs=(TransferOutput(elsewhere, AMOUNT_SATS),),
                              fee_sats_max=100_000)
    with Ledger.open("sqlite:///:memory:") as side:
        layer = BitcoinVaultService(kit.vault, side, kit.service.node)
        base = layer.build_psbt(forged)
        for number in (0, 1, 2):
            share = parse_psbt(base.serialize())
            share.sign_with(kit.roots[number])
            layer.add_share(forged, share.serialize())
        txid = layer.finalize_and_broadcast(forged)
        copied = [(e.kind, "service:btc", e.payload) for e in side.entries()
                  if e.kind in ("btc.psbt_created", "btc.broadcast")]
    kit.ledger.append_many(copied)
    bitcoind.mine(1)
    kit.watcher.sync()
    assert workflow.status(digest).state == "signing"
    signer = auditor(tmp_path)
    document, _entry = run_report(kit.ledger, kit.service.node, [(kit.vault, RANGE_END)],
                                  signer)
    finding = _only_unauthorised(document, txid)
    assert f"its outputs differ from proposal {digest[:16]}" in finding["detail"]
    assert f"paid but not approved [{AMOUNT_SATS} to {elsewhere}]" in finding["detail"]
    assert f"approved but not paid [{AMOUNT_SATS} to {SETTLEMENT}]" in finding["detail"]
    _verified(kit, tmp_path, document, signer, "c")


def test_reorg_dropping_a_recorded_deposit(  # type: ignore[no-untyped-def]
        bitcoind, miner, make_vault, tmp_path) -> None:
    kit = _kit(make_vault, tmp_path, "reorg")
    kit.deposit(bitcoind, miner, [10_000_000])
    kit.watcher.sync()
    (txid,) = kit.deposit(bitcoind, miner, [33_000_000])
    kit.watcher.sync()
    node = bitcoind.rpc()
    block = node.getbestblockhash()
    signer = auditor(tmp_path)
    node.invalidateblock(block)
    try:
        document, _entry = run_report(kit.ledger, node, [(kit.vault, RANGE_END)], signer)
        path = export(kit.ledger, tmp_path / "x.jsonl")
        verify_report(document, path, node, [signer.verifier])
    finally:
        node.reconsiderblock(block)
    row = _summary(document)
    assert row["difference"] == -33_000_000 and row["status"] == "discrepancy"
    (finding,) = document["report"]["findings"]
    assert finding["kind"] == "deposit_reorganised" and finding["txid"] == txid
    assert "mempool" in finding["detail"]
