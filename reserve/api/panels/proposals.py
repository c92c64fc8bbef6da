"""Pending proposals panel: approval progress, remaining delay and who still needs to act.

The newest open proposals (`reserve_views.PENDING_SHOWN`) with the policy engine's own
decisions (WorkflowService.decisions), evaluated at the service clock's `now`, and the
exact count of every open proposal per state from the read model; each proposal links to
its page with the full explanation, and the panel to /dashboard/proposals, which pages
through all the open ones. Its cost is that page, not the number of open proposals.
"""

from __future__ import annotations

from reserve.api import reserve_views as views
from reserve.api.panels import PanelContext, PanelView


def provide(context: PanelContext) -> PanelView | None:
    with views.workflow_access(context.service).reading() as workflow:
        if not workflow.projection.vaults:
            return None
        counts = views.open_counts(workflow, context.principal)
        shown, older = views.open_page(workflow, context.principal)
        rows = views.pending_rows(workflow, shown, context.now)
    total = sum(counts.values())
    summary = f"{total} open proposal{'s' if total != 1 else ''}"
    if total:
        summary += " (" + ", ".join(f"{count} {state}" for state, count in counts.items()
                                    if count) + ")"
    if older is not None:
        summary += f"; the newest {len(rows)} below"
    return PanelView(summary=summary, template="proposals.html",
                     data={"proposals": rows, "total": total, "more": older is not None},
                     links=(("All open proposals", "/dashboard/proposals"),
                            ("All proposals (JSON)", "/api/proposals")))
