"""Recording the allocation, its sites and readings in the ledger: each check runs on the
ledger's entries as they are, and nothing is written when one refuses."""

from __future__ import annotations

from typing import Any

from reserve.mining import readings, sites
from reserve.statement.wallets import registered


def set_allocation(ledger: Any, allocation: sites.Allocation, *, actor: str) -> Any:
    sites.check_allocation(sites.registry(ledger.entries()), allocation)
    event = allocation.event()
    return ledger.append(event.KIND, actor, event.to_payload())


def register_site(ledger: Any, site: sites.Site, *, actor: str) -> Any:
    entries = list(ledger.entries())
    sites.check_site(sites.registry(entries), site, [w.name for w in registered(entries)])
    event = site.event()
    return ledger.append(event.KIND, actor, event.to_payload())


def check_reading(entries: list[Any], reading: readings.Reading) -> sites.Site:
    """The reading's site once it passes every check against the recorded entries."""
    return readings.admit(sites.registry(entries), readings.recorded(entries), reading)


def submit_reading(ledger: Any, reading: readings.Reading, *, actor: str) -> Any:
    check_reading(list(ledger.entries()), reading)
    event = reading.event()
    return ledger.append(event.KIND, actor, event.to_payload())
