"""(filled in below)"""

from __future__ import annotations

from reserve.events.base import Event

EVENTS: tuple[type[Event], ...] = ()
