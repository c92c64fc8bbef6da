"""The fast paths of canonical encoding and checking agree exactly with the exact paths.

`encode_body` assembles an entry's bytes around the payload's canonical text and
`is_canonical` / the verifier decide with one parse and one encode; each must be
byte-for-byte what RFC 8785 (the `rfc8785` reference) and the exact path say, including on
hostile bytes.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.errors import EntryRejected
from reserve.ledger.canonical import (
    INTEGER_ABS_MAX,
    _is_canonical_exact,
    is_canonical,
    loads_canonical,
)
from reserve.ledger.entry import encode_bodies, encode_body
from reserve.ledger.verify import (
    Finding,
    Report,
    _check_entry,
    _check_entry_exact,
    _compare_nodes,
    _node_finding,
)

# Every category but Cs (lone surrogates, refused) and Cn (unassigned).
texts = st.text(alphabet=st.characters(categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co")),
                max_size=12)
scalars = (st.none() | st.booleans() | st.integers(-INTEGER_ABS_MAX, INTEGER_ABS_MAX) | texts)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(texts, inner, max_size=4), max_leaves=20)
payloads = st.dictionaries(texts, values, max_size=6)
TIME = "2025-01-02T03:04:05.000006Z"


# A note's payload is any object, so notes carry the arbitrary payloads; the kind is just
# one more string in the bytes (typed kinds' own shapes are tests/unit/test_events.py's).
NOTE = st.just("ledger.note")


@given(st.integers(0, INTEGER_ABS_MAX), NOTE, texts.filter(bool), payloads)
@settings(max_examples=200, deadline=None)
def test_entry_bytes_equal_rfc8785_of_the_whole_entry(seq: int, kind: str, actor: str,
                                                      payload: dict[str, Any]) -> None:
    whole: Any = {"seq": seq, "time": TIME, "kind": kind, "actor": actor, "payload": payload}
    assert encode_body(seq, TIME, kind, actor, payload, 10**9) == rfc8785.dumps(whole)


@pytest.mark.parametrize("payload", [{"a": 1.5}, {"a": 2**53}, {"a": [{"b": float("nan")}]},
                                     {1: "x"}, {"a": b"x"}, {"a": "\ud800"}, {"a": {1, 2}}])
def test_entry_refusals_unchanged(payload: Any) -> None:
    with pytest.raises(EntryRejected):
        encode_body(0, TIME, "ledger.note", "alice", payload)


@given(st.integers(0, 10**6), st.lists(st.tuples(NOTE,
                                              texts.filter(bool), payloads), min_size=1,
                                    max_size=5))
@settings(max_examples=150, deadline=None)
def test_batch_encoder_equals_encode_body(start: int, items: list[tuple[str, str, Any]]) -> None:
    # encode_bodies is the append loop's inlined encode_body: the same bytes, item for item.
    assert encode_bodies(items, start, TIME, 10**9) == [
        encode_body(seq, TIME, kind, actor, payload, 10**9)
        for seq, (kind, actor, payload) in enumerate(items, start)]


@pytest.mark.parametrize("bad", [("no.such.kind", "a", {}), ("ledger.note", "", {}),
                                 ("ledger.note", "x" * 201, {}), ("ledger.note", "a", []),
                                 ("ledger.note", "a", {"n": 1.5}), ("ledger.note", "a", {"s": "\ud800"}),
                                 ("ledger.note", "a", {"big": "x" * 300}), (["list"], "a", {}),
                                 ("vault.frozen", "a", {"vault": "v"})])
def test_batch_encoder_refuses_as_encode_body_does(bad: tuple[Any, Any, Any]) -> None:
    items = [("ledger.note", "ok", {"i": 1}), bad]
    with pytest.raises((EntryRejected, TypeError)) as expected:
        encode_body(1, TIME, *bad, payload_bytes_max=200)
    with pytest.raises(type(expected.value), match=re.escape(str(expected.value))):
        encode_bodies(items, 0, TIME, 200)


def test_astral_keys_take_the_reference_order() -> None:
    payload = {"\ue000": 1, "\U00010000": 2}
    whole: Any = {"seq": 1, "time": TIME, "kind": "ledger.note", "actor": "a", "payload": payload}
    assert encode_body(1, TIME, "ledger.note", "a", payload) == rfc8785.dumps(whole)


HOSTILE = [
    b'{"a":1}', b'{"a": 1}', b' {"a":1}', b'{"a":1} ', b'{"a":1.0}', b'{"a":1e3}', b'{"a":-0}',
    b'{"a":NaN}', b'{"a":Infinity}', b'{"a":9007199254740991}', b'{"a":9007199254740992}',
    b'{"a":-9007199254740992}', b'{"a":123456789012345}', b'{"a":-123456789012345}',
    b'{"a":1,"a":1}', b'{"b":1,"a":2}', b'{"a":"\\u00e9"}', '{"a":"\u00e9"}'.encode(),
    b'{"a":"\\ud800"}', b'{"a":"\\/"}', b'{"a":"\\u001f"}', b'{"a":"\\u001F"}',
    '{"\ue000":1,"\U00010000":2}'.encode(), '{"\U00010000":2,"\ue000":1}'.encode(),
    b'{"\\ud800\\udc00":2,"\\ue000":1}', '{"a":"\U0001f600"}'.encode(),
    '{"a":1}'.encode("utf-16"), '{"a":1}'.encode("utf-16-le"), b'\xef\xbb\xbf{"a":1}',
    b'\xed\xa0\x80', b'{"a":"\xed\xa0\x80"}', b'\xff', b'', b'[]', b'1', b'"x"', b'null',
    b'[' * 40 + b']' * 40, b'[' * 32 + b']' * 32, b'[' * 33 + b']' * 33, b'[' * 34 + b']' * 34,
    b'[' * 100_000, b'{"a":[1,2,{"b":null}]}', b'{"a":[1,2,{"b":null}],}', b'{"a":tru}',
    b'{"a":1}{"b":2}', b'{"a":1},{"b":2}', b'{"a":"\x01"}', b'{"a":"\\t"}', b'{"a":"\t"}',
]


@pytest.mark.parametrize("data", HOSTILE)
def test_is_canonical_fast_equals_exact_on_hostile_bytes(data: bytes) -> None:
    assert is_canonical(data) is _is_canonical_exact(data)


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    position = st.integers(0, max(len(data) - 1, 0))
    flip = st.tuples(position, st.integers(0, 7)).map(
        lambda pb: data[:pb[0]] + bytes([data[pb[0]] ^ (1 << pb[1])]) + data[pb[0] + 1:])
    insert = st.tuples(position, st.sampled_from([b" ", b",", b"0", b"-", b".5", b"}", b"\\",
                                                  b'"', b"[", "\U00010000".encode()])).map(
        lambda pi: data[:pi[0]] + pi[1] + data[pi[0]:])
    cut = st.tuples(position, position).map(lambda ab: data[:min(ab)] + data[max(ab):])
    return flip | insert | cut


@given(st.data(), st.integers(0, 10**6), payloads)
@settings(max_examples=200, deadline=None)
def test_verifier_fast_check_equals_exact_on_mutated_entries(data: st.DataObject, seq: int,
                                                             payload: dict[str, Any]) -> None:
    body = rfc8785.dumps({"seq": seq, "time": TIME, "kind": "ledger.note", "actor": "a",
                          "payload": payload})
    mutated = data.draw(_mutations(body) | st.just(body))
    fast, exact = Report(), Report()
    assert _check_entry(seq, mutated, fast) == _check_entry_exact(seq, mutated, exact)
    assert fast.findings == exact.findings
    assert is_canonical(mutated) is _is_canonical_exact(mutated)


@given(values)
@settings(max_examples=150, deadline=None)
def test_is_canonical_fast_equals_exact_on_other_encodings(value: Any) -> None:
    for data in (rfc8785.dumps(value), json.dumps(value).encode(),
                 json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()):
        assert is_canonical(data) is _is_canonical_exact(data)


# --------------------------------------------------------------- orjson fast path
# `loads_canonical` (orjson parse + encode, `_PLAIN_TOKENS` on the bytes) may only ever say
# "canonical" when the exact path does, and then hand back json.loads' value.

ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
# Every Unicode character but lone surrogates, including astral ones and controls.
any_texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
any_values = st.recursive(
    st.none() | st.booleans() | st.integers(-INTEGER_ABS_MAX, INTEGER_ABS_MAX) | any_texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_texts, inner, max_size=4),
    max_leaves=20)


def _assert_fast_sound(data: bytes) -> None:
    loaded = loads_canonical(data)
    if loaded is not None:
        assert _is_canonical_exact(data), data
        assert loaded[0] == json.loads(data)
        assert type(loaded[0]) is type(json.loads(data))
    assert is_canonical(data) is _is_canonical_exact(data)


@given(any_values)
@settings(max_examples=300, deadline=None)
def test_orjson_encoding_is_rfc8785_on_the_accepted_subset(value: Any) -> None:
    # The premise of the fast path: where no key holds an astral character, orjson's sorted
    # output is RFC 8785's, byte for byte (escapes, lowercase \u00xx, key order, integers).
    reference = rfc8785.dumps(value)
    if not any(max(map(ord, key), default=0) > 0xFFFF for key in _keys(value)):
        assert orjson.dumps(value, option=ORJSON_OPTIONS) == reference
    _assert_fast_sound(reference)


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for item in value.values() for k in _keys(item))]
    if isinstance(value, list):
        return [k for item in value for k in _keys(item)]
    return []


@given(values)
@settings(max_examples=200, deadline=None)
def test_fast_path_accepts_common_canonical_values(value: Any) -> None:
    data = rfc8785.dumps(value)
    text = data.decode("utf-8")
    plain = "\\" not in text and max(map(ord, text), default=0) <= 0xFFFF and (
        text.count("{") + text.count("[") <= 32)
    if plain:
        assert loads_canonical(data) == (value,)
    _assert_fast_sound(data)


@given(st.floats(allow_nan=False, allow_infinity=False))
@settings(max_examples=300, deadline=None)
def test_floats_never_pass_the_fast_path(number: float) -> None:
    # However orjson writes a float, valid JSON gives it a fraction or an exponent, which
    # `_PLAIN_TOKENS` refuses outside strings.
    for data in (b'{"a":' + orjson.dumps(number) + b"}", b"[" + orjson.dumps(number) + b"]",
                 orjson.dumps(number), json.dumps({"a": number}, separators=(",", ":")).encode()):
        assert loads_canonical(data) is None
        assert not is_canonical(data)


@pytest.mark.parametrize("data", [
    b'{"a":9007199254740992}', b'{"a":-9007199254740992}', b'{"a":18446744073709551616}',
    b'{"a":1E5}', b'{"a":1e+5}', b'{"a":1e5}', b'{"a":-0.0}', b'[1.0]', b"1.5", b"1e400",
    b'{"a":"1.5","b":true}', b'{"a":true,"b":1e1}', b'{"a":false,"b":[1e1]}',
    b'{"a":"x\\u0000"}', b'{"a":"\\u00E9"}', b'{"a":"\\"1.5"}', b'{"e":"\\\\","f":1.5}',
    b'{"a":1}\n', b'\t{"a":1}', b'{"a":NaN}', b'{"a":-Infinity}', b'{"a":[],"a":[]}',
    '{"\U00010000":1,"\ue000":2}'.encode(), '{"\ue000":2,"\U00010000":1}'.encode(),
    b'{"a":"\xf5\x80\x80\x80"}', b'{"a":"\xc0\x80"}', b'{"a":"\xed\xbf\xbf"}',
    b"[" * 32 + b"]" * 32, b"[" * 33 + b"]" * 33, b"[" * 32 + b"1" + b"]" * 32,
    b"[" * 33 + b"1" + b"]" * 33, b'{"a":' * 31 + b"1" + b"}" * 31, b"{}", b"[]", b"true",
    b'"\xe2\x80\xa8"', b'"\x7f"', b'"/"', b'"\\/"',
])
def test_fast_path_sound_on_edge_cases(data: bytes) -> None:
    _assert_fast_sound(data)


@given(st.data(), st.integers(0, 10**6), payloads)
@settings(max_examples=300, deadline=None)
def test_fast_path_sound_on_mutated_entries(data: st.DataObject, seq: int,
                                            payload: dict[str, Any]) -> None:
    body = rfc8785.dumps({"seq": seq, "time": TIME, "kind": "ledger.note", "actor": "a",
                          "payload": payload})
    _assert_fast_sound(data.draw(_mutations(body) | st.just(body)))


# ---------------------------------------------------------- stored-node comparison
def _compare_nodes_reference(stored: list[tuple[int, int, bytes]],
                             computed: dict[tuple[int, int], bytes], verified: int,
                             complete: bool, report: Report) -> None:
    """The comparison as it was before the bulk fast path: one dict, one pop per node; each
    wrong node is worded by the verifier's own `_node_finding`, which this test does not judge."""
    wrong: list[tuple[int, int]] = []
    for level, index, value in stored:
        first, end = index << level, (index + 1) << level
        if end > verified:
            if complete:
                report.findings.append(Finding(first, f"stored subtree hash at level {level} "
                                                      f"index {index} covers no entries"))
            continue
        expected = computed.pop((level, index), None)
        if expected != value:
            wrong.append((level, index))
    report.findings.extend(_node_finding(level, index, set(wrong), 0) for level, index in wrong)
    if computed and complete:
        level, index = min(computed, key=lambda key: key[1] << key[0])
        report.findings.append(Finding(index << level, "stored subtree hashes are missing"))


