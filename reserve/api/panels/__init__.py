"""The dashboard's panels: a registry that other parts of the reserve plug into.

Each panel (holdings, policies, proposals, transfers, reconciliation) is filled by a
provider: a function taking a `PanelContext` and returning a `PanelView`, or None when it
has nothing to show. The built-in providers are the modules `reserve/api/panels/<key>.py`,
each exporting `provide(context) -> PanelView | None`, imported by name in
`PanelRegistry.attach_default_providers`, so a missing module fails loudly at start-up. More
panels come from `registry.register(Panel(key, title, order, provider))`, for example
from create_app's `panels=` argument.

A panel without a provider shows "not configured". Providers receive the caller's
principal and must show a custodian only their own vaults (see `Principal.may_see_vault`).
A `PanelView` is rendered by the generic template (summary, table, optional line chart
drawn as inline SVG) unless it names its own template under `templates/panels/`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reserve.api.auth import ALL_ROLES, Principal, Role

log = logging.getLogger(__name__)
ROWS_MAX = 200
POINTS_MAX = 1000


@dataclass(frozen=True)
class Chart:
    """A line chart: (time, value) points in order; values are integers in `unit`.

    With `asset`, the value axis reads in that asset's units ("1.50000000 BTC"); times
    are ISO 8601 ledger times, placed on the time axis by when they happened.
    """

    title: str
    unit: str
    points: tuple[tuple[str, int], ...]
    asset: str = ""
    tokens: Mapping[str, Any] = field(default_factory=dict)  # asset -> present.Unit


@dataclass(frozen=True)
class PanelView:
    summary: str = ""
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    charts: tuple[Chart, ...] = ()
    template: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()  # (text, href) shown under the panel


@dataclass(frozen=True)
class PanelContext:
    ledger: Any
    principal: Principal
    now: datetime
    service: Any


Provider = Callable[[PanelContext], PanelView | None]


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    order: int
    provider: Provider | None = None
    roles: frozenset[Role] = ALL_ROLES
    description: str = ""


@dataclass(frozen=True)
class RenderedPanel:
    panel: Panel
    view: PanelView | None
    state: str  # "ok", "empty", "not configured", "error"
    message: str = ""


DEFAULT_PANELS = (
    Panel("holdings", "Reserve holdings", 10,
          description="Holdings per asset and vault, with their history."),
    Panel("policies", "Custody policies", 20,
          description="Each vault's policy in plain words."),
    Panel("proposals", "Pending proposals", 30,
          description="Approval progress, remaining delay and who still needs to act."),
    Panel("transfers", "Transfers", 40,
          description="Each transfer's current state, from approval to confirmation."),
    Panel("reconciliation", "Reconciliation", 50,
          description="The latest reconciliation reports and their findings."),
)


class PanelRegistry:
    def __init__(self, panels: tuple[Panel, ...] = DEFAULT_PANELS) -> None:
        self._panels: dict[str, Panel] = {}
        for panel in panels:
            self.register(panel)

    def register(self, panel: Panel) -> None:
        """Add a panel, or replace the one with the same key."""
        self._panels[panel.key] = panel

    def attach_default_providers(self) -> None:
        """Attach the built-in providers to the panels registered without one."""
        # Imported here, not at the top: each provider module imports this package's types.
        from reserve.api.panels import holdings, policies, proposals, reconciliation, transfers

        providers: dict[str, Provider] = {
            "holdings": holdings.provide,
            "policies": policies.provide,
            "proposals": proposals.provide,
            "reconciliation": reconciliation.provide,
            "transfers": transfers.provide,
        }
        for key, panel in list(self._panels.items()):
            provide = providers.get(key)
            if panel.provider is None and provide is not None:
                self._panels[key] = Panel(panel.key, panel.title, panel.order, provide,
                                          panel.roles, panel.description)

    def panels(self) -> list[Panel]:
        return sorted(self._panels.values(), key=lambda panel: (panel.order, panel.key))

    def render(self, context: PanelContext) -> list[RenderedPanel]:
        rendered = []
        for panel in self.panels():
            if context.principal.role not in panel.roles:
                continue
            rendered.append(render_panel(panel, context))
        return rendered


def render_panel(panel: Panel, context: PanelContext) -> RenderedPanel:
    if panel.provider is None:
        return RenderedPanel(panel, None, "not configured",
                             "not configured: the module that provides this panel is not "
                             "installed in this service yet")
    try:
        view = panel.provider(context)
    except Exception as error:
        log.exception("panel %s failed", panel.key)
        return RenderedPanel(panel, None, "error", f"this panel failed: {error}")
    if view is None:
        return RenderedPanel(panel, None, "empty", "nothing to show yet")
    bounded = PanelView(view.summary, view.columns, view.rows[:ROWS_MAX],
                        tuple(Chart(c.title, c.unit, c.points[-POINTS_MAX:], c.asset,
                                    c.tokens) for c in view.charts), view.template, view.data, view.links)
    return RenderedPanel(panel, bounded, "ok")


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def chart_svg_points(chart: Chart, width: int = 560, height: int = 140) -> dict[str, Any]:
    """Scale a chart's points into SVG coordinates, with axis ticks (pure; the template's).

    x is by time when every label is an ISO time (evenly spaced otherwise); the value
    axis runs from the lowest to the highest value, labelled in the asset's units when the
    chart names its asset. Amounts stay integers; only pixel positions are fractions.
    """
    from reserve import present

    values = [value for _, value in chart.points]
    if not values:
        return {"polyline": "", "low": 0, "high": 0, "width": width, "height": height,
                "y_ticks": [], "x_ticks": []}
    low, high = min(values), max(values)
    span = (high - low) or 1
    moments = [_moment(label) for label, _ in chart.points]
    known = [m for m in moments if m is not None]
    if len(known) == len(moments) and len(known) > 1 and known[-1] > known[0]:
        start, total = known[0], (known[-1] - known[0]).total_seconds()
        xs = [(m - start).total_seconds() * width / total for m in known]
    else:
        step = width / max(len(values) - 1, 1)
        xs = [i * step for i in range(len(values))]

    def y(value: int) -> float:
        return round(height - (value - low) * height / span, 1)

    unit = present.unit_of(chart.asset, chart.tokens) if chart.asset else None

    def text(value: int) -> str:  # '50.00 ETH', '1.50000000 BTC': exact, trailing zeros cut
        if unit is None:
            return f"{value} {chart.unit}"
        return f"{present.decimal_text(value, unit.decimals, unit.places_min)} {unit.symbol}"

    coords = [f"{round(x, 1)},{y(v)}" for x, v in zip(xs, values, strict=True)]
    y_ticks = [{"y": y(v), "text": text(v)} for v in sorted({low, high})]
    x_ticks = []
    for index in sorted({0, len(values) - 1}):
        label = chart.points[index][0]
        moment = moments[index]
        x_ticks.append({"x": round(xs[index], 1), "anchor": "start" if index == 0 else "end",
                        "text": moment.strftime("%Y-%m-%d %H:%M") if moment else label[:16]})
    return {"polyline": " ".join(coords), "low": low, "high": high, "width": width,
            "height": height, "first": chart.points[0][0], "last": chart.points[-1][0],
            "low_text": text(low), "high_text": text(high), "y_ticks": y_ticks,
            "x_ticks": x_ticks}
