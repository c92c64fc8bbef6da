"""Holdings panel: each vault's balance per asset, with its history as a chart.

Computed from the chain layers' ledger entries (deposits, executed and confirmed
transfers, reorg reversals); amounts stay exact integers and are shown as decimals.
"""

from __future__ import annotations

from reserve import present
from reserve.api import reserve_views as views
from reserve.api.panels import Chart, PanelContext, PanelView


def provide(context: PanelContext) -> PanelView | None:
    found = views.holdings(context.ledger, context.principal)
    if not found:
        return None
    # The balance carries its symbol: no asset column, so the table fits a third of the
    # page beside the charts even with an 18-decimal token's balance.
    rows = tuple((h.vault, present.format_amount(h.balance, h.asset, h.tokens),
                  str(h.entries)) for h in found)
    # Each line starts from zero at the vault's first recorded entry, so a single deposit
    # still draws a rise rather than a lone point.
    charts = tuple(Chart(f"{h.vault}: {h.unit.symbol} held", h.unit.base,
                         ((h.history[0][0], 0), *h.history), asset=h.asset,
                         tokens=h.tokens) for h in found)
    # One total per asset, never mixed: each in its own units.
    totals: dict[str, int] = {}
    tokens = found[0].tokens
    for holding in found:
        totals[holding.asset] = totals.get(holding.asset, 0) + holding.balance
    summary = "Total: " + ", ".join(present.format_amount(amount, asset, tokens)
                                    for asset, amount in sorted(totals.items()))
    return PanelView(summary=summary,
                     columns=("vault", "balance", "entries"),
                     rows=rows, charts=charts, links=(("All vaults (JSON)", "/api/vaults"),))
