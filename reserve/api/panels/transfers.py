"""Transfers panel: the newest transfers with their current state, and those in flight.

The newest `TRANSFERS_SHOWN` come from the read model's newest-first page and the summary
counts the transfers not yet final (proposed to broadcast) per state, exactly, from its
state index: the panel costs what it shows, not the history. The full list, each row
linking to its proposal page, is the /dashboard/transfers page; each transfer's timeline
of state changes is on its proposal page.
"""

from __future__ import annotations

from reserve import present
from reserve.api import reserve_views as views
from reserve.api.panels import PanelContext, PanelView
from reserve.present import format_time
from reserve.proposals.proposal import TransferBody
from reserve.proposals.state import STATES, TERMINAL

TRANSFERS_SHOWN = 10
IN_FLIGHT = tuple(state for state in STATES if state not in TERMINAL)


def provide(context: PanelContext) -> PanelView | None:
    principal = context.principal
    with views.workflow_access(context.service).reading() as workflow:
        newest = workflow.page(views.proposal_query(principal, action="transfer",
                                                    newest_first=True, limit=TRANSFERS_SHOWN))
        states = {state: workflow.count(views.proposal_query(
            principal, action="transfer", states=frozenset({state}))) for state in IN_FLIGHT}
    if not newest:
        return None
    rows = []
    for status in newest:
        body = status.proposal.body
        assert isinstance(body, TransferBody)  # selected by action
        changed = format_time(status.changes[-1].at) if status.changes else ""
        rows.append((status.digest[:12], status.proposal.vault,
                     present.format_amount(body.amount, body.asset), status.state,
                     str(views.confirmations(status)), changed))
    in_flight = sum(states.values())
    summary = f"{in_flight} transfer{'s' if in_flight != 1 else ''} in flight"
    if in_flight:
        summary += ": " + ", ".join(f"{count} {state}" for state, count in states.items()
                                    if count)
    summary += f"; the newest {len(rows)} below"
    return PanelView(summary=summary,
                     columns=("proposal", "vault", "amount", "state", "confirmations",
                              "last change"),
                     rows=tuple(rows),
                     links=(("All transfers", "/dashboard/transfers"),
                            ("Transfers (JSON)", "/api/transfers")))
