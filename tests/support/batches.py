"""A real ledger that also remembers which entries each commit held, for batch tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from reserve.ledger import Entry, Ledger


class BatchLedger(Ledger):
    """Appends like any Ledger; `batches` lists the kinds of each committed batch in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[list[str]] = []

    def append_many(self, items: Sequence[tuple[str, str, dict[str, Any]]], *,
                    now: datetime | None = None,
                    expected_size: int | None = None) -> list[Entry]:
        entries = super().append_many(items, now=now, expected_size=expected_size)
        self.batches.append([entry.kind for entry in entries])
        return entries
