"""The typed events' machinery: exact payloads, clear refusals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from reserve.errors import EventError
from reserve.events.base import ABSENT, Event, Hex, Json, Time, TimeMicros, Wei


@dataclass(frozen=True)
class Sample(Event):
    KIND = "test.sample"
    WIRE = {"vault": "vault_id"}
    vault: str
    amount: int
    wei: Wei
    digest: Hex
    at: Time
    seen: TimeMicros
    doc: Json
    note: str | None
    memo: str = ABSENT


AT = datetime(2026, 12, 2, 6, 0, 1, 250000, tzinfo=UTC)
WIRE = {"vault_id": "v", "amount": 5, "wei": "100000000000000000000", "digest": "ab01",
        "at": "2026-12-02T06:00:01Z", "seen": "2026-12-02T06:00:01.250000Z",
        "doc": {"outputs": [1, 2]}, "note": None}


def test_round_trip_keeps_wire_names_null_and_absent_apart() -> None:
    event = Sample.from_payload(WIRE)
    assert event.vault == "v" and event.wei == 10**20 and event.memo is ABSENT
    assert event.seen == AT and event.at == AT.replace(microsecond=0)
    assert event.to_payload() == WIRE
    with_memo = Sample.from_payload({**WIRE, "memo": "x"})
    assert with_memo.to_payload()["memo"] == "x"


@pytest.mark.parametrize(("change", "words"), [
    ({"extra": 1}, "unknown field(s) 'extra'"),
    ({"amount": True}, "field 'amount' must be an integer"),
    ({"amount": "5"}, "field 'amount' must be an integer"),
    ({"wei": 5}, "field 'wei' must be a decimal string"),
    ({"wei": "1e3"}, "field 'wei' must be a decimal string"),
    ({"digest": "xyz"}, "field 'digest' must be a hex string"),
    ({"at": "2026-12-02T06:00:01.000000Z"}, "field 'at' is not a time"),
    ({"vault_id": None}, "field 'vault_id' may not be null"),
])
def test_refusals_name_the_kind_and_the_field(change: dict[str, object], words: str) -> None:
    with pytest.raises(EventError) as refused:
        Sample.from_payload({**WIRE, **change})
    assert str(refused.value).startswith("test.sample: ")
    assert words in str(refused.value)


def test_a_missing_field_is_refused() -> None:
    payload = dict(WIRE)
    del payload["amount"]
    with pytest.raises(EventError, match="missing field 'amount'"):
        Sample.from_payload(payload)


def test_encoding_refuses_what_decoding_would() -> None:
    event = Sample.from_payload(WIRE)
    with pytest.raises(EventError, match="aware datetime"):
        Sample(**{**event.__dict__, "at": datetime(2026, 1, 1)}).to_payload()
    with pytest.raises(EventError, match="may not be null"):
        Sample(**{**event.__dict__, "amount": None}).to_payload()
