"""The verifier's check of a checkpoint row's time column: exactly `format_time`'s
spelling (YYYY-MM-DDTHH:MM:SS.ffffffZ, UTC), nothing near it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reserve.ledger.entry import format_time
from reserve.ledger.verify import _is_entry_time


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 30),
                    timezones=st.just(UTC)))
def test_every_time_the_ledger_writes_is_one(moment: datetime) -> None:
    assert _is_entry_time(format_time(moment))


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.just(timezone(timedelta(hours=5)))))
def test_a_time_written_at_another_offset_is_spelled_in_utc(moment: datetime) -> None:
    text = format_time(moment)
    assert _is_entry_time(text) and text.endswith("Z")
    assert not _is_entry_time(moment.isoformat())


@pytest.mark.parametrize("text", [
    "2026-11-23 12:00:00.000000Z",       # space for T
    "2026-11-23T12:00:00.000000+00:00",  # an offset for Z
    "2026-11-23T12:00:00Z",              # no microseconds
    "2026-11-23T12:00:00.0000001Z",      # seven digits
    "2026-11-23T12:00:00,000000Z",       # comma
    "2026-13-23T12:00:00.000000Z",       # month 13
    "2026-02-30T12:00:00.000000Z",       # no such day
    "2026-11-23T12:00:00.000000z",       # lower-case z
    "\uff10026-11-23T12:00:00.000000Z",  # a full-width digit
    "yesterday", "",
])
def test_near_misses_are_not(text: str) -> None:
    assert not _is_entry_time(text)
