"""`parse_instant` (token and grant expiries) decides exactly as `strptime` with
`format_instant`'s format did: the same instant for every text it accepts, a ValueError
for every other."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reserve.api.store import format_instant, parse_instant

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _as_strptime(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _parsed(text: str) -> datetime | None:
    parse_instant.cache_clear()
    try:
        return parse_instant(text)
    except ValueError:
        return None


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31),
                    timezones=st.just(UTC)))
def test_every_instant_written_reads_back(moment: datetime) -> None:
    assert parse_instant(format_instant(moment)) == moment.replace(microsecond=0)


@given(st.from_regex(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}[T ][0-9]{1,2}:[0-9]{2}(:[0-9]{2})?"
                     r"(\.[0-9]{1,6})?([+-][0-9]{2}(:?[0-9]{2})?)?Z?", fullmatch=True))
def test_near_spellings_decided_as_strptime_did(text: str) -> None:
    assert _parsed(text) == _as_strptime(text)


@pytest.mark.parametrize("text", ["2026-11-23T12:00+00Z", "2026-02-30T12:00:00Z",
                                  "2026-11-23T12:00:00z", "", "yesterday",
                                  "2026-1-5T9:00:00Z"])
def test_examples_decided_as_strptime_did(text: str) -> None:
    assert _parsed(text) == _as_strptime(text)
