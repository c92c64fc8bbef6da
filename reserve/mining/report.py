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
Revenue at the stated BTC price P (minor units per BTC): revenue_minor = mined x P // 10^8,
revenue_per_mwh_minor = mined x P x 1000 // (10^8 x energy_kwh). The expected yield is
basis.Difficulty.expected_sats. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from reserve import present
from reserve.errors import MiningError
from reserve.mining.basis import SATS_PER_BTC, Difficulty, Price
from reserve.mining.readings import Reading, format_time, seconds_between
from reserve.mining.sites import Registry, Site

FORMAT = "reserve-energy-report/1"
# The yield check's band: mined satoshis from half to twice what the fleet and the stated
# difficulty predict. Finding blocks is a Poisson process: over a period in which a site
# expects few blocks, a yield outside the band is likely by chance (docs/mining.md).
YIELD_LOW_BP, YIELD_HIGH_BP = 5_000, 20_000


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


def _covers(reading: Reading, moment: datetime) -> bool:
    return reading.period_start <= moment < reading.period_end


def _moment(text: Any) -> datetime | None:
    found = _time_text(text)
    return None if found is None else datetime.fromisoformat(found.replace("Z", "+00:00"))


def payouts_of(movements: Iterable[Mapping[str, Any]], site: Site
               ) -> list[Mapping[str, Any]]:
    """The `mining` movements into the site's payout wallets, in chain order."""
    wallets = set(site.payout_wallets)
    return [m for m in movements if m.get("class") == "mining" and m.get("wallet") in wallets]


def site_figures(site: Site, readings: Iterable[Reading], mined_sats: int | None,
                 start: datetime, end: datetime, *, price: Price | None = None,
                 difficulty: Difficulty | None = None, payouts: int = 0) -> dict[str, Any]:
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
        "tariff_per_mwh_minor": site.tariff_minor_per_kwh * 1000,
        "mined_sats": mined_sats, "payouts": payouts if site.kind == "mining" else None,
        "sats_per_mwh": None if mined_sats is None or energy == 0
        else mined_sats * 1000 // energy}
    figures.update(revenue_figures(site, energy, mined_sats, price))
    figures.update(yield_figures(site, energy, mined_sats, difficulty))
    return figures


def revenue_figures(site: Site, energy_kwh: int, mined_sats: int | None,
                    price: Price | None) -> dict[str, Any]:
    """Revenue at the stated price (minor units of its currency, floor) and per MWh, and
    the margin per MWh over the tariff when both are in the same currency."""
    if price is None or mined_sats is None:
        return {"revenue_minor": None, "revenue_per_mwh_minor": None,
                "margin_per_mwh_minor": None}
    revenue = mined_sats * price.minor_per_btc // SATS_PER_BTC
    per_mwh = None if energy_kwh == 0 else \
        mined_sats * price.minor_per_btc * 1000 // (SATS_PER_BTC * energy_kwh)
    margin = None if per_mwh is None or price.currency != site.currency else \
        per_mwh - site.tariff_minor_per_kwh * 1000
    return {"revenue_minor": revenue, "revenue_per_mwh_minor": per_mwh,
            "margin_per_mwh_minor": margin}


