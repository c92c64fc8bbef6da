"""The typed vocabulary of ledger events: one frozen dataclass per entry kind.

Writers build an event and append `event.to_payload()` under `event.KIND`; readers call
`decode(entry.kind, entry.payload)` (or `SomeEvent.from_payload(payload)`) and get typed
fields back. The closed set of kinds (`reserve.ledger.kinds.KINDS`) is derived from the
classes listed in `reserve.events.registry`. How fields map to the exact wire payload is in
`reserve.events.base`.
"""

from reserve.events.base import ABSENT, Event, Hex, Json, Time, TimeMicros, Wei
from reserve.events.registry import EVENT_TYPES, KINDS, decode, event_type

__all__ = ["ABSENT", "EVENT_TYPES", "KINDS", "Event", "Hex", "Json", "Time", "TimeMicros",
           "Wei", "decode", "event_type"]
