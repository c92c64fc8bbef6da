"""Recording the allocation, its sites and readings in the ledger: each check runs on the
ledger's mining and wallet entries (read through the kind index) as of its size, the
append expects that size (a concurrent append makes it a LedgerConflict), and nothing is
written when a check refuses."""

from __future__ import annotations

from typing import Any

from reserve.errors import MiningError
from reserve.events.mining import AllocationSet, EnergyReading, SiteChanged, SiteRegistered
from reserve.events.transparency import WalletRegistered
from reserve.mining import readings, sites
from reserve.statement.wallets import registered

KINDS = (AllocationSet.KIND, SiteRegistered.KIND, SiteChanged.KIND, EnergyReading.KIND,
         WalletRegistered.KIND)


def relevant(ledger: Any, stop: int | None = None) -> list[Any]:
    """The entries the checks read, in ledger order."""
    return list(ledger.entries(0, stop, kinds=KINDS))


def _append(ledger: Any, event: Any, actor: str, size: int) -> Any:
    return ledger.append(event.KIND, actor, event.to_payload(), expected_size=size)


def set_allocation(ledger: Any, allocation: sites.Allocation, *, actor: str) -> Any:
    size = ledger.size()
    sites.check_allocation(sites.registry(relevant(ledger, size)), allocation)
    return _append(ledger, allocation.event(), actor, size)


def register_site(ledger: Any, site: sites.Site, *, actor: str) -> Any:
    size = ledger.size()
    entries = relevant(ledger, size)
    sites.check_site(sites.registry(entries), site, [w.name for w in registered(entries)])
    return _append(ledger, site.event(), actor, size)


def change_site(ledger: Any, name: str, changes: dict[str, Any], *, retire: bool = False,
                note: str, actor: str) -> Any:
    """Append `mining.site_changed` once the changed site passes every check."""
    if not isinstance(note, str) or not 1 <= len(note) <= sites.TEXT_MAX:
        raise MiningError(f"give a note (why), 1..{sites.TEXT_MAX} characters")
    size = ledger.size()
    entries = relevant(ledger, size)
    after = sites.check_change(sites.registry(entries), name, changes, retire=retire,
                               wallets=[w.name for w in registered(entries)])
    wire = {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}
    event = SiteChanged(site=after.site, changes=wire, retired=retire, note=note)
    return _append(ledger, event, actor, size)


def check_reading(entries: list[Any], reading: readings.Reading) -> sites.Site:
    """The reading's site once it passes every check against the recorded entries."""
    return readings.admit(sites.registry(entries), readings.recorded(entries), reading)


def submit_reading(ledger: Any, reading: readings.Reading, *, actor: str) -> Any:
    size = ledger.size()
    check_reading(relevant(ledger, size), reading)
    return _append(ledger, reading.event(), actor, size)
