"""The presenter: exact amount text per asset and surface, times, durations, decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reserve import present
from reserve.policy import loader
from reserve.policy.evaluate import Decision
from reserve.present import BTC, ETH
from tests.support.workflow import BTC_POLICY, EVM_POLICY

WEI_10_30 = 10**30 + 1  # beyond float precision and beyond Decimal's default 28 digits
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# -- what people type: asset units or base units, exactly ---------------------------------
@pytest.mark.parametrize(("text", "asset", "amount"), [
    ("20000000", "BTC", 20_000_000),          # a bare integer is base units, as recorded
    ("20000000sat", "BTC", 20_000_000),
    ("20000000 sats", "BTC", 20_000_000),
    ("0.2", "BTC", 20_000_000),               # a decimal point means asset units
    ("0.2BTC", "BTC", 20_000_000),
    ("0.2 btc", "BTC", 20_000_000),
    ("1BTC", "BTC", 100_000_000),
    ("0.00000001", "BTC", 1),
    ("1.5 ETH", "ETH", 15 * 10**17),
    ("1000000000000.000000000000000001", "ETH", WEI_10_30),
    ("7wei", "ETH", 7),
    ("0", "ETH", 0),
])
def test_parse_units(text: str, asset: str, amount: int) -> None:
    assert present.parse_units(text, asset) == amount


@pytest.mark.parametrize(("text", "asset", "reason"), [
    ("0.000000001", "BTC", "more than 8 decimal places"),
    ("1 ETH", "BTC", "is in ETH, but the asset is BTC"),
    ("1.5sat", "BTC", "sats are whole numbers"),
    ("1e5", "BTC", "is not an amount"),
    ("-1", "BTC", "is not an amount"),
    ("0x10", "BTC", "is not an amount"),
    ("1,000", "BTC", "is not an amount"),
    ("", "BTC", "is not an amount"),
    ("1.5", "0xToken", "more than 0 decimal places"),  # unknown decimals: base units only
])
def test_parse_units_refuses_with_a_reason(text: str, asset: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        present.parse_units(text, asset)


@given(st.integers(min_value=0, max_value=10**30), st.sampled_from(["BTC", "ETH"]))
def test_what_is_shown_parses_back_to_the_same_integer(amount: int, asset: str) -> None:
    shown = present.format_amount(amount, asset)  # "1.50000000 BTC"
    assert present.parse_units(shown, asset) == amount
    assert present.parse_units(str(amount), asset) == amount


# -- the API and dashboard: every place, no grouping --------------------------------------
@pytest.mark.parametrize(("amount", "asset", "text"), [
    (0, "BTC", "0.00000000 BTC"),
    (1, "BTC", "0.00000001 BTC"),
    (-1, "BTC", "-0.00000001 BTC"),
    (150_000_000, "BTC", "1.50000000 BTC"),
    (2_100_000_000_000_000, "BTC", "21000000.00000000 BTC"),
    (0, "ETH", "0.000000000000000000 ETH"),
    (750 * 10**15, "ETH", "0.750000000000000000 ETH"),
    (WEI_10_30, "ETH", "1000000000000.000000000000000001 ETH"),
    (-(10**19), "ETH", "-10.000000000000000000 ETH"),
    (10**23, "0xToken", "100000000000000000000000 0xToken"),  # unknown decimals: base units
    (-7, "0xToken", "-7 0xToken"),
])
def test_format_amount(amount: int, asset: str, text: str) -> None:
    assert present.format_amount(amount, asset) == text


def test_a_configured_token_reads_in_its_own_decimals_and_symbol() -> None:
    tokens = {"0xabc": present.token_unit("tRGT", 6)}
    assert present.format_amount(1_500_000, "0xabc", tokens) == "1.500000 tRGT"
    assert present.amount_words(1_500_000, present.unit_of("0xabc", tokens)) == \
        "1.5 tRGT (1,500,000 base units)"
    assert present.unit_of("BTC", {"BTC": present.token_unit("fake")}) is BTC  # not shadowed


# -- the demo: unit people think in, then the base unit ------------------------------------
@pytest.mark.parametrize(("amount", "unit", "text"), [
    (0, BTC, "0.00000000 BTC (0 sats)"),
    (1, BTC, "0.00000001 BTC (1 sats)"),
    (150_000_000, BTC, "1.50000000 BTC (150,000,000 sats)"),
    (2_100_000_000_000_000, BTC, "21,000,000.00000000 BTC (2,100,000,000,000,000 sats)"),
    (-150_000_000, BTC, "-1.50000000 BTC (-150,000,000 sats)"),
    (0, ETH, "0.00 ETH (0 wei)"),
    (750 * 10**15, ETH, "0.75 ETH (750,000,000,000,000,000 wei)"),
    (50 * 10**18, ETH, "50.00 ETH (50,000,000,000,000,000,000 wei)"),
    (WEI_10_30, ETH,
     "1,000,000,000,000.000000000000000001 ETH (1,000,000,000,000,000,000,000,000,000,001 wei)"),
    (-5, ETH, "-0.000000000000000005 ETH (-5 wei)"),
    (10**23, present.token_unit("tRGT"),
     "100,000 tRGT (100,000,000,000,000,000,000,000 base units)"),
])
def test_amount_words(amount: int, unit: present.Unit, text: str) -> None:
    assert present.amount_words(amount, unit) == text


# -- the report and the CLI ---------------------------------------------------------------
@pytest.mark.parametrize(("sats", "text"), [
    (0, "0 sats (0.00000000 BTC)"),
    (12_003_000, "12,003,000 sats (0.12003000 BTC)"),
    (-3_000, "-3,000 sats (-0.00003000 BTC)"),
    (123_456_789_012_345, "123,456,789,012,345 sats (1234567.89012345 BTC)"),
])
def test_base_units_words(sats: int, text: str) -> None:
    assert present.base_units_words(sats, BTC) == text


def test_base_units_text_is_the_recorded_integer() -> None:
    assert present.base_units_text(150_000_000, "sat") == "150000000 sat"
    assert present.base_units_text(WEI_10_30, "wei") == f"{WEI_10_30} wei"
    assert present.base_units_text(-1, "BTC") == "-1 BTC"


@given(st.integers(min_value=-(10**40), max_value=10**40), st.integers(0, 30),
       st.booleans())
def test_decimal_text_is_exact(amount: int, decimals: int, grouped: bool) -> None:
    text = present.decimal_text(amount, decimals, grouped=grouped)
    assert ("," in text) == (grouped and abs(amount) >= 1000 * 10**decimals)
    with localcontext() as exact:
        exact.prec = 100
        assert Decimal(text.replace(",", "")) * (10**decimals) == amount


def test_amounts_refuse_floats_bools_and_bad_places() -> None:
    with pytest.raises(TypeError):
        present.decimal_text(1.5, 8)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        present.amount_words(True, BTC)
    with pytest.raises(TypeError):
        present.format_amount(1.0, "BTC")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="places_min"):
        present.decimal_text(1, 2, 3)
    with pytest.raises(ValueError, match="places_min"):
        present.Unit("X", "x", "x", 2, places_min=3)


# -- times and durations ------------------------------------------------------------------
def test_times_are_utc_to_the_second() -> None:
    east = timezone(timedelta(hours=3))
    assert present.format_time(datetime(2026, 1, 5, 12, 0, 30, 999_999, tzinfo=east)) == \
        "2026-01-05T09:00:30Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        present.format_time(datetime(2026, 1, 5, 9, 0))  # naive: refused


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-11)),
                                               timezone(timedelta(hours=5, minutes=30))])))
def test_times_are_spelled_as_strftime_spells_them(moment: datetime) -> None:
    assert present.format_time(moment) == \
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "0 s"), (0, "0 s"), (0.2, "1 s"), (59, "59 s"), (60, "1 min"), (61, "2 min"),
    (3600, "1 h"), (82_800, "23 h"), (82_739.5, "22 h 59 min"), (82_740.5, "23 h"), (86_460, "24 h 1 min"),
    (604_800, "168 h"),
])
def test_durations(seconds: float, text: str) -> None:
    assert present.format_duration(seconds) == text


# -- decisions and policies ---------------------------------------------------------------
def _decision(**changes: object) -> Decision:
    fields: dict[str, object] = dict(
        action="transfer", digest="ab" * 32, rule_name="large", satisfied=("3 approvals",),
        missing=(), refused=(), ignored=(), quorum_met=True, rejected=False,
        may_approve=True, releasable=False, delay_ends_at=T0 + timedelta(hours=24),
        approvers=("a", "b", "c"), rejecters=(), institutions=("A", "B", "C"))
    fields.update(changes)
    return Decision(**fields)  # type: ignore[arg-type]


def test_decision_fields_and_remaining_delay() -> None:
    decision = _decision()
    assert present.decision_fields(decision) == {
        "rule": "large", "satisfied": ["3 approvals"], "missing": [], "refused": [],
        "ignored": [], "quorum_met": True, "releasable": False,
        "approvers": ["a", "b", "c"], "rejecters": [], "institutions": ["A", "B", "C"],
        "delay_ends_at": "2026-01-06T09:00:00Z"}
    assert present.remaining_delay(decision, T0 + timedelta(hours=1)) == "23 h"
    assert present.remaining_delay(decision, T0 + timedelta(hours=24)) == "over"
    assert present.remaining_delay(_decision(delay_ends_at=None), T0) == "none"
    assert present.remaining_delay(_decision(delay_ends_at=None, quorum_met=False), T0) == \
        "starts once approved"
    assert present.decision_fields(_decision(delay_ends_at=None))["delay_ends_at"] is None


def test_policy_words() -> None:
    words = present.policy_words(loader.load_file(BTC_POLICY))
    assert "BTC transfers from 0.10000001 BTC to 5.00000000 BTC (tier large): 3 approvals " \
           "from 3 institutions, then a 24 h delay" in words
    assert "BTC transfers from 5.00000001 BTC and above (tier very_large): 4 approvals from " \
           "4 institutions, then a 72 h delay" in words
    assert "at most 10.00000000 BTC in any 24 h" in words
    evm = present.policy_words(loader.load_file(EVM_POLICY))
    assert "at most 200.000000000000000000 ETH in any 24 h" in evm


def test_licence_sentence() -> None:
    from datetime import UTC, datetime

    since = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert present.licence_sentence("X", "L-042", "suspended", since) == \
        "counterparty X's licence L-042 suspended since 2026-01-05T09:00:00Z"
    assert present.licence_sentence("X", "L-042", "unknown", None) == \
        "counterparty X's licence L-042 is not in the licence register"
    assert present.licence_sentence("X", "L-042", "not yet effective", since) == \
        "counterparty X's licence L-042 takes effect 2026-01-05T09:00:00Z"
