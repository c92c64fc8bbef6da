"""Reconciliation panel: the latest reports checked into the ledger, status and findings.

The newest REPORTS_SHOWN the caller may see, read through the kind index newest first
(`newest_reports`, which reads a bounded number of report entries): the panel's cost does
not grow with the reports of decades. `GET /api/reconcile/reports` pages through them all.
"""

from __future__ import annotations

from reserve import present
from reserve.api.panels import PanelContext, PanelView
from reserve.api.routes.reconcile import newest_reports, report_json

REPORTS_SHOWN = 10


def provide(context: PanelContext) -> PanelView | None:
    newest, _ = newest_reports(context.ledger, context.principal, REPORTS_SHOWN)
    if not newest:
        return None
    reports = [report_json(entry) for entry in newest]
    rows = []
    for report in reports:
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
    latest = reports[0]
    return PanelView(summary=f"Latest report: {latest['status']} "
                             f"({latest['time'][:19].replace('T', ' ')}, by {latest['auditor']})",
                     columns=("time", "status", "vaults", "findings", "block",
                              "ledger size"),
                     rows=tuple(rows),
                     links=(("Reports (JSON)", "/api/reconcile/reports"),))
