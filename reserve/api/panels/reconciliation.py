"""Reconciliation panel: the latest reports checked into the ledger, status and findings.

Only the newest `REPORTS_SCANNED` report entries are read (through the kind index), of
which the caller may see some: the panel's cost does not grow with the reports of decades.
Every report is listed by `GET /api/reconcile/reports`.
"""

from __future__ import annotations

from typing import Any

from reserve import present
from reserve.api import ledger_views
from reserve.api.panels import PanelContext, PanelView
from reserve.api.routes.reconcile import report_json
from reserve.reconcile.report import ENTRY_KIND

REPORTS_SHOWN = 10
REPORTS_SCANNED = 100


def newest_reports(context: PanelContext) -> list[Any]:
    """The report entries the caller may see among the newest REPORTS_SCANNED, oldest first."""
    ledger = context.ledger
    newest = ledger.kind_sequences((ENTRY_KIND,), newest_first=True, limit=REPORTS_SCANNED)
    if not newest:
        return []
    return [entry for entry in ledger.entries(min(newest), kinds=(ENTRY_KIND,))
            if ledger_views.may_see(context.principal, entry)]


def provide(context: PanelContext) -> PanelView | None:
    reports = [report_json(e) for e in newest_reports(context)[-REPORTS_SHOWN:]]
    if not reports:
        return None
    rows = []
    for report in reversed(reports[-REPORTS_SHOWN:]):
        vaults = "; ".join(
            f"{row.get('vault_id')}: {row.get('status')}, difference "
            f"{present.format_amount(int(row.get('difference', 0)), str(row.get('asset')))}"
            for row in report["summary"] if isinstance(row, dict))
        findings = ", ".join(f"{count} {severity}" for severity, count
                             in sorted(report["findings_by_severity"].items())) or "none"
        block = report["block"] or {}
        rows.append((report["time"][:19].replace("T", " "), report["status"], vaults, findings,
                     f"{block.get('network')} {block.get('height')}",
                     str(report["ledger_tree_size"])))
    latest = reports[-1]
    return PanelView(summary=f"Latest report: {latest['status']} "
                             f"({latest['time'][:19].replace('T', ' ')}, by {latest['auditor']})",
                     columns=("time", "status", "vaults", "findings", "block",
                              "ledger size"),
                     rows=tuple(rows),
                     links=(("Reports (JSON)", "/api/reconcile/reports"),))
