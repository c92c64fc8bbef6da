"""The fast paths of canonical encoding and checking agree exactly with the exact paths.

`encode_body` assembles an entry's bytes around the payload's canonical text and
`is_canonical` / the verifier decide with one parse and one encode; each must be
byte-for-byte what RFC 8785 (the `rfc8785` reference) and the exact path say, including on
hostile bytes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.errors import EntryRejected
from reserve.ledger.canonical import INTEGER_ABS_MAX, _is_canonical_exact, is_canonical
from reserve.ledger.entry import encode_body
from reserve.ledger.kinds import KINDS
from reserve.ledger.verify import Report, _check_entry, _check_entry_exact

# Every category but Cs (lone surrogates, refused) and Cn (unassigned).
texts = st.text(alphabet=st.characters(categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co")),
                max_size=12)
scalars = (st.none() | st.booleans() | st.integers(-INTEGER_ABS_MAX, INTEGER_ABS_MAX) | texts)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(texts, inner, max_size=4), max_leaves=20)
payloads = st.dictionaries(texts, values, max_size=6)
TIME = "2025-01-02T03:04:05.000006Z"


@given(st.integers(0, INTEGER_ABS_MAX), st.sampled_from(sorted(KINDS)),
       texts.filter(bool), payloads)
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
