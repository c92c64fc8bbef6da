"""Every event class by kind, from an explicit list of the domain modules."""

from __future__ import annotations

from typing import Any

from reserve.errors import EventError
from reserve.events import (
    access,
    chain_btc,
    chain_evm,
    custody,
    mining,
    records,
    supervision,
    transparency,
    witness,
    workflow,
)
from reserve.events.base import Event

_MODULES = (records, custody, workflow, chain_btc, chain_evm, access, supervision,
            transparency, witness, mining)


def _collect() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    for module in _MODULES:
        for cls in getattr(module, "EVENTS", ()):
            if not cls.KIND or cls.KIND in found:
                raise TypeError(f"event kind {cls.KIND!r} of {cls.__name__} is empty or taken")
            found[cls.KIND] = cls
    return found


EVENT_TYPES: dict[str, type[Event]] = _collect()
KINDS: frozenset[str] = frozenset(EVENT_TYPES)


def event_type(kind: str) -> type[Event]:
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise EventError(f"unknown ledger entry kind {kind!r}")
    return cls


def decode(kind: str, payload: Any) -> Event:
    """The typed event of an entry; EventError when the payload does not fit its kind."""
    return event_type(kind).from_payload(payload)