def _tree_nodes(size: int) -> list[list[bytes]]:
    by_level: list[list[bytes]] = [[] for _ in range(64)]
    for level in range(1, 64):
        by_level[level] = [hashlib.sha256(f"{level}/{index}".encode()).digest()
                           for index in range(size >> level)]
    return by_level


@given(st.integers(0, 70), st.data(), st.booleans())
@settings(max_examples=300, deadline=None)
def test_node_comparison_equals_reference(size: int, data: st.DataObject,
                                          complete: bool) -> None:
    by_level = _tree_nodes(size)
    honest = [(level, index, value) for level, hashes in enumerate(by_level)
              for index, value in enumerate(hashes)]
    bogus = (1, 0, b"\x00" * 32)
    edit = st.sampled_from(["none", "drop", "swap", "dup", "flip", "extra", "shuffle"])
    stored = list(honest)
    for _ in range(data.draw(st.integers(0, 3))):
        action = data.draw(edit)
        position = data.draw(st.integers(0, max(len(stored) - 1, 0)))
        if action == "drop" and stored:
            del stored[position]
        elif action == "swap" and len(stored) > 1:
            stored[0], stored[position] = stored[position], stored[0]
        elif action == "dup" and stored:
            stored.insert(position, stored[position])
        elif action == "flip" and stored:
            level, index, value = stored[position]
            stored[position] = (level, index, bytes([value[0] ^ 1]) + value[1:])
        elif action == "extra":
            stored.append(data.draw(st.sampled_from([bogus, (1, size, b"\x01" * 32),
                                                     (7, 0, b"\x02" * 32)])))
        elif action == "shuffle":
            stored = data.draw(st.permutations(stored))
    fast, reference = Report(), Report()
    _compare_nodes(iter(stored), by_level, size, complete, fast)
    computed = {(level, index): value for level, index, value in honest}
    _compare_nodes_reference(stored, computed, size, complete, reference)
    assert fast.findings == reference.findings
