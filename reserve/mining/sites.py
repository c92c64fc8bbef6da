"""The allocation and the sites that share it: what `mining.allocation_set` and
`mining.site_registered` entries say, and the checks a new one must pass.

Units: capacity and ceiling in integer kW, tariffs in integer minor currency units per
kWh. A site's meter key is the meter operator's Ed25519 public key as a note verifier key
(`name+hash+base64`, the form the ledger's other keys use). Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reserve.errors import CheckpointError, MiningError, NetworkSafetyError
from reserve.events.mining import AllocationSet, SiteChanged, SiteRegistered
from reserve.ledger.checkpoint import VerifierKey

KINDS = ("mining", "ai")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
METER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
PHASE_ONE_KW = 2_000_000
CEILING_KW_MAX = 100_000_000  # 100 GW: far above any national grid's surplus
TARIFF_MAX = 10_000_000
PAYOUT_WALLETS_MAX = 20
POOL_PAYERS_MAX = 20
# A fleet's efficiency in millijoules per terahash: 1 J/TH (far beyond any machine today)
# to 10,000 J/TH (an early-2010s GPU); 0 means not declared (no yield check).
EFFICIENCY_MJ_MIN, EFFICIENCY_MJ_MAX = 1_000, 10_000_000
TEXT_MAX = 200
# What `mining.site_changed` may change; a site's name, kind and meter stay (a new meter
# is a new site). Lists travel as JSON lists.
CHANGEABLE = ("operator", "capacity_kw", "meter_key", "tariff_minor_per_kwh",
              "payout_wallets", "pool_payers", "efficiency_mj_per_th")
LISTS = ("payout_wallets", "pool_payers")


def parse_efficiency(text: str | None) -> int:
    """A fleet efficiency given in J/TH (decimal text, at most three decimals) as integer
    millijoules per terahash; None is 0 (not declared)."""
    if text is None:
        return 0
    if not re.match(r"^\d{1,5}(\.\d{1,3})?$", text.strip()):
        raise MiningError(f"fleet efficiency must be J/TH as a decimal with at most three "
                          f"decimals (e.g. 17.5), got {text!r}")
    whole, _, part = text.strip().partition(".")
    return int(whole) * 1000 + int((part + "000")[:3])


def _text(value: Any, what: str, *, empty: bool = False) -> None:
    if not isinstance(value, str) or len(value) > TEXT_MAX or (not value and not empty) \
            or any(ord(c) < 32 for c in value):
        raise MiningError(f"{what} must be 1..{TEXT_MAX} printable characters")


def _count(value: Any, what: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise MiningError(f"{what} must be an integer in {low:,}..{high:,}, got {value!r}")


@dataclass(frozen=True)
class Allocation:
    name: str
    ceiling_kw: int
    note: str = ""

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise MiningError(f"allocation name {self.name!r}: 1..64 of a-z 0-9 . _ -")
        _count(self.ceiling_kw, "the allocation's ceiling (kW)", 1, CEILING_KW_MAX)
        _text(self.note, "the allocation's note", empty=True)

    def event(self) -> AllocationSet:
        return AllocationSet(name=self.name, ceiling_kw=self.ceiling_kw, note=self.note)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ceiling_kw": self.ceiling_kw, "note": self.note}


@dataclass(frozen=True)
class Site:
    site: str
    operator: str
    kind: str
    capacity_kw: int
    meter: str
    meter_key: str
    tariff_minor_per_kwh: int
    currency: str
    payout_wallets: tuple[str, ...] = ()
    pool_payers: tuple[str, ...] = ()
    efficiency_mj_per_th: int = 0
    retired: bool = False

    def __post_init__(self) -> None:
        if not NAME.match(self.site):
            raise MiningError(f"site name {self.site!r}: 1..64 of a-z 0-9 . _ -, starting "
                              "with a letter or digit")
        _text(self.operator, f"site {self.site}: the operator")
        if self.kind not in KINDS:
            raise MiningError(f"site {self.site}: kind must be one of {', '.join(KINDS)}, "
                              f"got {self.kind!r}")
        _count(self.capacity_kw, f"site {self.site}: capacity (kW)", 1, CEILING_KW_MAX)
        if not isinstance(self.meter, str) or not METER.match(self.meter):
            raise MiningError(f"site {self.site}: meter id {self.meter!r} must be 1..64 "
                              "letters, digits, '.', '_', ':' or '-'")
        if not self.meter_key:
            raise MiningError(f"site {self.site}: no meter key; give the meter operator's "
                              "Ed25519 public key (reserve mining meter keygen prints it)")
        self.verifier()
        _count(self.tariff_minor_per_kwh, f"site {self.site}: tariff (minor units per kWh)",
               0, TARIFF_MAX)
        if not CURRENCY.match(self.currency):
            raise MiningError(f"site {self.site}: currency must be a 3-letter ISO 4217 code, "
                              f"got {self.currency!r}")
        if self.kind == "mining" and not 1 <= len(self.payout_wallets) <= PAYOUT_WALLETS_MAX:
            raise MiningError(f"site {self.site}: a mining site names 1..{PAYOUT_WALLETS_MAX} "
                              "payout wallets (registered public-sector wallets)")
        if self.kind == "ai" and self.payout_wallets:
            raise MiningError(f"site {self.site}: an AI data centre has no payout wallets")
        if len(set(self.payout_wallets)) != len(self.payout_wallets):
            raise MiningError(f"site {self.site}: a payout wallet is named twice")
        self._check_mining_fields()

    def _check_mining_fields(self) -> None:
        if self.kind == "ai" and (self.pool_payers or self.efficiency_mj_per_th):
            raise MiningError(f"site {self.site}: an AI data centre has no pool and no "
                              "mining fleet")
        if len(self.pool_payers) > POOL_PAYERS_MAX:
            raise MiningError(f"site {self.site}: at most {POOL_PAYERS_MAX} pool payer "
                              "addresses")
        for address in self.pool_payers:
            from wallets.bitcoin.networks import address_networks  # bitcoinlib, when used

            try:
                address_networks(address)
            except NetworkSafetyError:
                raise MiningError(f"site {self.site}: pool payer {str(address)[:90]!r} is "
                                  "not a Bitcoin address") from None
        if len(set(self.pool_payers)) != len(self.pool_payers):
            raise MiningError(f"site {self.site}: a pool payer address is named twice")
        efficiency = self.efficiency_mj_per_th
        if efficiency != 0:
            _count(efficiency, f"site {self.site}: fleet efficiency (mJ/TH)",
                   EFFICIENCY_MJ_MIN, EFFICIENCY_MJ_MAX)

    def changed(self, changes: Mapping[str, Any]) -> Site:
        """This site with `changes` applied, checked as a new site would be."""
        unknown = sorted(set(changes) - set(CHANGEABLE))
        if unknown:
            raise MiningError(f"site {self.site}: {', '.join(unknown)} cannot be changed "
                              f"(only {', '.join(CHANGEABLE)}; a new meter is a new site)")
        for key in LISTS:
            if key in changes and not isinstance(changes[key], list | tuple):
                raise MiningError(f"site {self.site}: {key} must be a list")
        values: dict[str, Any] = {k: tuple(v) if k in LISTS else v
                                  for k, v in changes.items()}
        return dataclasses.replace(self, **values)

    def verifier(self) -> VerifierKey:
        try:
            return VerifierKey.parse(self.meter_key)
        except (CheckpointError, ValueError):
            raise MiningError(f"site {self.site}: the meter key is not an Ed25519 verifier "
                              "key (name+hash+base64)") from None

    def event(self) -> SiteRegistered:
        return SiteRegistered(site=self.site, operator=self.operator, site_kind=self.kind,
                              capacity_kw=self.capacity_kw, meter=self.meter,
                              meter_key=self.meter_key,
                              tariff_minor_per_kwh=self.tariff_minor_per_kwh,
                              currency=self.currency, payout_wallets=list(self.payout_wallets),
                              pool_payers=list(self.pool_payers),
                              efficiency_mj_per_th=self.efficiency_mj_per_th)

    @classmethod
    def of(cls, event: SiteRegistered) -> Site:
        return cls(site=event.site, operator=event.operator, kind=event.site_kind,
                   capacity_kw=event.capacity_kw, meter=event.meter, meter_key=event.meter_key,
                   tariff_minor_per_kwh=event.tariff_minor_per_kwh, currency=event.currency,
                   payout_wallets=tuple(event.payout_wallets),
                   pool_payers=tuple(event.pool_payers),
                   efficiency_mj_per_th=event.efficiency_mj_per_th)

    def to_json(self) -> dict[str, Any]:
        return {"site": self.site, "operator": self.operator, "kind": self.kind,
                "capacity_kw": self.capacity_kw, "meter": self.meter,
                "meter_key": self.meter_key, "tariff_minor_per_kwh": self.tariff_minor_per_kwh,
                "currency": self.currency, "payout_wallets": list(self.payout_wallets),
                "pool_payers": list(self.pool_payers),
                "efficiency_mj_per_th": self.efficiency_mj_per_th, "retired": self.retired}


@dataclass(frozen=True)
class Registry:
    """The allocation in force (the latest `mining.allocation_set`) and the sites."""

    allocation: Allocation | None
    sites: tuple[Site, ...]

    @property
    def allocated_kw(self) -> int:
        """What the sites in service hold (a retired site's capacity is free again)."""
        return sum(s.capacity_kw for s in self.sites if not s.retired)

    def site(self, name: str) -> Site | None:
        return next((s for s in self.sites if s.site == name), None)

    def to_json(self) -> dict[str, Any]:
        allocation = self.allocation
        return {"allocation": allocation.to_json() if allocation else None,
                "allocated_kw": self.allocated_kw,
                "free_kw": allocation.ceiling_kw - self.allocated_kw if allocation else 0,
                "by_kind": {k: sum(s.capacity_kw for s in self.sites
                                   if s.kind == k and not s.retired) for k in KINDS},
                "sites": len(self.sites)}


def registry(entries: Iterable[Any]) -> Registry:
    """The registry the entries make, in ledger order."""
    allocation: Allocation | None = None
    sites: list[Site] = []
    for entry in entries:
        if entry.kind == AllocationSet.KIND:
            event = AllocationSet.of(entry)
            allocation = Allocation(event.name, event.ceiling_kw, event.note)
        elif entry.kind == SiteRegistered.KIND:
            sites.append(Site.of(SiteRegistered.of(entry)))
        elif entry.kind == SiteChanged.KIND:
            change = SiteChanged.of(entry)
            for index, site in enumerate(sites):
                if site.site == change.site:
                    sites[index] = dataclasses.replace(site.changed(change.changes),
                                                       retired=change.retired)
    return Registry(allocation, tuple(sites))


def check_allocation(current: Registry, allocation: Allocation) -> None:
    """Refuse a ceiling below what the registered sites already hold."""
    if allocation.ceiling_kw < current.allocated_kw:
        raise MiningError(f"a ceiling of {allocation.ceiling_kw:,} kW is below the "
                          f"{current.allocated_kw:,} kW already allocated to "
                          f"{len(current.sites)} site(s)")


def check_change(current: Registry, name: str, changes: Mapping[str, Any], *,
                 retire: bool, wallets: Sequence[str]) -> Site:
    """The site `name` after `changes` (and retired with `retire`), if every check a new
    site passes still holds; MiningError otherwise."""
    site = current.site(name)
    if site is None:
        raise MiningError(f"no site {name!r} is registered")
    if site.retired:
        raise MiningError(f"site {name!r} is retired: it cannot change any more")
    if not changes and not retire:
        raise MiningError(f"site {name!r}: nothing to change (give a new value, or retire "
                          "it)")
    after = dataclasses.replace(site.changed(changes), retired=retire)
    others = Registry(current.allocation, tuple(s for s in current.sites if s.site != name))
    _check_against(others, after, wallets)
    return after


def check_site(current: Registry, site: Site, wallets: Sequence[str]) -> None:
    """Refuse a site when no allocation is set, its name or meter is taken, a payout
    wallet is not registered (`wallet.registered`), or it would allocate more than the
    ceiling."""
    if current.allocation is None:
        raise MiningError("no allocation is set: `reserve mining allocation set` first")
    for other in current.sites:
        if other.site == site.site:
            raise MiningError(f"site {site.site!r} is registered already")
    _check_against(current, site, wallets)


def _check_against(current: Registry, site: Site, wallets: Sequence[str]) -> None:
    """What a site must keep against every other site: its meter, payout wallets and pool
    payers its own, its payout wallets registered, the ceiling kept."""
    allocation = current.allocation
    if allocation is None:
        raise MiningError("no allocation is set: `reserve mining allocation set` first")
    for other in current.sites:
        if other.meter == site.meter:
            raise MiningError(f"site {site.site!r}: meter {site.meter} is registered already "
                              f"for site {other.site!r}")
        shared = set(other.payout_wallets) & set(site.payout_wallets)
        if shared:
            raise MiningError(f"site {site.site!r}: wallet {sorted(shared)[0]!r} is already "
                              f"the payout wallet of site {other.site!r}")
        payers = set(other.pool_payers) & set(site.pool_payers)
        if payers:
            raise MiningError(f"site {site.site!r}: pool payer {sorted(payers)[0]} is already "
                              f"named by site {other.site!r} (a payout must belong to one "
                              "site)")
    unknown = [w for w in site.payout_wallets if w not in set(wallets)]
    if unknown:
        raise MiningError(f"site {site.site!r}: payout wallet {unknown[0]!r} is not a "
                          "registered public-sector wallet (`reserve wallet register` first)")
    total = current.allocated_kw + (0 if site.retired else site.capacity_kw)
    if total > allocation.ceiling_kw:
        raise MiningError(f"site {site.site!r}: {site.capacity_kw:,} kW more would allocate "
                          f"{total:,} kW, above the allocation's ceiling of "
                          f"{allocation.ceiling_kw:,} kW ({allocation.ceiling_kw - current.allocated_kw:,} "
                          "kW free)")
