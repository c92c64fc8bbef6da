"""The native core (reserve/ledger/_native.c) agrees with the Python paths it stands in for.

Each C function is checked against the Python code or the reference it replaces: `plain`
against `canonical._plain`, `event_fits` against the typed events' quick plan
(reserve.events.base._Plan.fits), `hash_batch` against the store's Python loop and RFC 9162
`root_hash`, `is_canonical` against the exact path (json.loads, then the RFC 8785 encoder)
on generated and mutated bytes, `verify_rows` through whole verifier
runs with and without the core. The canonicality scanner may say "undecided" (False) too
often, never "canonical" wrongly: that direction is what every mutation test asserts.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reserve.ledger import Ledger, merkle, native, verify
from reserve.ledger.canonical import (
    INTEGER_ABS_MAX,
    ORJSON_OPTIONS,
    _is_canonical_exact,
    _plain,
)
from reserve.ledger.store import _hash_batch

core: Any = native.core


def test_native_core_is_built() -> None:
    # scripts/setup.sh builds it; without it every figure in bench/ledger.py is the
    # fallback's, and the tests below would not run the code the ledger runs.
    assert core is not None, "reserve.ledger._native is not built: run scripts/setup.sh"


# Every category but Cs (lone surrogates) and Cn (unassigned); astral characters included.
texts = st.text(alphabet=st.characters(categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co")),
                max_size=10)
integers = st.integers(-INTEGER_ABS_MAX, INTEGER_ABS_MAX) | st.integers(-(10**17), 10**17)
scalars = st.none() | st.booleans() | integers | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(texts, inner, max_size=4), max_leaves=20)
odd = st.floats(allow_nan=True) | st.binary(max_size=3) | st.tuples(scalars, scalars) \
    | st.frozensets(st.integers(0, 3), max_size=2) | st.dictionaries(st.integers(0, 3), scalars,
                                                                      max_size=2)
accepted = st.recursive(st.none() | st.booleans() | st.integers(-INTEGER_ABS_MAX, INTEGER_ABS_MAX)
                        | texts, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(texts, inner, max_size=4), max_leaves=20)
anything = st.recursive(scalars | odd, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(texts, inner, max_size=3), max_leaves=12)


@given(anything, st.integers(0, 40))
@settings(max_examples=500, deadline=None)
def test_plain_equals_the_python_walk(value: Any, depth: int) -> None:
    assert core.plain(value, depth) == _plain(value, depth)


@given(anything, st.integers(0, 2**53 - 1), texts, texts, texts)
@settings(max_examples=500, deadline=None)
def test_envelope_is_rfc8785_of_the_entry_when_plain(payload: Any, seq: int, time: str,
                                                      kind: str, actor: str) -> None:
    # The append loop's encoder: the entry's RFC 8785 bytes (and orjson's with sorted
    # keys, which it replaced) whenever the payload is plain, else None.
    payload = {"value": payload}
    body = core.envelope(seq, time, kind, actor, payload)
    assert (body is not None) == core.plain(payload, 1)
    if body is not None:
        entry = {"seq": seq, "time": time, "kind": kind, "actor": actor, "payload": payload}
        assert body == bytes(rfc8785.dumps(entry))
        assert body == orjson.dumps(entry, option=ORJSON_OPTIONS)


def test_envelope_edge_cases() -> None:
    controls = "".join(map(chr, range(0x20))) + '"\\\x7f\u2028\xe9\uffff'
    payload = {controls: [controls, -(2**53 - 1), 2**53 - 1, True, False, None, {}, [], ()],
               "": {"b": 1, "a": {"\uffff": 0, "\xe9": 1, "z": 2}}}
    entry = {"seq": 0, "time": controls, "kind": "k", "actor": "a", "payload": payload}
    assert core.envelope(0, controls, "k", "a", payload) == bytes(rfc8785.dumps(entry))
    assert core.envelope(0, "t", "k", "a", {"x": "\ud800"}) is None  # lone surrogate
    assert core.envelope(0, "\udfff", "k", "a", {}) is None
    assert core.envelope(0, "t", "k", "a", {"x": 2**53}) is None  # outside the subset
    assert core.envelope(0, "t", "k", "a", {"x": 1.5}) is None
    assert core.envelope(0, "t", "k", "a", {"\U0001f600": 1}) is None  # astral key
    assert core.envelope(2**53, "t", "k", "a", {}) is None
    assert core.envelope(-1, "t", "k", "a", {}) is None
    assert core.envelope(0, "t", "k", "a", []) is None
    with pytest.raises(TypeError):
        core.envelope(0, b"t", "k", "a", {})


def test_plain_depth_bound_and_subclasses() -> None:
    deep: Any = []
    for _ in range(40):
        deep = [deep]
    for depth in range(0, 40):
        assert core.plain(deep, depth) == _plain(deep, depth)

    class Text(str):
        pass

    class Number(int):
        pass

    for value in ({"a": Text("x")}, {Text("k"): 1}, {"a": Number(1)}, {"\U0001f600": 1},
                  {"a": 2**53 - 1}, {"a": 2**53}, {"a": -(2**53 - 1)}, {"a": 10**30}):
        assert core.plain(value, 0) == _plain(value, 0), value


class _Text(str):
    pass


class _Number(int):
    pass


# Values for a typed-event field: every codec's good values and its near misses.
field_values = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | texts
                | st.from_regex(r"(0x)?[0-9a-fA-F]*", fullmatch=True)
                | st.from_regex(r"-?[0-9]+", fullmatch=True)
                | st.sampled_from(["", "0x", "0X1f", "-", "--1", "1-", "+1", "0x-1", "\uff11",
                                   "12\n", "ab\n", " 1", "0xg", "\u0660", "x0"])
                | st.builds(_Text, st.sampled_from(["1", "ab", "x"])) | st.builds(_Number, st.integers(0, 9))
                | st.floats(allow_nan=False) | st.lists(scalars, max_size=2)
                | st.dictionaries(texts, scalars, max_size=2))


def _event_plans() -> list[tuple[type, Any, Any]]:
    from reserve.events import base
    from reserve.events.registry import EVENT_TYPES
    from reserve.ledger.entry import native_plan

    found = []
    for kind in sorted(EVENT_TYPES):
        cls = EVENT_TYPES[kind]
        plan = base._plan(cls)
        if plan is not None:
            found.append((cls, plan, native_plan(cls)))
    return found


EVENT_PLANS = _event_plans()


def test_every_quick_plan_has_a_native_plan() -> None:
    # The kinds whose class has a quick plan (most of them) are checked in C on append.
    assert len(EVENT_PLANS) >= 30
    assert all(native is not None for _, _, native in EVENT_PLANS)


@given(st.sampled_from(EVENT_PLANS), st.data())
@settings(max_examples=1500, deadline=None)
def test_event_fits_equals_the_python_plan(chosen: Any, data: st.DataObject) -> None:
    """`_native.event_fits` accepts exactly what `_Plan.fits` (the reference) accepts, and
    the append path's check (reserve.ledger.entry.check_event) refuses exactly what
    `Event.check_payload` refuses, on payloads near each class's fields: present, absent,
    null, of the right or another type, and with unknown keys."""
    from reserve.errors import EntryRejected, EventError
    from reserve.ledger.entry import check_event

    cls, plan, native = chosen
    payload: dict[Any, Any] = {}
    for key, _, _, _ in plan.fields:
        if data.draw(st.integers(0, 5)) > 0:  # mostly present
            payload[key] = data.draw(field_values)
    if data.draw(st.integers(0, 5)) == 0:
        payload[data.draw(texts | st.integers(0, 3) | st.builds(_Text, st.sampled_from(
            [key for key, _, _, _ in plan.fields] or ["k"])))] = data.draw(scalars)
    assert core.event_fits(native, payload) == plan.fits(payload), (cls.KIND, payload)

    def refused(check: Any, *args: Any) -> bool:
        try:
            check(*args)
        except (EventError, EntryRejected):
            return True
        return False

    assert refused(check_event, cls.KIND, payload) == refused(cls.check_payload, payload)


def test_event_fits_edge_cases() -> None:
    from reserve.events.chain_btc import BtcDeposit
    from reserve.ledger.entry import native_plan

    plan = native_plan(BtcDeposit)
    good = BtcDeposit(vault="v", txid="ab" * 32, blockhash="0xCD", height=1, confirmations=1,
                      delta_sats=5, outputs=[], amount_sats=5).to_payload()
    assert core.event_fits(plan, good)
    assert not core.event_fits(plan, dict(good, extra=1))
    assert not core.event_fits(plan, {k: v for k, v in good.items() if k != "txid"})
    assert not core.event_fits(plan, dict(good, txid="0x\uff11"))
    assert not core.event_fits(plan, dict(good, height=True))
    assert not core.event_fits(plan, dict(good, height=_Number(1)))
    assert not core.event_fits(plan, dict(good, vault_id=_Text("v")))
    assert not core.event_fits(plan, list(good.items()))
    assert core.event_fits((), {})
    assert not core.event_fits((), {"a": 1})
    assert core.event_fits((("a", 0),), {})  # optional, absent
    assert not core.event_fits((("a", 16),), {})  # required, absent
    assert core.event_fits((("a", 8 | 2),), {"a": None})  # nullable int
    assert not core.event_fits((("a", 2),), {"a": None})
    assert core.event_fits((("a", 5),), {"a": "-12"})
    assert not core.event_fits((("a", 5),), {"a": "-"})
    assert not core.event_fits((("a", 5),), {"a": ""})
    assert core.event_fits((("a", 3),), {"a": ""})
    assert core.event_fits((("a", 3),), {"a": "0x"})
    assert not core.event_fits((("a", 3),), {"a": "0X"})
    with pytest.raises(TypeError):
        core.event_fits((("a",),), {"a": 1})
    with pytest.raises(TypeError):
        core.event_fits([], {})


def test_append_checks_the_same_without_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine without a compiler runs encode_bodies and check_event with no core at all:
    # the same bytes, and the same refusal worded the same way.
    from bench.ledger import make_items
    from reserve.errors import EntryRejected
    from reserve.ledger import entry

    items = make_items(40)
    bad = [items[0][:2] + ({**items[0][2], "extra": 1},),
           items[2][:2] + ({**items[2][2], "height": "1"},),
           items[3][:2] + ({**items[3][2], "tx_hash": "0xzz"},),
           items[1][:2] + ({k: v for k, v in items[1][2].items() if k != "to"},)]

    def outcome() -> list[Any]:
        found: list[Any] = [entry.encode_bodies(items, 7, "2026-01-01T00:00:00.000000Z")]
        for item in bad:
            with pytest.raises(EntryRejected) as refused:
                entry.encode_bodies([items[0], item], 7, "2026-01-01T00:00:00.000000Z")
            found.append(str(refused.value))
        return found

    with_core = outcome()
    monkeypatch.setattr(entry, "_native", None)
    monkeypatch.setattr(entry, "_NATIVE_PLANS", None)
    assert outcome() == with_core
    assert entry._NATIVE_PLANS == {}


def _corrupt(item: tuple[str, str, Any], how: int) -> Any:
    kind, actor, payload = item
    key = sorted(payload)[0]
    return [item, (kind, actor, {**payload, "extra": 1}), (kind, actor, {**payload, key: 1.5}),
            (kind, actor, {**payload, key: None}), (kind, "", payload), (kind, "a" * 201, payload),
            ("no.such.kind", actor, payload), [kind, actor, payload], ("ledger.note", actor, payload),
            (kind, actor, {**payload, key: "\U0001f600"}), (kind, actor, {**payload, "\U0001f600": 1}),
            (kind, actor, {k: v for k, v in payload.items() if k != key}),
            (kind, actor, {**payload, key: "x" * 400})][how]


@given(st.lists(st.tuples(st.integers(0, 39), st.integers(0, 12)), min_size=1, max_size=12),
       st.integers(0, 2**40), st.sampled_from([600, 65536]))
@settings(max_examples=300, deadline=None)
def test_encode_batch_equals_encode_body_item_by_item(picks: list[tuple[int, int]], start: int,
                                                      limit: int) -> None:
    # The core's append loop (encode_batch, then Python for what it does not vouch for)
    # gives exactly encode_body's bytes, or its first refusal, worded the same.
    from bench.ledger import make_items
    from reserve.errors import EntryRejected
    from reserve.ledger.entry import encode_bodies, encode_body

    pool = make_items(40)
    items = [_corrupt(pool[at], how) for at, how in picks]
    time = "2026-01-01T00:00:00.000000Z"
    expected: list[bytes] = []
    try:
        for seq, (kind, actor, payload) in enumerate(items, start):
            expected.append(encode_body(seq, time, kind, actor, payload, limit))
    except EntryRejected as error:
        with pytest.raises(EntryRejected) as refused:
            encode_bodies(items, start, time, limit)
        assert str(refused.value) == str(error)
        return
    assert encode_bodies(items, start, time, limit) == expected


def test_encode_batch_arguments() -> None:
    from reserve.ledger.kinds import KINDS

    bodies: list[bytes] = []
    assert core.encode_batch([], 0, 0, "t", 100, 200, KINDS, {}, bodies) == 0
    assert core.encode_batch([("ledger.note", "a", {})], 0, 0, "t", 100, 200, KINDS, {},
                             bodies) == 0 and bodies == []  # no plan: Python decides
    with pytest.raises(ValueError):
        core.encode_batch([], 0, 0, "t", 100, 200, list(KINDS), {}, bodies)
    with pytest.raises(TypeError):
        core.encode_batch([("ledger.note", "a", {})], 0, 0, "t", 100, 200, KINDS,
                          {"ledger.note": ["x"]}, bodies)


@given(st.lists(st.tuples(st.integers(0, 2**62), st.binary(max_size=300), st.binary(max_size=40),
                          st.sampled_from(["btc.deposit", "ledger.note", "k\u00e9", ""])),
                max_size=30))
@settings(max_examples=200, deadline=None)
def test_copy_entry_rows_equals_the_python_stream(rows: list[tuple[int, bytes, bytes, str]]) -> None:
    # PostgreSQL's binary COPY tuples of entry rows with their kinds, byte for byte.
    from reserve.ledger.store import _copy_entry_rows

    entry_rows = [(seq, body, entry_hash) for seq, body, entry_hash, _ in rows]
    items = [(kind, "actor", {}) for *_, kind in rows]
    assert core.copy_entry_rows(entry_rows, items) == _copy_entry_rows(entry_rows, items)
    assert core.copy_entry_rows(entry_rows, tuple(items)) == _copy_entry_rows(entry_rows, items)


def test_copy_entry_rows_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        core.copy_entry_rows([(0, b"", b"")], [])
    with pytest.raises(TypeError):
        core.copy_entry_rows([(0, "body", b"")], [("k", "a", {})])
    with pytest.raises(TypeError):
        core.copy_entry_rows([(0, b"", b"")], [(1, "a", {})])
    with pytest.raises(OverflowError):
        core.copy_entry_rows([(2**63, b"", b"")], [("k", "a", {})])


@given(st.lists(st.tuples(st.integers(0, 2**62), st.binary(max_size=50), st.binary(max_size=40),
                          st.sampled_from(["btc.deposit", "ledger.note", "k\u00e9", ""])),
                max_size=30))
@settings(max_examples=200, deadline=None)
def test_entry_params_equals_the_python_list(rows: list[tuple[int, bytes, bytes, str]]) -> None:
    # The flat parameters of SQLite's multi-row entry INSERT: the same objects in order.
    from reserve.ledger.store import _entry_params_py

    entry_rows = [(seq, body, entry_hash) for seq, body, entry_hash, _ in rows]
    items = [(kind, "actor", {}) for *_, kind in rows]
    expected = [value for row in rows for value in row]
    assert core.entry_params(entry_rows, items) == expected
    assert core.entry_params(entry_rows, tuple(list(item) for item in items)) == expected
    assert _entry_params_py(entry_rows, items) == expected


def test_entry_params_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        core.entry_params([(0, b"", b"")], [])
    with pytest.raises(TypeError):
        core.entry_params([(0, b"")], [("k", "a", {})])
    with pytest.raises(IndexError):
        core.entry_params([(0, b"", b"")], [()])


bodies_lists = st.lists(st.binary(max_size=80), min_size=1, max_size=70)


@given(st.integers(0, 300), bodies_lists, st.integers(1, 8))
@settings(max_examples=150, deadline=None)
def test_hash_batch_equals_the_python_loop(size: int, bodies: list[bytes],
                                          level_min: int) -> None:
    history = [hashlib.sha256(str(i).encode()).digest() for i in range(size)]
    frontier = [merkle.root_hash(history[begin:end]) for begin, end in _perfect(size)]
    prev = hashlib.sha256(b"head").digest()
    python_frontier, c_frontier = list(frontier), list(frontier)
    expected = _hash_batch(prev, size, bodies, python_frontier, level_min)
    assert core.hash_batch(prev, size, bodies, c_frontier, level_min) == expected
    assert c_frontier == python_frontier
    leaves = history + [merkle.leaf_hash(body) for body in bodies]
    assert merkle.fold_frontier(c_frontier) == merkle.root_hash(leaves)
    for key, value in expected[1]:  # each stored node is that subtree's RFC 9162 hash
        level, index = key >> 40, key & ((1 << 40) - 1)
        assert level >= level_min
        assert value == merkle.root_hash(leaves[index << level:(index + 1) << level])


def _perfect(size: int) -> list[tuple[int, int]]:
    return [(index << level, (index + 1) << level)
            for level, index in (merkle.perfect_subtrees(0, size) if size else [])]


def test_hash_batch_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        core.hash_batch(b"short", 0, [b"x"], [], 1)
    with pytest.raises(TypeError):
        core.hash_batch(bytes(32), 0, ["text"], [], 1)
    with pytest.raises(TypeError):
        core.hash_batch(bytes(32), 1, [b"x"], [b"not 32 bytes"], 1)
    with pytest.raises(ValueError, match="frontier"):
        core.hash_batch(bytes(32), 1, [b"x"], [], 1)  # size 1 needs one frontier hash


def test_entries_equal_the_dataclass_and_stay_frozen() -> None:
    from dataclasses import FrozenInstanceError

    from reserve.ledger.entry import ENTRY_FIELDS, Entry

    rows = [(7, b"body-7", bytes(32)), (8, b"body-8", bytes(range(32)))]
    items: list[Any] = [("ledger.note", "alice", {"a": 1}), ["ledger.note", "bob", {}]]
    made = core.entries(Entry, ENTRY_FIELDS, rows, items, "2026-12-01T00:00:00.000000Z")
    assert made == [Entry(seq, "2026-12-01T00:00:00.000000Z", kind, actor, payload, body, h)
                    for (seq, body, h), (kind, actor, payload) in zip(rows, items)]
    assert all(type(entry) is Entry for entry in made)
    assert made == [Entry.of_fields(seq, "2026-12-01T00:00:00.000000Z", kind, actor, payload,
                                    body, h)
                    for (seq, body, h), (kind, actor, payload) in zip(rows, items)]
    with pytest.raises(FrozenInstanceError):
        made[0].seq = 9
    with pytest.raises(TypeError):
        core.entries(Entry, ENTRY_FIELDS, [(1, b"x")], [("k", "a", {})], "t")
    with pytest.raises(ValueError):
        core.entries(Entry, ENTRY_FIELDS, rows, items[:1], "t")


# ------------------------------------------------------------ canonicality scanner
@given(accepted)
@settings(max_examples=500, deadline=None)
def test_scanner_accepts_canonical_bytes_it_can_vouch_for(value: Any) -> None:
    data = bytes(rfc8785.dumps(value))
    text = json.dumps(value, ensure_ascii=False)
    unusual = (any(ord(ch) > 0xFFFF for ch in text) or "\\" in _keys(value)
               or any(len(str(abs(n))) > 15 for n in _integers(value)))
    if not unusual:
        assert core.is_canonical(data), data
    if core.is_canonical(data):
        assert _is_canonical_exact(data)


def _keys(value: Any) -> str:
    if isinstance(value, dict):
        return "".join(json.dumps(k, ensure_ascii=False) for k in value) + "".join(_keys(v) for v in value.values())
    if isinstance(value, list):
        return "".join(_keys(v) for v in value)
    return ""


def _integers(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _integers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _integers(v)]
    return []


INTERESTING = b' \t\n"\\/,:[]{}-+.0159eEafntu\x00\x1f\x7f\x80\xbf\xc0\xc2\xdf\xe0\xed\xef\xf0\xff'


@given(accepted, st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete"]),
                                  st.integers(0, 10**6), st.integers(0, 255),
                                  st.sampled_from(INTERESTING)), min_size=1, max_size=3))
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_scanner_never_vouches_for_mutated_bytes_the_reference_refuses(
        value: Any, edits: list[tuple[str, int, int, int]]) -> None:
    data = bytearray(rfc8785.dumps(value))
    for action, where, bit, byte in edits:
        at = where % (len(data) + 1)
        if action == "flip" and at < len(data):
            data[at] ^= 1 << (bit % 8)
        elif action == "set" and at < len(data):
            data[at] = byte
        elif action == "insert":
            data[at:at] = bytes([byte])
        elif action == "delete" and at < len(data):
            del data[at]
    if core.is_canonical(bytes(data)):
        assert _is_canonical_exact(bytes(data)), bytes(data)


@pytest.mark.parametrize("data", [
    b'{"a":1}', b'[]', b'{}', b'"\\u001f\\n\\"\\\\"', b'0', b'-12', b'123456789012345',
    b'{"a":[true,false,null],"b":{"c":"\xc3\xa9\xe2\x80\xa8\x7f"}}', b'{"a":1,"aa":2,"b":3}',
])
def test_scanner_accepts(data: bytes) -> None:
    assert _is_canonical_exact(data)
    assert core.is_canonical(data)


@pytest.mark.parametrize("data", [
    b'{"a": 1}', b' {}', b'{} ', b'-0', b'01', b'1.0', b'1e5', b'1E5', b'+1', b'1234567890123456',
    b'{"a":1,"a":1}', b'{"b":1,"a":2}', b'{"aa":1,"a":2}', b'"\\u001F"', b'"\\u000a"',
    b'"\\u0041"', b'"\\/"', b'"\\x"', b'"\x01"', b'"\xc0\x80"', b'"\xe0\x80\x80"',
    b'"\xed\xa0\x80"', b'"\xc3"', b'"\x80"', b'"\xf0\x9f\x98\x80"', b'\xef\xbb\xbf{}', b'{',
    b'[1,]', b'[,1]', b'{"a"}', b'{"a":}', b'tru', b'nul', b'"abc', b'', b'[1]]', b'NaN',
    b'Infinity', b'{"a\\n":1}', b'[' * 34 + b']' * 34,
])
def test_scanner_refuses(data: bytes) -> None:
    assert not core.is_canonical(data)


def test_scanner_depth_bound_matches_the_accepted_subset() -> None:
    # The envelope is depth 0; a value deeper than 32 is not accepted.
    assert core.is_canonical(b"[" * 33 + b"]" * 33)
    assert not core.is_canonical(b"[" * 33 + b"1" + b"]" * 33)
    assert not core.is_canonical(b"[" * 100_000)


# ------------------------------------------------------ whole verifier, both cores
def _ledger_rows(count: int) -> tuple[list[tuple[int, bytes, bytes]],
                                      list[tuple[int, int, bytes]]]:
    ledger = Ledger.open("sqlite:///:memory:")
    for start in range(0, count, 50):
        ledger.append_many([("ledger.note", "tester", {"i": i, "memo": "caf\u00e9 \U0001f600"
                             if i % 7 == 0 else f"n{i}", "deep": [[{"x": i}]]})
                            for i in range(start, min(count, start + 50))])
    rows, nodes = list(ledger.raw_rows()), list(ledger.stored_nodes())
    ledger.close()
    return rows, nodes


@given(st.integers(1, 130), st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_verifier_reports_the_same_with_and_without_the_core(
        count: int, data: st.DataObject) -> None:
    rows, nodes = _ledger_rows(count)
    if nodes and data.draw(st.booleans()):
        at = data.draw(st.integers(0, len(nodes) - 1))
        level, index, value = nodes[at]
        nodes[at] = (level, index, bytes(32) if data.draw(st.booleans()) else value[::-1])
    if nodes and data.draw(st.booleans()):
        del nodes[data.draw(st.integers(0, len(nodes) - 1))]
    if data.draw(st.booleans()):
        seq = data.draw(st.integers(0, count - 1))
        body = bytearray(rows[seq][1])
        body[data.draw(st.integers(0, len(body) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        rows[seq] = (seq, bytes(body), rows[seq][2])
    if data.draw(st.booleans()) and count > 2:
        i = data.draw(st.integers(0, count - 2))
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
    level_min = data.draw(st.sampled_from([1, 4]))
    with_core = verify.verify_stream(rows, [], None, stored_nodes=nodes, level_min=level_min)
    saved = verify._native
    try:
        verify._native = None
        without_core = verify.verify_stream(rows, [], None, stored_nodes=nodes,
                                            level_min=level_min)
    finally:
        verify._native = saved
    assert with_core.to_json() == without_core.to_json()


def _envelope_rows(kinds: list[str], level_min: int) -> tuple[list[tuple[int, bytes, bytes]],
                                                             list[list[bytes]], list[bytes]]:
    """Rows (seq, canonical envelope of each kind, entry hash) from genesis, and the nodes
    by level (from level_min) and frontier the Python loop computes for them."""
    bodies = [json.dumps({"actor": "a", "kind": kind, "payload": {"i": seq}, "seq": seq,
                          "time": "2026-12-08T00:00:00.000000Z"},
                         sort_keys=True, separators=(",", ":")).encode() for seq, kind in
              enumerate(kinds)]
    frontier: list[bytes] = []
    rows, nodes, _ = _hash_batch(bytes(32), 0, bodies, frontier, level_min)
    levels: list[list[bytes]] = [[] for _ in range(64)]
    for key, value in sorted(nodes):
        levels[key >> 40].append(value)
    return rows, levels, frontier


@pytest.mark.parametrize("level_min", [1, 4])
def test_verify_rows_walks_more_kinds_than_it_caches(level_min: int) -> None:
    # The GIL-free walk knows the kinds it has met (up to 64, each up to 64 bytes); a new
    # kind takes the GIL to look it up; a known one it cannot keep (the 65th, or a long
    # name) is walked row by row with the GIL; an unknown one stops the walk at its row.
    known = [f"k{n:03d}" for n in range(80)] + ["x" * 100]
    kinds = known * 3 + ["unknown.kind"] + known
    rows, levels, frontier = _envelope_rows(kinds, level_min)
    stop_at = kinds.index("unknown.kind")
    walked_frontier: list[bytes] = []
    walked_levels: list[list[bytes]] = [[] for _ in range(64)]
    index, expected, prev = core.verify_rows(rows, 0, 0, bytes(32), walked_frontier,
                                             walked_levels, frozenset(known), -1, level_min)
    assert (index, expected, prev) == (stop_at, stop_at, rows[stop_at - 1][2])
    _, before_levels, before_frontier = _envelope_rows(kinds[:stop_at], level_min)
    assert walked_frontier == before_frontier and walked_levels == before_levels
    # with every kind known it walks them all, and stops at a checkpoint size on request
    everything = frozenset(kinds)
    for stop in (-1, 300, len(rows)):
        walked_frontier, walked_levels = [], [[] for _ in range(64)]
        index, expected, prev = core.verify_rows(rows, 0, 0, bytes(32), walked_frontier,
                                                 walked_levels, everything, stop, level_min)
        end = len(rows) if stop == -1 else stop
        assert (index, expected, prev) == (end, end, rows[end - 1][2])
        _, end_levels, end_frontier = _envelope_rows(kinds[:end], level_min)
        assert walked_frontier == end_frontier and walked_levels == end_levels
    assert (len(rows), len(rows)) == (len(kinds), len(kinds))
    assert frontier == end_frontier and levels == end_levels


def test_read_ahead_keeps_order_and_stops_when_closed() -> None:
    read: list[int] = []

    def chunks():  # type: ignore[no-untyped-def]
        for n in range(100):
            read.append(n)
            yield [n]

    assert list(verify._read_ahead(chunks())) == [[n] for n in range(100)]
    read.clear()
    ahead = verify._read_ahead(chunks())
    assert next(ahead) == [0] and next(ahead) == [1]
    ahead.close()  # waits for the one read ahead, reads no further
    assert read == [0, 1, 2]
