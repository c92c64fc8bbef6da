"""The licence register as of a ledger size, rebuilt from `licence.changed` entries.

Like the projection, this is a cache of the ledger: it remembers how many entries it has
read and reads only newer ones, through `ledger.entries(..., kinds=...)` so a kind-indexed
store serves it without a scan. It lives beside the projection rather than in it, so the
workflow's decisions and the custodian's signer get the same register from the same
entries (`register_of`) without the projection knowing about licences.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reserve.errors import LicenceError, WorkflowError
from reserve.events.supervision import LicenceChanged
from reserve.policy.licences import LicenceChange, LicenceState, admit, recorded

LICENCE_KINDS = frozenset({LicenceChanged.KIND})
ENTRIES_PER_READ_MAX = 10_000


def change_of(event: LicenceChanged) -> LicenceChange:
    return LicenceChange(licence_id=event.licence_id, entity=event.entity, scope=event.scope,
                         status=event.status, effective_at=event.effective_at,
                         number=event.number, regulator_key=event.regulator_key,
                         signature=event.signature)


def event_of(change: LicenceChange) -> LicenceChanged:
    return LicenceChanged(licence_id=change.licence_id, entity=change.entity,
                          scope=change.scope, status=change.status,
                          effective_at=change.effective_at, number=change.number,
                          regulator_key=change.regulator_key, signature=change.signature)


class LicenceBook:
    """Licence id -> LicenceState, as of the first `size` ledger entries."""

    def __init__(self) -> None:
        self.size = 0
        self.licences: dict[str, LicenceState] = {}

    def apply(self, entry: Any) -> None:
        """Apply one entry of any kind (others are skipped). A recorded change that does
        not admit (forged, replayed) means the ledger was written around the service."""
        if entry.kind in LICENCE_KINDS:
            try:
                change = change_of(LicenceChanged.of(entry))
                state = admit(self.licences, change)
            except LicenceError as error:
                raise WorkflowError(f"ledger entry {entry.seq}: {error}") from None
            self.licences[change.licence_id] = recorded(state, entry.seq)
        self.size = max(self.size, entry.seq + 1)

    def apply_all(self, entries: Iterable[Any]) -> None:
        for entry in entries:
            self.apply(entry)

    def catch_up(self, ledger: Any, stop: int | None = None) -> None:
        """Read the licence entries in [size, stop) (stop: the ledger's size)."""
        end = ledger.size() if stop is None else stop
        while self.size < end:
            batch_stop = min(end, self.size + ENTRIES_PER_READ_MAX)
            for entry in ledger.entries(start=self.size, stop=batch_stop,
                                        kinds=LICENCE_KINDS):
                self.apply(entry)
            self.size = batch_stop


def register_of(entries: Iterable[Any], stop_seq: int | None = None) -> dict[str, LicenceState]:
    """The register from the licence entries among `entries` before `stop_seq`."""
    book = LicenceBook()
    for entry in entries:
        if stop_seq is not None and entry.seq >= stop_seq:
            break
        if entry.kind in LICENCE_KINDS:
            book.apply(entry)
    return book.licences
