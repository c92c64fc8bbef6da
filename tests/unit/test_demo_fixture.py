"""Ledgers written by earlier code (see tests/fixtures/*/README.md) still verify, re-encode
byte for byte and replay to the state that code derived from them.

`demo_ledger` is a `reserve demo` run; `workflow_ledger` covers the kinds the demo does not
write (governance, reject/cancel/expire, reorgs, access). Together they hold every kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reserve.ledger.checkpoint import VerifierKey
from reserve.ledger.entry import decode_body, encode_body
from reserve.ledger.store import Ledger
from reserve.ledger.verify import read_export, verify_export
from reserve.proposals.proposal import parse_time
from reserve.transfers import readmodel
from reserve.transfers.projection import Projection
from reserve.transfers.readmodel import StoredProjection, replay_holdings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIZES = {"demo_ledger": 60, "workflow_ledger": 69}
FIXTURE = FIXTURES / "demo_ledger"


def _entries(fixture: Path) -> list[Any]:
    _, rows, _, _ = read_export(fixture / "ledger.jsonl")
    return [decode_body(body, entry_hash) for _, body, entry_hash in rows]


@pytest.mark.parametrize("name", sorted(SIZES))
def test_the_old_ledger_verifies_offline_against_its_key(name: str) -> None:
    fixture = FIXTURES / name
    key = VerifierKey.parse((fixture / "verifier.key").read_text().strip())
    report = verify_export(fixture / "ledger.jsonl", key)
    assert report.ok, report.findings
    assert report.entries == SIZES[name]


@pytest.mark.parametrize("name", sorted(SIZES))
def test_every_old_entry_re_encodes_to_the_same_bytes(name: str) -> None:
    _, rows, _, _ = read_export(FIXTURES / name / "ledger.jsonl")
    for seq, body, entry_hash in rows:
        entry = decode_body(body, entry_hash)
        again = encode_body(entry.seq, entry.time, entry.kind, entry.actor, entry.payload)
        assert again == body, f"entry {seq} ({entry.kind}) re-encodes differently"


# Policy fields added after the fixtures were made, at the values every old policy has:
# a destination's counterparty kind and licence, a policy's supervision (issue 18), a
# transfer's declared flow class (issue 16).
NEWER_FIELDS = {"kind": "", "licence": "", "supervision": None, "flow_class": None}


def _without_newer_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_newer_fields(v) for k, v in value.items()
                if not (k in NEWER_FIELDS and v == NEWER_FIELDS[k])}
    if isinstance(value, list):
        return [_without_newer_fields(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(SIZES))
def test_the_old_ledger_replays_to_the_same_state(name: str) -> None:
    fixture = FIXTURES / name
    expected = json.loads((fixture / "state.json").read_text())
    entries = _entries(fixture)
    projection = Projection()
    projection.apply_all(entries)
    assert _without_newer_fields(projection.snapshot()) == expected["projection"]
    holdings = [{"vault": h.vault, "asset": h.asset, "balance": str(h.balance),
                 "history": [[t, str(v)] for t, v in h.history]}
                for h in replay_holdings(entries)]
    assert holdings == expected["holdings"]


@pytest.mark.parametrize("name", sorted(SIZES))
def test_the_read_models_of_the_old_ledger_equal_its_replay(name: str) -> None:
    """Its entries appended to a ledger that keeps the read models, batch by batch as
    they were written: the stored rows are the replay's state, exactly."""
    fixture = FIXTURES / name
    expected = json.loads((fixture / "state.json").read_text())
    with Ledger.open("sqlite:///:memory:") as ledger:
        readmodel.attach(ledger)
        for entry in _entries(fixture):
            ledger.append(entry.kind, entry.actor, entry.payload, now=parse_time(entry.time))
        assert _without_newer_fields(StoredProjection(ledger).snapshot()) == \
            expected["projection"]
        stored = readmodel.holdings(ledger, history_points=10**6)
    assert [{"vault": h.vault, "asset": h.asset, "balance": str(h.balance),
             "history": [[t, str(v)] for t, v in h.history]} for h in stored] \
        == expected["holdings"]


@pytest.mark.parametrize("name", sorted(SIZES))
def test_every_old_entry_decodes_to_its_typed_event_and_back_unchanged(name: str) -> None:
    from reserve import events

    for entry in _entries(FIXTURES / name):
        event = events.decode(entry.kind, entry.payload)
        assert event.to_payload() == entry.payload, f"entry {entry.seq} ({entry.kind})"
        again = encode_body(entry.seq, entry.time, entry.kind, entry.actor, event.to_payload())
        assert again == encode_body(entry.seq, entry.time, entry.kind, entry.actor,
                                    entry.payload)


# Kinds first written after the fixtures were made (which are never regenerated): no old
# ledger holds them, so there are no old bytes to check them against.
NEWER_THAN_THE_FIXTURES = frozenset({"auth.token_requested", "auth.token_request_rejected",
                                     "licence.changed", "alert.acknowledged",
                                     "reconcile.attestation", "wallet.registered",
                                     "flow.attribution_proposed",
                                     "flow.attribution_confirmed", "statement.published",
                                     "witness.cosigned", "mining.allocation_set",
                                     "mining.site_registered", "energy.reading",
                                     "mining.site_changed", "mining.report_published"})


def test_the_fixtures_together_hold_every_kind() -> None:
    """So every event class above was checked against bytes earlier code wrote."""
    from reserve import events

    seen = {entry.kind for name in SIZES for entry in _entries(FIXTURES / name)}
    older = events.KINDS - NEWER_THAN_THE_FIXTURES
    assert seen == older, sorted(older ^ seen)


@pytest.mark.parametrize("name", sorted(SIZES))
def test_the_quick_check_refuses_exactly_what_decoding_refuses(name: str) -> None:
    """The append path's `check_payload` against `from_payload`, on every old payload and
    on each with one field dropped, nulled or given a value of another type."""
    from reserve import events
    from reserve.errors import EventError

    def refused(check: Any, payload: Any) -> bool:
        try:
            check(payload)
        except EventError:
            return True
        return False

    odd: list[Any] = [None, 1, True, "x", "zz", "-5", {}, [], "2026-01-01T00:00:00Z"]
    for entry in _entries(FIXTURES / name):
        cls = events.event_type(entry.kind)
        variants = [entry.payload, {**entry.payload, "unexpected": 1}]
        for key in entry.payload:
            variants.append({k: v for k, v in entry.payload.items() if k != key})
            variants += [{**entry.payload, key: value} for value in odd]
        for payload in variants:
            assert refused(cls.check_payload, payload) == refused(cls.from_payload, payload), \
                (entry.kind, payload)
