"""Reconciliation's typed readers and writers on ledgers written by earlier code
(tests/fixtures): they read what the raw payloads say, and write the same bytes.

The references here read payload dicts the way reconciliation did before it read typed
events (reserve.events); the fast code must agree with them on every old entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reserve.api.routes.reconcile import report_json
from reserve.ledger.canonical import canonical_bytes
from reserve.ledger.entry import decode_body
from reserve.ledger.verify import read_export
from reserve.reconcile import compute, evm_compute
from reserve.reconcile.compute import Coin, LedgerView, LiveRecord, RecordedTransfer
from reserve.reconcile.evm import report_anchors
from reserve.reconcile.releases import judge, releases_of
from reserve.reconcile.report import entry_payload, recorded_reports
from wallets.bitcoin import records
from wallets.evm import deposits_core

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NAMES = ("demo_ledger", "workflow_ledger")


def _entries(name: str) -> list[Any]:
    _, rows, _, _ = read_export(FIXTURES / name / "ledger.jsonl")
    return [decode_body(body, entry_hash) for _, body, entry_hash in rows]


def _raw_ledger_view(entries: list[Any], vault_id: str) -> LedgerView:
    """`compute.ledger_view` as it read payload dicts."""
    mine = [e for e in entries if e.kind in records.BTC_KINDS
            and e.payload.get("vault_id") == vault_id]
    state = records.chain_state(mine, vault_id)
    live = tuple(LiveRecord(
        seq=e.seq, kind=e.kind, txid=e.payload["txid"], blockhash=e.payload["blockhash"],
        height=int(e.payload["height"]), delta_sats=int(e.payload["delta_sats"]),
        amount_sats=int(e.payload.get("amount_sats", 0)),
        fee_sats=int(e.payload.get("fee_sats", 0)),
        outputs=tuple(Coin(e.payload["txid"], int(o["vout"]), int(o["amount_sats"]), seq=e.seq)
                      for o in e.payload.get("outputs", [])))
        for e in state.live)
    transfers: dict[str, RecordedTransfer] = {}
    broadcast: dict[str, int] = {}
    reorged: dict[str, list[int]] = {}
    for entry in mine:
        payload = entry.payload
        if entry.kind == "btc.psbt_created" and payload["txid"] not in transfers:
            transfers[payload["txid"]] = RecordedTransfer(
                txid=payload["txid"], proposal_digest=payload.get("proposal_digest"),
                amount_sats=int(payload["amount_sats"]), fee_sats=int(payload["fee_sats"]),
                inputs=tuple(Coin(i["txid"], int(i["vout"]), int(i["amount_sats"]))
                             for i in payload["inputs"]),
                outputs=tuple((o["address"], int(o["amount_sats"]), bool(o["change"]))
                              for o in payload["outputs"]),
                broadcast_seq=None)
        elif entry.kind == "btc.broadcast":
            broadcast.setdefault(payload["txid"], entry.seq)
        elif entry.kind == "btc.reorg" and payload.get("reverses_kind") == "btc.confirmed":
            reorged.setdefault(payload["txid"], []).append(entry.seq)
    finished = {txid: RecordedTransfer(**{**t.__dict__, "broadcast_seq": broadcast.get(txid),
                                           "reorged_seqs": tuple(reorged.get(txid, ()))})
                for txid, t in transfers.items()}
    return LedgerView(vault_id, "BTC", state.balance_sats, live, finished,
                      releases_of(entries))


@pytest.mark.parametrize("name", NAMES)
def test_bitcoin_ledger_view_reads_what_the_payloads_say(name: str) -> None:
    entries = _entries(name)
    vaults = {e.payload["vault_id"] for e in entries if e.kind in records.BTC_KINDS}
    assert vaults
    for vault_id in sorted(vaults):
        view = compute.ledger_view(entries, vault_id)
        assert view == _raw_ledger_view(entries, vault_id)
    if name == "demo_ledger":  # the demo built, broadcast and confirmed transfers
        assert view.transfers and all(t.broadcast_seq for t in view.transfers.values())


def test_every_transfer_the_demo_made_was_released_as_paid() -> None:
    """The demo's transfers went through the workflow, so judged against its releases
    (with the outputs their PSBTs and executions recorded standing for the chain's), none
    is an unauthorised spend: reports over such a ledger stay `ok`. (The workflow fixture's
    chain facts come from fakes with no PSBTs; its releases still replay.)"""
    assert not releases_of(_entries("workflow_ledger")).stopped
    entries = _entries("demo_ledger")
    released = releases_of(entries)
    assert not released.stopped and released.transfers
    spent = [e for e in entries if e.kind == "btc.confirmed" and e.payload["proposal_digest"]]
    runs = [e for e in entries if e.kind == "evm.executed"]
    assert len(spent) == 2 and len(runs) == 1
    for entry in spent:
        view = compute.ledger_view(entries, entry.payload["vault_id"], releases=released)
        transfer = view.transfers[entry.payload["txid"]]
        paid = [(address, amount) for address, amount, change in transfer.outputs
                if not change]
        assert judge(released, txid=transfer.txid, claimed=transfer.proposal_digest,
                     vault=view.vault_id, asset="BTC", paid=paid) == ""
    for entry in runs:
        run = entry.payload
        assert judge(released, txid=run["tx_hash"], claimed=run["proposal_digest"],
                     vault=run["vault_id"], asset=run["asset"],
                     paid=[(run["to"], int(run["amount_wei"]))]) == ""


@pytest.mark.parametrize("name", NAMES)
def test_evm_recorded_blocks_read_what_the_payloads_say(name: str) -> None:
    entries = _entries(name)
    safes = {(e.payload["safe"], e.payload["chain_id"]) for e in entries
             if e.kind in (deposits_core.DEPOSIT, deposits_core.EXECUTED)}
    assert safes
    for safe, chain_id in sorted(safes):
        held = deposits_core.in_force(entries, safe, chain_id).values()
        assert evm_compute.recorded_blocks(entries, safe, chain_id) == {
            str(r.payload["block_hash"]): int(r.payload["block_number"]) for r in held}


def _document(payload: dict[str, Any]) -> dict[str, Any]:
    """A signed report document whose `reconcile.report` entry is `payload`."""
    findings = [{"severity": severity} for severity, count in
                payload["findings_by_severity"].items() for _ in range(count)]
    body: dict[str, Any] = {
        "ledger": {"tree_size": payload["ledger_tree_size"],
                   "root_hash": payload["ledger_root_hash"]},
        "block": payload["block"], "summary": payload["summary"], "findings": findings}
    if "evm" in payload:
        body["evm"] = {**payload["evm"], "findings": []}
    return {"report": body, "signature": {"report_sha256": payload["report_sha256"],
                                          "key": payload["auditor_key"],
                                          "value": payload["signature"]}}


def test_report_entries_are_written_and_read_as_before() -> None:
    entries = _entries("demo_ledger")
    (report,) = [e for e in entries if e.kind == "reconcile.report"]
    assert canonical_bytes(entry_payload(_document(report.payload))) == \
        canonical_bytes(report.payload)
    without_evm = {k: v for k, v in report.payload.items() if k != "evm"}
    assert entry_payload(_document(without_evm)) == without_evm
    assert recorded_reports(entries) == {report.payload["report_sha256"]: report}
    shown = report_json(report)
    keys = ("report_sha256", "auditor_key", "signature", "ledger_tree_size",
            "ledger_root_hash", "block", "summary", "findings_by_severity")
    assert {key: shown[key] for key in keys} == {key: report.payload[key] for key in keys}
    assert (shown["seq"], shown["status"]) == (report.seq, "ok")


def test_report_anchors_are_found_by_report_hash_only() -> None:
    entries = _entries("demo_ledger")
    anchors = [e for e in entries if e.kind == "ledger.anchor"]
    of_report = [e for e in anchors if e.payload["subject"] == "reconcile.report"]
    assert len(of_report) == 1 and len(anchors) == 2  # the other anchors a checkpoint
    digest = of_report[0].payload["report_sha256"]
    ((entry, anchor),) = report_anchors(entries, digest)
    assert entry is of_report[0]
    assert anchor.to_payload() == entry.payload
    assert (anchor.registry, anchor.index, anchor.tx_hash, anchor.block_hash) == tuple(
        entry.payload[key] for key in ("registry", "index", "tx_hash", "block_hash"))
    assert report_anchors(entries, "00" * 32) == []
