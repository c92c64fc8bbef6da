"""The fast canonical encoder equals RFC 8785 (the `rfc8785` reference) on accepted input."""

from __future__ import annotations

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.errors import EntryRejected
from reserve.ledger.canonical import INTEGER_ABS_MAX, canonical_bytes, is_canonical

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | st.integers(-INTEGER_ABS_MAX, INTEGER_ABS_MAX) | texts
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(texts, inner, max_size=5), max_leaves=25)


@given(values)
@settings(max_examples=400)
def test_fast_encoder_equals_rfc8785(value: object) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_keys_sorted_by_utf16_code_units() -> None:
    # U+10000 is D800 DC00 in UTF-16, which sorts before U+E000 although its code point is larger.
    value = {"\ue000": 1, "\U00010000": 2, "a": 3}
    assert canonical_bytes(value) == rfc8785.dumps(value)
    assert canonical_bytes(value).index("\U00010000".encode()) < canonical_bytes(value).index(
        "\ue000".encode())


def test_escapes_like_ecmascript() -> None:
    value = {"s": "\u0000\u001f\"\\\n\t\u2028\u007f é"}
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("bad", [1.5, {"a": 0.1}, 2**53, -(2**53), {1: "x"}, {"a": b"x"},
                                 "\ud800", {"a": {1, 2}}, float("nan")])
def test_rejects_values_outside_the_ledger_subset(bad: object) -> None:
    with pytest.raises(EntryRejected):
        canonical_bytes(bad)


def test_rejects_deep_nesting() -> None:
    value: object = 1
    for _ in range(40):
        value = [value]
    with pytest.raises(EntryRejected, match="deeper"):
        canonical_bytes(value)


def test_is_canonical() -> None:
    assert is_canonical(b'{"a":1,"b":[true,null]}')
    assert not is_canonical(b'{"b":1,"a":2}')
    assert not is_canonical(b'{"a": 1}')
    assert not is_canonical(b'{"a":1.0}')
    assert not is_canonical(b'{"a":1,"a":1}')
    assert not is_canonical(b"not json")


def test_hostile_nesting_is_refused_before_any_parser_runs() -> None:
    # With a raised recursion limit (as test harnesses do), the recursive JSON parsers would
    # overflow the C stack on this input; the depth check must refuse it first.
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        assert not is_canonical(b"[" * 100_000 + b"]" * 100_000)
        assert not is_canonical(b'{"a":' * 50_000)
        assert is_canonical(b'["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]')
    finally:
        sys.setrecursionlimit(limit)
