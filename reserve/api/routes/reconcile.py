"""Reconciliation reports as recorded in the ledger (`reconcile.report` entries).

Each entry holds a signed report's hash, the auditor's key and signature, the ledger and
block it was pinned to, the per-vault summary and the findings counted by severity (the
itemised findings are in the report file; `reserve reconcile show` prints them, and
`reserve reconcile verify` re-derives them). Running a reconciliation needs a node and the
auditor's key, so it is a CLI command, not an API call. Custodians see reports that
concern only their vaults, like any other entry.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from reserve.api import ledger_views
from reserve.api.auth import ALL_ROLES, Principal
from reserve.api.deps import Service, get_service, require
from reserve.api.openapi import errors, link, ok
from reserve.events.records import ReconcileReport
from reserve.reconcile.report import ENTRY_KIND
from reserve.supervision.attest import attestations_by_report, attestations_of
from reserve.transfers import readmodel

router = APIRouter(prefix="/api/reconcile", tags=["reconciliation"])
readers = require(*ALL_ROLES)
SEQ_MAX = 2**40
SEQ_DIGITS_MAX = 13  # a path parameter this long or shorter is a seq, else a SHA-256
REPORTS_SCANNED = 1_000  # report entries one listing reads at most


def report_json(entry: Any) -> dict[str, Any]:
    report = ReconcileReport.of(entry)
    summary = report.summary if isinstance(report.summary, list) else []
    statuses = {row.get("status") for row in summary if isinstance(row, dict)}
    overall = "critical" if "critical" in statuses else \
        "discrepancy" if "discrepancy" in statuses else "ok"
    return {"seq": entry.seq, "time": entry.time, "auditor": entry.actor, "status": overall,
            "report_sha256": report.report_sha256, "auditor_key": report.auditor_key,
            "signature": report.signature, "ledger_tree_size": report.ledger_tree_size,
            "ledger_root_hash": report.ledger_root_hash, "block": report.block,
            "summary": summary, "findings_by_severity": report.findings_by_severity}


def newest_reports(ledger: Any, principal: Principal, limit: int,
                   before: int | None = None) -> tuple[list[Any], int | None]:
    """The newest `limit` reports the caller may see with seq below `before`, newest
    first, and the cursor of the next (older) page, None on the last one.

    Reads the kind index newest first, a page at a time, at most REPORTS_SCANNED report
    entries a call: a custodian who may see few of them gets a thinner page and a cursor,
    never a scan of every report of the history."""
    shown: list[Any] = []
    stop = before
    scanned = 0
    while len(shown) < limit and scanned < REPORTS_SCANNED:
        chunk = min(limit - len(shown), REPORTS_SCANNED - scanned)
        seqs = ledger.kind_sequences((ENTRY_KIND,), 0, stop, newest_first=True, limit=chunk)
        if seqs:  # exactly these entries: the kind index between the two bounds
            entries = ledger.entries(seqs[-1], seqs[0] + 1, kinds=(ENTRY_KIND,))
            shown += [entry for entry in reversed(list(entries))
                      if ledger_views.may_see(principal, entry)]
        scanned += len(seqs)
        if len(seqs) < chunk:
            return shown, None
        stop = seqs[-1]
    more = ledger.kind_sequences((ENTRY_KIND,), 0, stop, newest_first=True, limit=1)
    return shown, (stop if more else None)


def find_report(service: Service, principal: Principal, report: str) -> Any | None:
    """The report entry at ledger seq `report`, or whose document has SHA-256 `report`;
    None if there is none or the caller may not see it (answered alike)."""
    ledger = service.ledger
    by_seq = len(report) <= SEQ_DIGITS_MAX
    if by_seq:
        candidates = [int(report)] if int(report) < ledger.size() else []
    else:
        readmodel.current(ledger)
        candidates = readmodel.entries_naming(ledger, [report], ledger.size())
    for seq in candidates:
        entry = ledger.entry(seq)
        if entry.kind != ENTRY_KIND or \
                (not by_seq and ReconcileReport.of(entry).report_sha256 != report):
            continue
        return entry if ledger_views.may_see(principal, entry) else None
    return None


@router.get("/reports", summary="Reconciliation reports checked into the ledger, newest first",
            responses={**ok("A page of the reports the caller may see, newest first, and "
                            "the cursor of the next page (`next.before`, null on the last).",
                            newest=link("show_report", "The newest report.",
                                        report="$response.body#/reports/0/seq")),
                       **errors()})
def list_reports(limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 before: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
                 principal: Principal = Depends(readers),
                 service: Service = Depends(get_service)) -> dict[str, Any]:
    shown, cursor = newest_reports(service.ledger, principal, limit, before)
    attested = attestations_by_report(service.ledger, shown)
    return {"reports": [{**report_json(entry), "attestations": [
                a.to_json() for a in attested.get(entry.seq, [])]} for entry in shown],
            "next": None if cursor is None else {"before": cursor}}


@router.get("/reports/{report}", summary="One report, by ledger seq or report SHA-256",
            operation_id="show_report", responses=errors(403, 404))
def show_report(report: Annotated[str, Path(pattern=r"^([0-9]{1,13}|[0-9a-f]{64})$")],
                principal: Principal = Depends(readers),
                service: Service = Depends(get_service)) -> dict[str, Any]:
    entry = find_report(service, principal, report)
    if entry is None:  # another vault's report is answered as if it did not exist
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no reconciliation report {report}")
    return {**report_json(entry), "attestations": [
        a.to_json() for a in attestations_of(service.ledger, entry)]}
