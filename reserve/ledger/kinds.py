"""The closed set of ledger entry kinds, derived from the typed events.

Every event of the reserve becomes an entry of one of these kinds; anything else is refused
at append time so a typo cannot create a new, unverified event type. Kinds are
`domain.event`; each is one class in `reserve.events` (listed by `reserve.events.registry`),
which also says what its payload holds. A new kind is a new class there, nothing here.
"""

from __future__ import annotations

from reserve.events.registry import KINDS

__all__ = ["KINDS", "is_known"]


def is_known(kind: str) -> bool:
    return kind in KINDS
