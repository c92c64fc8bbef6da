"""The independent verifier: re-derive a signed report from a ledger export and the chain.

Trust nothing in the report but its claims: the signature must be an auditor's and cover
the report as it is; the ledger export must verify on its own (reserve.ledger.verify); the
report's checkpoint must be one of the ledger's signed checkpoints; the report must be
checked into the ledger; its pinned block must be on the node's best chain at its height.
Then each vault's summary and findings are computed again from the exported entries inside
the checkpoint and from the chain at the pinned block (coins rebuilt by undoing newer
blocks) and must match. Mempool presence is the one fact a later reader cannot see again,
so "in the mempool" and "missing" compare as one kind: "not confirmed at the pinned block".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reserve.errors import CheckpointError, ReportRejected
from reserve.ledger import VerifierKey
from reserve.ledger.checkpoint import verify_note
from reserve.ledger.entry import decode_body
from reserve.ledger.verify import read_export, verify_stream
from reserve.reconcile.bitcoin import chain_view, check_pinned_block, coins_at
from reserve.reconcile.compute import ledger_view, reconcile
from reserve.reconcile.report import ENTRY_KIND, BlockPin, check_signature, coins_digest
from wallets.bitcoin.rpc import BitcoinRPC

NOT_CONFIRMED = {"transfer_unconfirmed": "transfer_not_confirmed",
                 "transfer_missing": "transfer_not_confirmed"}


@dataclass(frozen=True)
class Verdict:
    report_sha256: str
    entry_seq: int
    vaults: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def _finding_key(finding: dict[str, Any]) -> tuple[Any, ...]:
    kind = NOT_CONFIRMED.get(finding["kind"], finding["kind"])
    severity = None if kind == "transfer_not_confirmed" else finding["severity"]
    return (kind, severity, finding["vault_id"], finding["asset"], finding["txid"],
            finding["amount_sats"], finding["difference_sats"], tuple(finding["outpoints"]),
            tuple(finding["ledger_seqs"]))


def _ledger(export: Path, ledger_key: VerifierKey | None, body: dict[str, Any]
            ) -> tuple[list[tuple[int, bytes, bytes]], VerifierKey, list[str]]:
    header, rows, notes, claims = read_export(export)
    key = ledger_key or (VerifierKey.parse(header["verifier_key"])
                         if header.get("verifier_key") else None)
    if key is None:
        raise ReportRejected("ledger_export", "no ledger verifier key: pass one")
    checked = verify_stream(rows, notes, key, claims=claims)
    if not checked.ok:
        raise ReportRejected("ledger_export", f"the ledger export does not verify: "
                                              f"{checked.findings[0]}")
    notes_out = [] if ledger_key else ["ledger key taken from the export itself"]
    pin = body["ledger"]
    try:
        checkpoint = verify_note(pin["note"], key)
    except CheckpointError as error:
        raise ReportRejected("checkpoint_unknown", f"the report's checkpoint is not signed "
                                                   f"by the ledger's key: {error}") from None
    known = set()
    for note in notes:
        try:
            known.add(verify_note(note, key))
        except CheckpointError:
            continue
    if checkpoint not in known or (checkpoint.tree_size, checkpoint.root_hash.hex()) != (
            pin["tree_size"], pin["root_hash"]):
        raise ReportRejected("checkpoint_unknown", f"the report was computed against a "
                                                   f"checkpoint (size {pin['tree_size']}, root "
                                                   f"{pin['root_hash']}) that is not in the "
                                                   "ledger")
    return rows, key, notes_out


def _checked_in(rows: Iterable[tuple[int, bytes, bytes]], digest: str) -> int:
    for seq, body, entry_hash in rows:
        entry = decode_body(body, entry_hash)
        if entry.kind == ENTRY_KIND and entry.payload.get("report_sha256") == digest:
            return seq
    raise ReportRejected("not_checked_in", f"report {digest} is not checked into the ledger")


def _compare(vault_id: str, claimed: dict[str, Any], derived: dict[str, Any],
             claimed_findings: list[dict[str, Any]], derived_findings: list[dict[str, Any]]
             ) -> None:
    if claimed != derived:
        raise ReportRejected("mismatch", f"vault {vault_id}: the report's summary {claimed} "
                                         f"differs from the re-derived {derived}")
    mine = sorted(map(_finding_key, claimed_findings), key=repr)
    again = sorted(map(_finding_key, derived_findings), key=repr)
    if mine != again:
        extra = [f for f in mine if f not in again][:3]
        lost = [f for f in again if f not in mine][:3]
        raise ReportRejected("mismatch", f"vault {vault_id}: findings differ; only in the "
                                         f"report: {extra}; only re-derived: {lost}")


def verify_report(document: Any, export: Path, node: BitcoinRPC,
                  auditors: Iterable[VerifierKey], *,
                  ledger_key: VerifierKey | None = None) -> Verdict:
    """A Verdict if the report holds; ReportRejected with a reason code if it does not."""
    body = check_signature(document, auditors)
    digest = document["signature"]["report_sha256"]
    rows, _key, notes = _ledger(export, ledger_key, body)
    block = BlockPin(**body["block"])
    check_pinned_block(node, block)
    seq = _checked_in(rows, digest)
    size = int(body["ledger"]["tree_size"])
    entries = [decode_body(b, h) for _s, b, h in rows[:size]]
    summaries = {(s["vault_id"], s["asset"]): s for s in body["summary"]}
    for scope in body["vaults"]:
        coins = coins_at(node, scope["descriptors"], int(scope["range_end"]), block)
        if coins_digest(coins) != scope["coins_sha256"]:
            raise ReportRejected("mismatch", f"vault {scope['vault_id']}: the chain's coins at "
                                             "the pinned block differ from the report's")
        view = ledger_view(entries, scope["vault_id"], scope["asset"])
        result = reconcile(view, chain_view(node, view, coins, block))
        claimed = summaries.get((scope["vault_id"], scope["asset"]), {})
        _compare(scope["vault_id"], claimed, result.summary.to_json(),
                 [f for f in body["findings"] if f["vault_id"] == scope["vault_id"]],
                 [f.to_json() for f in result.findings])
    if len(summaries) != len(body["vaults"]):
        raise ReportRejected("mismatch", "the summary names vaults the report did not scan")
    return Verdict(digest, seq, tuple(s["vault_id"] for s in body["vaults"]), tuple(notes))