def yield_figures(site: Site, energy_kwh: int, mined_sats: int | None,
                  difficulty: Difficulty | None) -> dict[str, Any]:
    """What the fleet's declared efficiency and the stated difficulty predict (basis.py)
    and the mined satoshis as basis points of it."""
    efficiency = site.efficiency_mj_per_th
    if difficulty is None or mined_sats is None or not efficiency:
        return {"efficiency_mj_per_th": efficiency or None, "expected_sats": None,
                "expected_blocks_milli": None, "yield_bp": None}
    expected = difficulty.expected_sats(energy_kwh, efficiency)
    return {"efficiency_mj_per_th": efficiency, "expected_sats": expected,
            "expected_blocks_milli": difficulty.expected_blocks_milli(energy_kwh, efficiency),
            "yield_bp": None if expected == 0 else mined_sats * 10_000 // expected}


def anomalies(registry: Registry, readings: Sequence[Reading],
              movements: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
              start: datetime, end: datetime) -> list[dict[str, Any]]:
    """What does not add up (docs/mining.md#anomalies), in a fixed order: per site, payouts
    without a reading, readings without a payout, energy over the allocation and yield far
    from the expected; then mined coins into a registered wallet that is no site's."""
    found: list[dict[str, Any]] = []
    for site, row in zip(registry.sites, rows, strict=True):
        mine = [r for r in readings if r.site == site.site]
        if site.kind == "mining":
            paid = payouts_of(movements, site)
            for payout in paid:
                moment = _moment(payout.get("time"))
                if moment is None or not any(_covers(r, moment) for r in mine):
                    found.append({
                        "kind": "payout_without_reading", "site": site.site,
                        "txid": payout.get("txid"), "time": payout.get("time"),
                        "sats": payout.get("sats"),
                        "detail": f"{_btc(payout.get('sats'))} paid to {site.site} at "
                                  f"{payout.get('time')} (tx {payout.get('txid')}), when no "
                                  "reading of the site covers that time"})
            for reading in mine:
                if not (start <= reading.period_start and reading.period_end <= end):
                    continue
                if not any((m := _moment(p.get("time"))) is not None and _covers(reading, m)
                           for p in paid):
                    found.append({
                        "kind": "reading_without_payout", "site": site.site,
                        "period_start": format_time(reading.period_start),
                        "period_end": format_time(reading.period_end),
                        "energy_kwh": reading.energy_kwh,
                        "detail": f"{site.site} consumed {reading.energy_kwh:,} kWh over "
                                  f"{format_time(reading.period_start)} .. "
                                  f"{format_time(reading.period_end)} and no payout came"})
        if row["energy_kwh"] > row["allocated_kwh"]:
            found.append({"kind": "over_allocation", "site": site.site,
                          "energy_kwh": row["energy_kwh"],
                          "allocated_kwh": row["allocated_kwh"],
                          "detail": f"{site.site} consumed {row['energy_kwh']:,} kWh, above "
                                    f"the {row['allocated_kwh']:,} kWh its capacity allows "
                                    "over the period"})
        ratio = row.get("yield_bp")
        if row.get("expected_sats") is not None and (
                ratio is None or not YIELD_LOW_BP <= ratio <= YIELD_HIGH_BP):
            found.append({"kind": "yield_off_expected", "site": site.site,
                          "mined_sats": row["mined_sats"],
                          "expected_sats": row["expected_sats"], "yield_bp": ratio,
                          "detail": f"{site.site} mined {_btc(row['mined_sats'])} where its "
                                    f"fleet and the stated difficulty predict "
                                    f"{_btc(row['expected_sats'])} ({_percent(ratio)}; outside "
                                    f"{_percent(YIELD_LOW_BP)} .. {_percent(YIELD_HIGH_BP)})"})
    owned = {w for s in registry.sites for w in s.payout_wallets}
    for movement in movements:
        if movement.get("class") == "mining" and movement.get("wallet") not in owned:
            found.append({"kind": "mining_outside_sites", "site": None,
                          "wallet": movement.get("wallet"), "txid": movement.get("txid"),
                          "sats": movement.get("sats"),
                          "detail": f"{_btc(movement.get('sats'))} mined into wallet "
                                    f"{movement.get('wallet')} (tx {movement.get('txid')}), "
                                    "which is no site's payout wallet"})
    return found


def _btc(sats: Any) -> str:
    if isinstance(sats, bool) or not isinstance(sats, int):
        return f"{sats!r} sats"
    return f"{present.format_amount(sats, 'BTC')} ({sats:,} sats)"


def _percent(bp: int | None) -> str:
    return "no expected yield" if bp is None else f"{bp // 100}.{bp % 100:02d}%"


def build_report(registry: Registry, readings: Sequence[Reading],
                 statement: Mapping[str, Any], start: datetime, end: datetime, *,
                 price: Price | None = None, difficulty: Difficulty | None = None
                 ) -> dict[str, Any]:
    """The report's figures over [start, end), mined satoshis from `statement` (the body
    of a public-sector statement whose period must be this one)."""
    if end <= start:
        raise MiningError("the report's period ends at or before it starts")
    period = statement.get("period") or {}
    wanted = (format_time(start), format_time(end))
    given = tuple(_time_text(period.get(k)) for k in ("start", "end"))
    if given != wanted:
        raise MiningError(f"the statement covers {given[0]} .. {given[1]}, not the report's "
                          f"period {wanted[0]} .. {wanted[1]}")
    movements = statement.get("movements")
    if not isinstance(movements, list) or not all(isinstance(m, dict) for m in movements):
        raise MiningError("the statement has no movements (an exported statement JSON)")
    mined = attribute(movements, registry.sites)
    rows = [site_figures(s, readings, mined.get(s.site), start, end, price=price,
                         difficulty=difficulty, payouts=len(payouts_of(movements, s)))
            for s in registry.sites]
    energy = sum(r["energy_kwh"] for r in rows)
    mining_energy = sum(r["energy_kwh"] for r in rows if r["kind"] == "mining")
    mined_total = sum(mined.values())
    flow = sum(int(m["sats"]) for m in movements if m.get("class") == "mining")
    return {"format": FORMAT, "period": {"start": wanted[0], "end": wanted[1]},
            "statement_blocks": statement.get("blocks"),
            "price": price.to_json() if price else None,
            "difficulty": difficulty.to_json() if difficulty else None,
            "sites": rows,
            "total": {"energy_kwh": energy, "energy_mwh": mwh_text(energy),
                      "allocated_kwh": sum(r["allocated_kwh"] for r in rows),
                      "mining_energy_kwh": mining_energy, "mined_sats": mined_total,
                      "sats_per_mwh": mined_total * 1000 // mining_energy
                      if mining_energy else None,
                      "statement_mining_sats": flow,
                      "matches_statement": flow == mined_total},
            "anomalies": anomalies(registry, readings, movements, rows, start, end)}


def _time_text(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return format_time(moment) if moment.tzinfo is not None else None
