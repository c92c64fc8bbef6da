"""Events of the electricity allocation (docs/mining.md): the allocation's ceiling, the
sites that share it, and the meter operators' signed energy readings."""

from __future__ import annotations

from dataclasses import dataclass

from reserve.events.base import Event, Hex, Json


@dataclass(frozen=True)
class AllocationSet(Event):
    """The allocation's ceiling in kW (2,000,000 kW in phase one); a later entry replaces
    an earlier one, and may not fall below what the registered sites already hold."""

    KIND = "mining.allocation_set"
    name: str
    ceiling_kw: int
    note: str


@dataclass(frozen=True)
class SiteRegistered(Event):
    """A site sharing the allocation: a mining site or an AI data centre, its allocated
    capacity (kW), its grid meter and the meter operator's Ed25519 key (a note verifier
    key, name+hash+base64), its tariff (minor currency units per kWh) and, for a mining
    site, the registered public-sector wallets its payouts go to, the addresses a mining
    pool pays it from (its payouts count as mined coins, like coinbase outputs) and the
    fleet's declared efficiency in millijoules per terahash (0: not declared)."""

    KIND = "mining.site_registered"
    site: str
    operator: str
    site_kind: str  # mining | ai
    capacity_kw: int
    meter: str
    meter_key: str
    tariff_minor_per_kwh: int
    currency: str
    payout_wallets: Json  # [registered wallet name]
    pool_payers: Json  # [address a pool pays the site's payouts from]
    efficiency_mj_per_th: int


@dataclass(frozen=True)
class SiteChanged(Event):
    """A registered site changed or retired: `changes` maps each changed field (operator,
    capacity_kw, meter_key, tariff_minor_per_kwh, payout_wallets, pool_payers,
    efficiency_mj_per_th) to its new value; a retired site takes no more readings and
    frees its capacity. The meter key's rotation is one such change."""

    KIND = "mining.site_changed"
    site: str
    changes: Json
    retired: bool
    note: str


@dataclass(frozen=True)
class EnergyReading(Event):
    """A meter operator's signed reading: `energy_kwh` consumed by `site` over
    [period_start, period_end), with the signature over the reading document
    (format reserve-energy-reading/1) as the operator signed it."""

    KIND = "energy.reading"
    site: str
    meter: str
    period_start: str
    period_end: str
    energy_kwh: int
    meter_key: str
    signature: str


@dataclass(frozen=True)
class EnergyReportPublished(Event):
    """An energy report signed by an auditor (docs/mining.md#the-energy-report): its hash
    and signature, its period, the statement it took mined coins from, and its figures
    (per site and in total, and its anomalies), so a public page needs only this entry."""

    KIND = "mining.report_published"
    report_sha256: Hex
    signature: str  # base64 Ed25519
    auditor_key: str
    period: Json  # {start, end}
    statement_sha256: Hex
    ledger: Json  # {tree_size, root_hash}: the checkpoint the report read
    price: Json | None  # the stated BTC price and its source, or null
    difficulty: Json | None  # the stated network difficulty and its source, or null
    sites: Json  # [{site, kind, energy_kwh, mined_sats, sats_per_mwh, ...}]
    total: Json
    anomalies: Json  # [{kind, site, detail}]


EVENTS: tuple[type[Event], ...] = (AllocationSet, SiteRegistered, SiteChanged,
                                   EnergyReading, EnergyReportPublished)
