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

router = APIRouter(prefix="/api/reconcile", tags=["reconciliation"])
readers = require(*ALL_ROLES)
SEQ_MAX = 2**40


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


def visible_reports(service: Service, principal: Principal) -> list[Any]:
    return [entry for entry in service.ledger.entries(kinds=(ENTRY_KIND,))
            if ledger_views.may_see(principal, entry)]


@router.get("/reports", summary="Reconciliation reports checked into the ledger, newest first",
            responses={**ok("The reports the caller may see.", newest=link(
                "show_report", "The newest report.", report="$response.body#/reports/0/seq")),
                **errors()})
def list_reports(limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 principal: Principal = Depends(readers),
                 service: Service = Depends(get_service)) -> dict[str, Any]:
    reports = visible_reports(service, principal)
    shown = list(reversed(reports[-limit:]))
    attested = attestations_by_report(service.ledger, shown)
    return {"count": len(reports),
            "reports": [{**report_json(entry), "attestations": [
                a.to_json() for a in attested.get(entry.seq, [])]} for entry in shown]}


@router.get("/reports/{report}", summary="One report, by ledger seq or report SHA-256",
            operation_id="show_report", responses=errors(403, 404))
def show_report(report: Annotated[str, Path(pattern=r"^([0-9]{1,13}|[0-9a-f]{64})$")],
                principal: Principal = Depends(readers),
                service: Service = Depends(get_service)) -> dict[str, Any]:
    for entry in service.ledger.entries(kinds=(ENTRY_KIND,)):
        if str(entry.seq) == report or ReconcileReport.of(entry).report_sha256 == report:
            if not ledger_views.may_see(principal, entry):
                break  # another vault's report: answered as if it did not exist
            return {**report_json(entry), "attestations": [
                a.to_json() for a in attestations_of(service.ledger, entry)]}
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no reconciliation report {report}")
