"""Reconciliation against a real regtest bitcoind: a clean report, then each discrepancy
produced for real (deposit behind the service's back, a spend with custodian keys outside
the workflow, a reorg that drops a recorded deposit), found, itemised, signed into the
ledger and re-verified independently from the ledger export plus the chain."""

from __future__ import annotations

from pathlib import Path

from reserve.reconcile.run import run_report
from reserve.reconcile.verify import verify_report
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.reconcile_fixtures import (
    auditor,
    export,
    signed_ledger,
    spend_behind_the_back,
    transfer_out,
)

RANGE_END = 50


def _kinds(document) -> list[str]:  # type: ignore[no-untyped-def]
    return [f["kind"] for f in document["report"]["findings"]]


def _summary(document) -> dict:  # type: ignore[no-untyped-def,type-arg]
    (row,) = document["report"]["summary"]
    return row  # type: ignore[no-any-return]


def _kit(make_vault, tmp_path: Path, name: str) -> VaultKit:  # type: ignore[no-untyped-def]
    kit: VaultKit = make_vault(2, 3, ledger=signed_ledger(tmp_path, name))
    return kit


def test_clean_reconciliation_then_verified_after_the_chain_moved(  # type: ignore[no-untyped-def]
        bitcoind, miner, make_vault, tmp_path) -> None:
    kit = _kit(make_vault, tmp_path, "clean")
    kit.deposit(bitcoind, miner, [70_000_000, 30_000_000])
    kit.watcher.sync()
    transfer_out(kit, miner, 25_000_000, "clean")
    bitcoind.mine(1)
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
    assert finding["kind"] == "unexpected_spend" and finding["severity"] == "critical"
    assert finding["txid"] == thief and finding["difference_sats"] == row["difference"] < 0
    assert -finding["difference_sats"] == finding["amount_sats"] > 20_000_000  # fee included
    verify_report(document, export(kit.ledger, tmp_path / "a.jsonl"), node, [signer.verifier])
    # once the watcher has recorded the spend the balances agree, but it stays critical
    kit.watcher.sync()
    document, _entry = run_report(kit.ledger, node, [(kit.vault, RANGE_END)], signer)
    row = _summary(document)
    assert row["difference"] == 0 and row["status"] == "critical"
    assert _kinds(document) == ["unexpected_spend"]
    verify_report(document, export(kit.ledger, tmp_path / "b.jsonl"), node, [signer.verifier])


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
