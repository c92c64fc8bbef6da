"""The energy report's arithmetic: per site, energy (kWh, and MWh shown from kWh without
floats), allocated energy, utilisation, mined satoshis and satoshis per MWh.

Mined satoshis come from a public-sector statement's classified movements
(reserve.statement.flows): the `mining` movements (coinbase outputs) into a mining site's
payout wallets are that site's. So the report's mined total is the statement's `mining`
flow into the sites' wallets for the same blocks, by construction.

Rounding (all integer, all floor): allocated_kwh = capacity_kw x seconds // 3600;
utilisation_bp = energy_kwh x 36_000_000 // (capacity_kw x seconds) (basis points of the
allocated energy); sats_per_mwh = mined_sats x 1000 // energy_kwh (None without energy).
A reading counts when its whole period lies inside the report's period; readings that
straddle a boundary are counted separately (`straddling_readings`), never prorated.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from reserve.errors import MiningError
from reserve.mining.readings import Reading, format_time, seconds_between
from reserve.mining.sites import Registry, Site


def mwh_text(kwh: int) -> str:
    """kWh shown as MWh with three decimals, from the integer: 12345 -> "12.345 MWh"."""
    sign = "-" if kwh < 0 else ""
    whole, part = divmod(abs(kwh), 1000)
    return f"{sign}{whole:,}.{part:03d} MWh"


def attribute(movements: Iterable[Mapping[str, Any]], sites: Sequence[Site]
              ) -> dict[str, int]:
    """Mined satoshis by site: each `mining` movement into a mining site's payout wallet
    is that site's (a wallet is the payout wallet of one site at most)."""
    owner = {wallet: site.site for site in sites if site.kind == "mining"
             for wallet in site.payout_wallets}
    mined = {site.site: 0 for site in sites if site.kind == "mining"}
    for movement in movements:
        if movement.get("class") == "mining" and movement.get("wallet") in owner:
            sats = movement.get("sats")
            if isinstance(sats, bool) or not isinstance(sats, int):
                raise MiningError(f"movement {movement.get('txid')}: sats is not an integer")
            mined[owner[str(movement["wallet"])]] += sats
    return mined


def site_figures(site: Site, readings: Iterable[Reading], mined_sats: int | None,
                 start: datetime, end: datetime) -> dict[str, Any]:
    seconds = seconds_between(start, end)
    inside = [r for r in readings if r.site == site.site
              and start <= r.period_start and r.period_end <= end]
    straddling = [r for r in readings if r.site == site.site and r not in inside
                  and r.period_start < end and start < r.period_end]
    energy = sum(r.energy_kwh for r in inside)
    figures: dict[str, Any] = {
        "site": site.site, "kind": site.kind, "operator": site.operator,
        "capacity_kw": site.capacity_kw, "energy_kwh": energy, "energy_mwh": mwh_text(energy),
        "allocated_kwh": site.capacity_kw * seconds // 3600,
        "utilisation_bp": energy * 36_000_000 // (site.capacity_kw * seconds),
        "readings": len(inside), "straddling_readings": len(straddling),
        "tariff_minor_per_kwh": site.tariff_minor_per_kwh, "currency": site.currency,
        "tariff_paid_minor": energy * site.tariff_minor_per_kwh,
        "mined_sats": mined_sats,
        "sats_per_mwh": None if mined_sats is None or energy == 0
        else mined_sats * 1000 // energy}
    return figures


def build_report(registry: Registry, readings: Sequence[Reading],
                 statement: Mapping[str, Any], start: datetime, end: datetime
                 ) -> dict[str, Any]:
    """The report over [start, end) with mined satoshis from `statement` (an exported
    public-sector statement whose period must be this one)."""
    if end <= start:
        raise MiningError("the report's period ends at or before it starts")
    period = statement.get("period") or {}
    wanted = (format_time(start), format_time(end))
    given = tuple(_time_text(period.get(k)) for k in ("start", "end"))
    if given != wanted:
        raise MiningError(f"the statement covers {given[0]} .. {given[1]}, not the report's "
                          f"period {wanted[0]} .. {wanted[1]}")
    movements = statement.get("movements")
    if not isinstance(movements, list):
        raise MiningError("the statement has no movements (an exported statement JSON)")
    mined = attribute(movements, registry.sites)
    rows = [site_figures(s, readings, mined.get(s.site), start, end) for s in registry.sites]
    energy = sum(r["energy_kwh"] for r in rows)
    mining_energy = sum(r["energy_kwh"] for r in rows if r["kind"] == "mining")
    mined_total = sum(mined.values())
    return {"format": "reserve-energy-report/1", "period": {"start": wanted[0],
                                                            "end": wanted[1]},
            "statement_blocks": statement.get("blocks"),
            "sites": rows,
            "total": {"energy_kwh": energy, "energy_mwh": mwh_text(energy),
                      "allocated_kwh": sum(r["allocated_kwh"] for r in rows),
                      "mining_energy_kwh": mining_energy, "mined_sats": mined_total,
                      "sats_per_mwh": mined_total * 1000 // mining_energy
                      if mining_energy else None}}


def _time_text(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return format_time(moment) if moment.tzinfo is not None else None
