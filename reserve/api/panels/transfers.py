"""Transfer timeline panel: every transfer's steps (approval to confirmation), newest first."""

from __future__ import annotations

from reserve import present
from reserve.api import reserve_views as views
from reserve.api.panels import PanelContext, PanelView
from reserve.present import format_time
from reserve.proposals.proposal import TransferBody


def provide(context: PanelContext) -> PanelView | None:
    with views.workflow_access(context.service).reading() as workflow:
        transfers = [s for s in workflow.proposals()
                     if isinstance(s.proposal.body, TransferBody)
                     and context.principal.may_see_vault(s.proposal.vault)]
    if not transfers:
        return None
    events = []
    for status in transfers:
        body = status.proposal.body
        assert isinstance(body, TransferBody)  # filtered above
        amount = present.format_amount(body.amount, body.asset)
        for change in status.changes:
            detail = status.txid if change.state in ("broadcast", "confirmed") else ""
            if change.state == "confirmed":
                detail += f" ({views.confirmations(status)} conf.)"
            events.append((change.seq, (format_time(change.at), status.proposal.vault,
                                        status.digest[:12], amount, change.state,
                                        detail or change.reason)))
    events.sort(key=lambda item: item[0], reverse=True)
    states: dict[str, int] = {}
    for status in transfers:
        states[status.state] = states.get(status.state, 0) + 1
    summary = f"{len(transfers)} transfers: " + ", ".join(
        f"{count} {state}" for state, count in sorted(states.items()))
    return PanelView(summary=summary,
                     columns=("time", "vault", "proposal", "amount", "step", "detail"),
                     rows=tuple(row for _, row in events),
                     links=(("Transfers (JSON)", "/api/transfers"),))
