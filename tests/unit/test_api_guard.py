"""The request guard's and the address checks' pure logic, with hostile input.

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
from reserve.errors import PolicyError
from wallets import addresses

REGTEST = "bip122:0f9188f13cb7b2c71f2a335e3a4fc328"
ANVIL = "eip155:31337"


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


def test_bitcoin_destinations_must_be_of_the_vaults_network() -> None:
    addresses.check_destination(REGTEST, "regtest", "BTC",
                                "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")
    for address in ("zzz", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
                    "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt081", ""):
        with pytest.raises(PolicyError, match="destination refused"):
            addresses.check_destination(REGTEST, "regtest", "BTC", address)
    with pytest.raises(PolicyError, match="BTC only"):
        addresses.check_destination(REGTEST, "regtest", "ETH",
                                    "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080")


def test_evm_destinations_must_be_checksummed_addresses() -> None:
    addresses.check_destination(ANVIL, "anvil", "ETH", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
    addresses.check_destination(ANVIL, "anvil", "ETH", "0x" + "ab" * 20)
    for address in ("zzz", "0x70997970C51812dc3A010C7d01b50e0d17dc79c8", "0x" + "0" * 40,
                    "0x" + "ab" * 19, "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"):
        with pytest.raises(PolicyError, match="destination refused"):
            addresses.check_destination(ANVIL, "anvil", "ETH", address)
    with pytest.raises(PolicyError, match="only bip122"):
        addresses.check_destination("cosmos:hub", "x", "ATOM", "x")


def test_a_fee_cap_only_where_a_fee_exists() -> None:
    assert addresses.fee_cap(REGTEST, "BTC", "20000") == 20_000
    assert addresses.fee_cap(REGTEST, "BTC", "0.0002 BTC") == 20_000
    with pytest.raises(PolicyError, match="a Bitcoin transfer needs a fee cap"):
        addresses.fee_cap(REGTEST, "BTC", None)
    assert addresses.fee_cap(ANVIL, "ETH", None) == 0
    assert addresses.fee_cap(ANVIL, "ETH", "0") == 0
    with pytest.raises(PolicyError, match="pays no fee from the vault"):
        addresses.fee_cap(ANVIL, "ETH", "0.01")
    with pytest.raises(PolicyError, match="more than 8 decimal places"):
        addresses.typed_amount("0.123456789", "BTC")


def test_amounts_and_fee_caps_are_bounded_by_the_chain() -> None:
    addresses.check_transfer(REGTEST, [addresses.SATS_MAX], 0)
    addresses.check_transfer(ANVIL, [2**255, 2**255 - 1], 2**64)
    with pytest.raises(PolicyError, match="fee_max"):
        addresses.check_transfer(REGTEST, [1000], 2**64)
    with pytest.raises(PolicyError, match="outputs total"):
        addresses.check_transfer(REGTEST, [addresses.SATS_MAX, 1], 0)
    with pytest.raises(PolicyError, match="outputs total"):
        addresses.check_transfer(ANVIL, [2**256], 0)
