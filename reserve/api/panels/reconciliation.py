"""Reconciliation panel: the latest reports checked into the ledger, status and findings."""

from __future__ import annotations

from reserve import present
from reserve.api.panels import PanelContext, PanelView
from reserve.api.routes.reconcile import report_json, visible_reports

REPORTS_SHOWN = 10


def provide(context: PanelContext) -> PanelView | None:
    reports = [report_json(e) for e in visible_reports(context.service, context.principal)]
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
