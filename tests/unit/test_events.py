"""The typed events' machinery: exact payloads, clear refusals."""

from __future__ import annotations

import re
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


# -- the shapes of the real kinds ------------------------------------------------------
def test_a_kind_of_several_shapes_decodes_to_the_one_its_field_names() -> None:
    from reserve.events.records import CheckpointAnchored, LedgerAnchor, ReportAnchored

    common = {"chain_id": 31337, "registry": "0xR", "index": 0, "anchorer": "0xA",
              "tx_hash": "0xab", "block_number": 3, "block_hash": "0xcd"}
    checkpoint = {**common, "subject": "checkpoint", "tree_size": 9, "root_hash": "ee"}
    report = {**common, "subject": "reconcile.report", "report_sha256": "ff",
              "ledger_tree_size": 8}
    assert isinstance(LedgerAnchor.from_payload(checkpoint), CheckpointAnchored)
    decoded = LedgerAnchor.from_payload(report)
    assert isinstance(decoded, ReportAnchored) and decoded.ledger_tree_size == 8
    assert decoded.to_payload() == report
    with pytest.raises(EventError, match=re.escape(
            "field 'subject' must be one of 'checkpoint', 'reconcile.report', got "
            "'elsewhere'")):
        LedgerAnchor.from_payload({**checkpoint, "subject": "elsewhere"})
    with pytest.raises(EventError, match="unknown field"):  # a report's fields, a checkpoint
        LedgerAnchor.from_payload({**report, "subject": "checkpoint"})
    with pytest.raises(EventError, match="does not fit CheckpointAnchored"):
        CheckpointAnchored.from_payload({**checkpoint, "subject": "reconcile.report"})
    with pytest.raises(EventError, match="write one of its shapes"):
        LedgerAnchor().to_payload()


def test_a_workflow_copy_must_repeat_the_chain_layers_field() -> None:
    from reserve.events.chain_evm import EvmSignatureReceived

    bare = {"safe_tx_hash": "0x01", "proposal_digest": "ab", "signer": "0xS",
            "signature": "0x02"}
    assert EvmSignatureReceived.from_payload(bare).to_payload() == bare
    copied = {**bare, "vault": "reserve-safe", "digest": "ab"}
    event = EvmSignatureReceived.from_payload(copied)
    assert (event.digest, event.vault) == ("ab", "reserve-safe")
    assert event.to_payload() == copied
    with pytest.raises(EventError, match="field 'digest' must repeat 'proposal_digest'"):
        EvmSignatureReceived.from_payload({**copied, "digest": "cd"})


def test_an_isoformat_time_round_trips_and_refuses_other_offsets() -> None:
    from reserve.events.custody import DestinationAdded

    wire = {"vault": "v", "digest": "ab", "asset": "BTC", "address": "bcrt1q",
            "label": "L", "usable_from": "2026-01-07T09:00:00+00:00"}
    event = DestinationAdded.from_payload(wire)
    assert event.usable_from == datetime(2026, 1, 7, 9, tzinfo=UTC)
    assert event.to_payload() == wire
    for bad in ("2026-01-07T11:00:00+02:00", "2026-01-07T09:00:00", "tomorrow"):
        with pytest.raises(EventError, match="field 'usable_from'"):
            DestinationAdded.from_payload({**wire, "usable_from": bad})


def test_the_ledger_refuses_a_payload_that_does_not_fit_its_kind() -> None:
    from reserve.errors import EntryRejected
    from reserve.ledger.entry import encode_body

    with pytest.raises(EntryRejected, match=re.escape("vault.frozen: missing field 'reason'")):
        encode_body(0, "2026-12-02T06:00:00.000000Z", "vault.frozen", "auditor",
                    {"vault": "national-btc"})
    with pytest.raises(EntryRejected, match=re.escape("unknown entry kind 'destination.removed'")):
        encode_body(0, "2026-12-02T06:00:00.000000Z", "destination.removed", "auditor",
                    {"vault": "national-btc"})
