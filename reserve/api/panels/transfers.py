"""Transfers panel: one row per transfer with its current state, newest first.

The full list, each row linking to its proposal page, is the /dashboard/transfers page;
each transfer's timeline of state changes is on its proposal page.
"""

from __future__ import annotations

from reserve import present
from reserve.api import reserve_views as views
from reserve.api.panels import PanelContext, PanelView
from reserve.present import format_time
from reserve.proposals.proposal import TransferBody

TRANSFERS_SHOWN = 10


def provide(context: PanelContext) -> PanelView | None:
    with views.workflow_access(context.service).reading() as workflow:
        transfers = [s for s in workflow.proposals()
                     if isinstance(s.proposal.body, TransferBody)
                     and context.principal.may_see_vault(s.proposal.vault)]
    if not transfers:
        return None
    rows = []
    for status in reversed(transfers[-TRANSFERS_SHOWN:]):
        body = status.proposal.body
        assert isinstance(body, TransferBody)  # filtered above
        changed = format_time(status.changes[-1].at) if status.changes else ""
        rows.append((status.digest[:12], status.proposal.vault,
                     present.format_amount(body.amount, body.asset), status.state,
                     str(views.confirmations(status)), changed))
    states: dict[str, int] = {}
    for status in transfers:
        states[status.state] = states.get(status.state, 0) + 1
    summary = f"{len(transfers)} transfers: " + ", ".join(
        f"{count} {state}" for state, count in sorted(states.items()))
    return PanelView(summary=summary,
                     columns=("proposal", "vault", "amount", "state", "confirmations",
                              "last change"),
                     rows=tuple(rows),
                     links=(("All transfers", "/dashboard/transfers"),
                            ("Transfers (JSON)", "/api/transfers")))
