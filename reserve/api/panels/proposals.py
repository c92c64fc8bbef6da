"""Pending proposals panel: approval progress, remaining delay and who still needs to act.

The decision is the policy engine's own (WorkflowService.decision), evaluated at the
service clock's `now`; each proposal links to its page with the full explanation.
"""

from __future__ import annotations

from reserve.api import reserve_views as views
from reserve.api.panels import PanelContext, PanelView


def provide(context: PanelContext) -> PanelView | None:
    with views.workflow_access(context.service).reading() as workflow:
        if not workflow.projection.vaults:
            return None
        rows = views.pending_rows(workflow, context.principal, context.now)
    return PanelView(summary=f"{len(rows)} open proposal{'s' if len(rows) != 1 else ''}",
                     template="proposals.html", data={"proposals": rows})
