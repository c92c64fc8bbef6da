"""A ledger entry: its canonical bytes, its place in the hash chain and in the Merkle tree.

The bytes of an entry are the RFC 8785 canonical JSON of
`{"seq", "time", "kind", "actor", "payload"}`; everything else is derived from them:
`entry_hash = SHA-256(prev_entry_hash || bytes)` chains the entries (the first entry's
predecessor is 32 zero bytes), and `leaf_hash = SHA-256(0x00 || bytes)` makes the entry a
leaf of the RFC 9162 tree at index `seq`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import orjson

from reserve.errors import EntryRejected, EventError
from reserve.events.base import Event, quick_plan
from reserve.events.registry import EVENT_TYPES, decode
from reserve.ledger.canonical import (
    INTEGER_ABS_MAX,
    canonical_bytes,
    encode_string,
    plain_text,
)
from reserve.ledger.kinds import KINDS
from reserve.ledger.merkle import leaf_hash
from reserve.ledger.native import core as _native

GENESIS_PREV_HASH = bytes(32)
_new, _set = object.__new__, object.__setattr__
ACTOR_LENGTH_MAX = 200
PAYLOAD_BYTES_MAX_DEFAULT = 65536


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    time: str
    kind: str
    actor: str
    payload: dict[str, Any]
    body: bytes
    entry_hash: bytes

    @classmethod
    def of_fields(cls, seq: int, time: str, kind: str, actor: str, payload: dict[str, Any],
                  body: bytes, entry_hash: bytes) -> Entry:
        """The same frozen Entry as `Entry(...)`, built without the dataclass's __init__.

        That __init__ looks up object.__setattr__ for each field (about 1.4 us an entry);
        the append loop, which builds an Entry per appended entry, binds it once.
        """
        entry = _new(cls)
        _set(entry, "seq", seq)
        _set(entry, "time", time)
        _set(entry, "kind", kind)
        _set(entry, "actor", actor)
        _set(entry, "payload", payload)
        _set(entry, "body", body)
        _set(entry, "entry_hash", entry_hash)
        return entry

    @property
    def event(self) -> Event:
        """This entry's typed event (reserve.events), decoded afresh on each access; a
        reader that knows the kind says so with `TheEvent.of(entry)`."""
        return decode(self.kind, self.payload)

    @property
    def leaf_hash(self) -> bytes:
        return leaf_hash(self.body)

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "kind": self.kind, "actor": self.actor,
                "payload": self.payload, "entry_hash": self.entry_hash.hex(),
                "leaf_hash": self.leaf_hash.hex()}


# The fields in declaration order, as `_native.entries` sets them.
ENTRY_FIELDS: tuple[str, ...] = tuple(field.name for field in fields(Entry))
if ENTRY_FIELDS != ("seq", "time", "kind", "actor", "payload", "body", "entry_hash"):
    raise RuntimeError(f"Entry fields changed to {ENTRY_FIELDS}: update _native.entries")


def format_time(moment: datetime) -> str:
    """UTC time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Requires an aware datetime."""
    if moment.tzinfo is None:
        raise EntryRejected("entry time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Codes of a field in a native event plan (_native.c, event_fits): codec, then two flags.
_FIELD_CODES = {"json": 0, "str": 1, "int": 2, "hex": 3, "bool": 4, "wei": 5}
_FIELD_NULLABLE, _FIELD_REQUIRED = 8, 16


def native_plan(event_class: type[Event]) -> tuple[tuple[str, int], ...] | None:
    """The class's quick plan (reserve.events.base.quick_plan) as `_native.event_fits`
    reads it, or None where the core cannot check it (no plan, or two fields on one wire
    key, which its count of found keys assumes never happens)."""
    fields = quick_plan(event_class)
    if fields is None or len({key for key, _, _, _ in fields}) != len(fields) \
            or any(kind not in _FIELD_CODES for _, kind, _, _ in fields):
        return None
    return tuple((key, _FIELD_CODES[kind] | (_FIELD_NULLABLE if nullable else 0)
                  | (_FIELD_REQUIRED if required else 0))
                 for key, kind, nullable, required in fields)


# kind -> its native plan, for the kinds whose class has one (built on first use).
_NATIVE_PLANS: dict[str, tuple[tuple[str, int], ...]] | None = None


def _native_plans() -> dict[str, tuple[tuple[str, int], ...]]:
    global _NATIVE_PLANS
    if _NATIVE_PLANS is None:
        plans = {}
        if getattr(_native, "event_fits", None) is not None:
            for kind, event_class in EVENT_TYPES.items():
                plan = native_plan(event_class)
                if plan is not None:
                    plans[kind] = plan
        _NATIVE_PLANS = plans
    return _NATIVE_PLANS


def check_event(kind: str, payload: dict[str, Any]) -> None:
    """Refuse a payload that does not fit its kind's typed event (reserve.events).

    The native core's `event_fits` vouches for most payloads with the same acceptance as
    the class's quick plan; whatever it does not vouch for goes through
    `Event.check_payload`, which decides and words the refusal."""
    plan = _native_plans().get(kind)
    if plan is not None and _native.event_fits(plan, payload):  # type: ignore[union-attr]
        return
    event_class = EVENT_TYPES.get(kind)
    if event_class is None:
        return  # not a kind at all: encode_body refuses it before asking
    try:
        event_class.check_payload(payload)
    except EventError as error:
        raise EntryRejected(str(error)) from None


def encode_body(seq: int, time: str, kind: str, actor: str, payload: Any,
                payload_bytes_max: int = PAYLOAD_BYTES_MAX_DEFAULT) -> bytes:
    """Validate an entry's fields and return its canonical bytes.

    Raises EntryRejected, having written nothing, for an unknown kind, an empty or long
    actor, a payload that is not a JSON object of the accepted subset, or one too large.
    """
    if kind not in KINDS:
        raise EntryRejected(f"unknown entry kind {kind!r}")
    if not isinstance(actor, str) or not 0 < len(actor) <= ACTOR_LENGTH_MAX:
        raise EntryRejected(f"actor must be a non-empty string of at most "
                            f"{ACTOR_LENGTH_MAX} characters")
    if not isinstance(payload, dict):
        raise EntryRejected(f"payload must be a JSON object, got {type(payload).__name__}")
    check_event(kind, payload)
    body = _fast_body(seq, time, kind, actor, payload)
    if body is None:
        body = canonical_bytes({"seq": seq, "time": time, "kind": kind, "actor": actor,
                                "payload": payload})
    if len(body) > payload_bytes_max:
        raise EntryRejected(f"entry is {len(body)} bytes, over the limit of "
                            f"{payload_bytes_max} bytes")
    return body


def encode_bodies(items: Sequence[tuple[str, str, Any]], start: int, time: str,
                  payload_bytes_max: int = PAYLOAD_BYTES_MAX_DEFAULT) -> list[bytes]:
    """`encode_body` of each item, the first at sequence number `start`: the same bytes and
    the same refusals (EntryRejected at the first bad item), with the per-entry checks
    inlined for the append loop. Anything the inline path does not vouch for, and every
    refusal, goes through `encode_body` itself.
    """
    # getattr: a core built from an older _native.c has no envelope (tests/unit/test_native.py
    # fails then); the exact path gives the same bytes.
    envelope = getattr(_native, "envelope", None)
    if envelope is None or type(time) is not str \
            or not 0 <= start <= INTEGER_ABS_MAX - len(items):
        return [encode_body(seq, time, kind, actor, payload, payload_bytes_max)
                for seq, (kind, actor, payload) in enumerate(items, start)]
    kinds: frozenset[str] = KINDS
    bodies: list[bytes] = []
    plans, fits = _native_plans(), getattr(_native, "event_fits", None)
    batch = getattr(_native, "encode_batch", None)
    if batch is not None and type(items) is list and type(kinds) is frozenset:
        # The core runs the loop below over every item it vouches for and stops at the
        # first other one, which this loop then judges, before the core resumes.
        index = 0
        while True:
            index = batch(items, index, start, time, payload_bytes_max, ACTOR_LENGTH_MAX,
                          kinds, plans, bodies)
            if index >= len(items):
                return bodies
            bodies += _encode_each(items[index:index + 1], start + index, time,
                                   payload_bytes_max, plans, fits)
            index += 1
    return _encode_each(items, start, time, payload_bytes_max, plans, fits)


def _encode_each(items: Sequence[tuple[str, str, Any]], start: int, time: str,
                 payload_bytes_max: int, plans: dict[str, tuple[tuple[str, int], ...]],
                 fits: Any) -> list[bytes]:
    """encode_bodies' loop in Python (requires the core's envelope)."""
    kinds, bodies, envelope = KINDS, [], _native.envelope  # type: ignore[union-attr]
    for seq, (kind, actor, payload) in enumerate(items, start):
        body = None
        if type(kind) is str and kind in kinds and type(actor) is str \
                and 0 < len(actor) <= ACTOR_LENGTH_MAX and type(payload) is dict:
            # The native core writes the envelope when `plain` vouches for the payload
            # (None otherwise, or for a lone surrogate, which encode_body words).
            body = envelope(seq, time, kind, actor, payload)
        if body is None or len(body) > payload_bytes_max:
            body = encode_body(seq, time, kind, actor, payload, payload_bytes_max)
        else:  # the typed check: in C when the core vouches, else check_event decides
            plan = plans.get(kind)
            if plan is None or fits is None or not fits(plan, payload):
                check_event(kind, payload)
        bodies.append(body)
    return bodies


def _fast_body(seq: int, time: str, kind: str, actor: str, payload: Any) -> bytes | None:
    """The canonical bytes built around the payload's canonical text, or None to let
    `canonical_bytes` decide (and refuse) anything unusual.

    Byte-identical to RFC 8785 of the whole entry object: its keys are ASCII, so their
    order is fixed (actor, kind, payload, seq, time), and every member is written by the
    same encoder calls `canonical_bytes` makes. Tests check it against `rfc8785`.
    (The append loop's `encode_bodies` tries the native core's encoder first and only calls
    encode_body for what it could not vouch for, so this path does not try it again.)
    """
    if type(seq) is not int or not 0 <= seq <= INTEGER_ABS_MAX or type(time) is not str \
            or type(actor) is not str or type(kind) is not str:
        return None
    text = plain_text(payload, 1)
    if text is None:
        return None
    whole = (f'{{"actor":{encode_string(actor)},"kind":{encode_string(kind)},'
             f'"payload":{text},"seq":{seq},"time":{encode_string(time)}}}')
    try:
        return whole.encode("utf-8")
    except UnicodeEncodeError as error:
        raise EntryRejected(f"string is not valid Unicode: {error.reason}") from None


def chain_hash(prev_entry_hash: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev_entry_hash + body).digest()


def decode_body(body: bytes, entry_hash: bytes) -> Entry:
    """Rebuild an Entry from stored bytes (no verification: see verify.py).

    orjson parses what the append wrote (a few times faster than `json`); anything it
    refuses (a lone surrogate escape, an integer past 64 bits: bytes no append writes,
    but a database can be altered) is parsed by `json`, exactly as before.
    """
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        fields = json.loads(body)
    return Entry(seq=fields["seq"], time=fields["time"], kind=fields["kind"],
                 actor=fields["actor"], payload=fields["payload"], body=bytes(body),
                 entry_hash=bytes(entry_hash))
