"""The request guard's pure logic, with hostile input.

The depth check must answer without recursing even with Python's recursion limit raised
(as py_ecc raises it at import, in the served process), and every answer that echoes
input must be encodable.
"""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reserve.api.app import encodable
from reserve.api.guard import body_problem, cross_site, has_lone_surrogate


def test_hostile_nesting_is_refused_before_any_parser_runs() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1_000_000)
    try:
        for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000, b"[" * 34):
            assert body_problem(body, "application/json") == \
                "the body nests deeper than 32 levels"
    finally:
        sys.setrecursionlimit(limit)
    assert body_problem(b'{"outputs":[{"amount":"1"}]}', "application/json") is None
    assert body_problem(b"not json", "application/json") is None  # FastAPI's own 422


def test_lone_surrogates_are_found_in_keys_and_values() -> None:
    for body in (b'{"purpose":"\\ud800"}', b'{"\\udc00":1}', b'[["\\ud83d"]]',
                 '["\udfff"]'.encode("utf-8", "surrogatepass")):
        assert "not valid Unicode" in str(body_problem(body, "application/json"))
    assert body_problem(b'{"purpose":"\\ud83d\\ude00 ok"}', "application/json") is None
    assert not has_lone_surrogate({"a": ["b", 1, None, {"c": "\U0001f600"}]})


@given(st.recursive(st.text() | st.integers() | st.none(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20))
def test_encodable_values_always_encode(value: object) -> None:
    json.dumps(encodable(value), ensure_ascii=False).encode("utf-8")


def test_encodable_escapes_a_lone_surrogate_as_text() -> None:
    assert encodable({"input": "\ud800x"}) == {"input": "\\ud800x"}


@pytest.mark.parametrize(("headers", "refused"), [
    ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}, False),
    ({"host": "reserve.example", "origin": "https://reserve.example"}, False),
    ({"host": "reserve.example", "referer": "https://reserve.example/login"}, False),
    ({"host": "reserve.example"}, True),
    ({"host": "reserve.example", "origin": "null"}, True),
    ({"host": "reserve.example", "origin": "https://reserve.example.evil"}, True),
    ({"host": "reserve.example", "referer": "https://evil.example/reserve.example"}, True),
    ({"host": "reserve.example", "origin": "javascript://reserve.example"}, True),
    ({"origin": "https://reserve.example"}, True),
])
def test_cross_site(headers: dict[str, str], refused: bool) -> None:
    assert cross_site(headers) is refused
