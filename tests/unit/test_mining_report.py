"""The energy report (docs/mining.md#the-energy-report): the stated price and difficulty,
the revenue and expected-yield arithmetic (integers only, property-tested against exact
fractions), the anomalies, pool payouts classified as mining in the statement's flows,
and the signed report's check-in and verification against the ledger it read."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from reserve.errors import MiningError, ReportRejected
from reserve.events.mining import EnergyReportPublished
from reserve.ledger import Ledger
from reserve.ledger.checkpoint import CheckpointSigner
from reserve.mining import publish, readings, record, report, sites
from reserve.mining.basis import Difficulty, Price
from reserve.reconcile.report import AuditorSigner
from reserve.statement.flows import ChainTx, MiningWallet, classify
from reserve.statement.statement import check_in as check_in_statement
from tests.unit.test_mining import T0, allocate, reading, register_wallet, site

AUDITOR = AuditorSigner("auditor-general", Ed25519PrivateKey.from_private_bytes(bytes(32)))
END = T0 + timedelta(hours=3)
POOL = "bcrt1qm0mjhpdd4w4vt8z7t6n4tsw93qk8xuyxzwss6q"  # any valid regtest address


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the stated inputs ---------------------------------------------------------------------
def test_a_price_is_parsed_exactly_into_minor_units() -> None:
    price = Price.parse("97250.05", "USD", "exchange close")
    assert price.minor_per_btc == 9_725_005 and price.text() == "97,250.05 USD"
    assert Price.parse("15000000", "JPY", "x").minor_per_btc == 15_000_000
    assert Price.parse("31000.125", "KWD", "x").minor_per_btc == 31_000_125


@pytest.mark.parametrize(("text", "currency", "source", "match"), [
    ("97250.001", "USD", "x", "more decimals than USD's 2"),
    ("-1", "USD", "x", "decimal number"),
    ("1e5", "USD", "x", "decimal number"),
    ("0", "USD", "x", "above 0"),
    ("100", "usd", "x", "3-letter"),
    ("100", "USD", "", "name its source"),
    (97250, "USD", "x", "decimal number"),
])
def test_a_bad_price_is_refused(text: Any, currency: str, source: str, match: str) -> None:
    with pytest.raises(MiningError, match=match):
        Price.parse(text, currency, source)


@pytest.mark.parametrize(("text", "reward", "match"), [
    ("0", 312_500_000, "above 0"), ("abc", 312_500_000, "decimal number"),
    ("1e14", 312_500_000, "decimal number"), ("100", 0, "block reward"),
    ("100", True, "block reward"), ("100", 10**12, "block reward"),
])
def test_a_bad_difficulty_is_refused(text: str, reward: Any, match: str) -> None:
    with pytest.raises(MiningError, match=match):
        Difficulty.parse(text, reward, "mainnet")


@given(kwh=st.integers(0, 10**12), efficiency=st.integers(1_000, 10_000_000),
       difficulty=st.decimals(min_value="0.001", max_value="1e19", places=3),
       reward=st.integers(1, 10**10))
def test_expected_yield_is_the_floor_of_the_exact_formula(
        kwh: int, efficiency: int, difficulty: Any, reward: int) -> None:
    basis = Difficulty.parse(format(difficulty, "f"), reward, "stated")
    # W kWh x 3.6e6 J/kWh / (E/1000 J/TH) x 1e12 H/TH hashes; a block per D x 2^32 hashes.
    hashes = Fraction(kwh * 3_600_000 * 1000, efficiency) * 10**12
    exact = hashes / (Fraction(difficulty) * 2**32) * reward
    assert basis.expected_sats(kwh, efficiency) == exact.numerator // exact.denominator
    blocks = hashes / (Fraction(difficulty) * 2**32) * 1000
    assert basis.expected_blocks_milli(kwh, efficiency) == blocks.numerator // blocks.denominator


def test_expected_yield_at_a_mainnet_difficulty() -> None:
    # 1 GWh at 17.5 J/TH is 2.057e23 hashes; at difficulty 1.1e14 a block takes 4.72e23:
    # 0.43542 blocks, so 0.43542 x 3.125 BTC (computed by hand: 1.36070 BTC).
    basis = Difficulty.parse("110000000000000", 312_500_000, "mainnet, stated")
    assert basis.expected_blocks_milli(1_000_000, 17_500) == 435
    assert basis.expected_sats(1_000_000, 17_500) == 136_069_856


@given(mined=st.integers(0, 21 * 10**14), kwh=st.integers(1, 10**12),
       price=st.integers(1, 10**12), tariff=st.integers(0, 10**6))
def test_revenue_per_mwh_is_floor_division(mined: int, kwh: int, price: int,
                                           tariff: int) -> None:
    one = sites.Site(site="s", operator="o", kind="mining", capacity_kw=1, meter="M",
                     meter_key=site().meter_key, tariff_minor_per_kwh=tariff, currency="USD",
                     payout_wallets=("w",))
    stated = Price(price, "USD", "stated")
    figures = report.revenue_figures(one, kwh, mined, stated)
    assert figures["revenue_minor"] == mined * price // 10**8
    exact = Fraction(mined * price * 1000, 10**8 * kwh)
    assert figures["revenue_per_mwh_minor"] == exact.numerator // exact.denominator
    assert figures["margin_per_mwh_minor"] == figures["revenue_per_mwh_minor"] - tariff * 1000
    other = report.revenue_figures(one, kwh, mined, Price(price, "EUR", "stated"))
    assert other["margin_per_mwh_minor"] is None  # another currency than the tariff's


def test_fleet_efficiency_is_parsed_into_millijoules() -> None:
    assert sites.parse_efficiency("17.5") == 17_500
    assert sites.parse_efficiency("21") == 21_000
    assert sites.parse_efficiency(None) == 0
    for bad in ("17.5555", "-3", "fast", "1e3"):
        with pytest.raises(MiningError, match="J/TH"):
            sites.parse_efficiency(bad)
    with pytest.raises(MiningError, match="fleet efficiency"):
        site().__class__(**{**site().__dict__, "efficiency_mj_per_th": 999})
    with pytest.raises(MiningError, match="no pool and no mining fleet"):
        site("gpu", kind="ai").__class__(**{**site("gpu", kind="ai").__dict__,
                                            "pool_payers": (POOL,)})
    with pytest.raises(MiningError, match="not a Bitcoin address"):
        site().__class__(**{**site().__dict__, "pool_payers": ("nowhere",)})


# -- pool payouts in the statement's flows ------------------------------------------------
def test_a_pool_payout_into_a_site_wallet_is_mining_of_that_site() -> None:
    mining = {"north-payout": MiningWallet("north-mine", frozenset({POOL}))}
    paid = ChainTx("aa" * 32, 300, False, ((None, 10_000),),
                   (("north-payout", 9_000), (None, 900)), 1_767_571_200, (POOL,))
    [movement] = classify(paid, mining=mining)
    assert (movement.flow_class, movement.site, movement.sats) == ("mining", "north-mine",
                                                                   9_000)
    assert movement.evidence == f"pool payout from {POOL}"
    assert movement.to_json()["time"] == "2026-01-05T00:00:00Z"
    # Any input from elsewhere, and it is an inflow nobody explained.
    mixed = ChainTx("bb" * 32, 300, False, ((None, 10_000), (None, 5)),
                    (("north-payout", 9_000),), 1_767_571_200, (POOL, "bcrt1qother"))
    assert [m.flow_class for m in classify(mixed, mining=mining)] == ["unattributed"]
    coinbase = ChainTx("cc" * 32, 301, True, (), (("north-payout", 625_000_000),), 0, ())
    assert [(m.flow_class, m.site) for m in classify(coinbase, mining=mining)] == [
        ("mining", "north-mine")]
    elsewhere = ChainTx("dd" * 32, 302, True, (), (("treasury", 1),), 0, ())
    assert [(m.flow_class, m.site) for m in classify(elsewhere, mining=mining)] == [
        ("mining", None)]


# -- the report and its anomalies ----------------------------------------------------------
def movement(wallet: str, sats: int, at: datetime, txid: str = "ab" * 32,
             flow_class: str = "mining") -> dict[str, Any]:
    return {"txid": txid, "height": 1, "time": iso(at), "wallet": wallet,
            "class": flow_class, "sats": sats, "evidence": "coinbase", "site": None}


def body(movements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"period": {"start": iso(T0), "end": iso(END)}, "blocks": {"start_height": 1},
            "movements": movements}


@pytest.fixture()
def allocated(ledger: Ledger) -> Ledger:
    return allocate(ledger)


@pytest.fixture()
def three_hours(allocated: Ledger) -> Ledger:
    allocated.signer = CheckpointSigner("unit.test/ledger", Ed25519PrivateKey.generate())
    for hour in (0, 1):
        record.submit_reading(allocated, reading(T0 + timedelta(hours=hour), kwh=1_000_000),
                              actor="operator")
    return allocated


def built(ledger: Ledger, movements: list[dict[str, Any]], **stated: Any) -> dict[str, Any]:
    entries = record.relevant(ledger)
    return report.build_report(sites.registry(entries), readings.recorded(entries),
                               body(movements), T0, END, **stated)


def kinds(found: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(a["kind"], a["site"]) for a in found["anomalies"]]


def test_payouts_covered_by_readings_are_no_anomaly(three_hours: Ledger) -> None:
    found = built(three_hours, [movement("north-payout", 5, T0 + timedelta(minutes=30)),
                                movement("north-payout", 7, T0 + timedelta(minutes=90))])
    assert found["anomalies"] == []
    assert found["total"]["mined_sats"] == 12 == found["total"]["statement_mining_sats"]
    assert found["total"]["matches_statement"] is True


def test_a_payout_without_a_reading_is_an_anomaly(three_hours: Ledger) -> None:
    found = built(three_hours, [movement("north-payout", 5, T0 + timedelta(minutes=30)),
                                movement("north-payout", 7, T0 + timedelta(minutes=90)),
                                movement("north-payout", 9, T0 + timedelta(minutes=150))])
    assert kinds(found) == [("payout_without_reading", "north-mine")]
    assert "02:30:00Z" in found["anomalies"][0]["detail"]


def test_a_reading_without_a_payout_is_an_anomaly(three_hours: Ledger) -> None:
    found = built(three_hours, [movement("north-payout", 5, T0 + timedelta(minutes=30))])
    assert kinds(found) == [("reading_without_payout", "north-mine")]
    assert found["anomalies"][0]["period_start"] == iso(T0 + timedelta(hours=1))


def test_coins_mined_into_no_sites_wallet_are_an_anomaly(three_hours: Ledger) -> None:
    found = built(three_hours, [movement("north-payout", 5, T0 + timedelta(minutes=30)),
                                movement("north-payout", 6, T0 + timedelta(minutes=61)),
                                movement("treasury", 50, T0 + timedelta(minutes=61))])
    assert kinds(found) == [("mining_outside_sites", None)]
    assert found["total"]["mined_sats"] == 11
    assert found["total"]["statement_mining_sats"] == 61
    assert found["total"]["matches_statement"] is False


def test_a_yield_far_from_the_expected_is_an_anomaly(allocated: Ledger) -> None:
    register_wallet(allocated, "south-payout")
    record.register_site(allocated, sites.Site(
        site="south-mine", operator="South", kind="mining", capacity_kw=500_000,
        meter="MTR-003", meter_key=site().meter_key, tariff_minor_per_kwh=5, currency="USD",
        payout_wallets=("south-payout",), efficiency_mj_per_th=17_500), actor="operator")
    for name, meter in (("north-mine", "MTR-001"), ("south-mine", "MTR-003")):
        record.submit_reading(allocated, reading(T0, hours=3, kwh=1_000_000,
                                                 site_name=name, meter=meter),
                              actor="operator")
    basis = Difficulty.parse("110000000000000", 312_500_000, "mainnet, stated")
    at = T0 + timedelta(hours=1)
    expected = basis.expected_sats(1_000_000, 17_500)
    near = built(allocated, [movement("north-payout", 1, at),
                             movement("south-payout", expected, at, txid="cd" * 32)],
                 difficulty=basis)
    south = next(r for r in near["sites"] if r["site"] == "south-mine")
    assert south["expected_sats"] == expected and south["yield_bp"] == 10_000
    assert near["anomalies"] == []  # north declared no fleet: no yield check
    far = built(allocated, [movement("north-payout", 1, at),
                            movement("south-payout", expected * 3, at, txid="cd" * 32)],
                difficulty=basis)
    assert kinds(far) == [("yield_off_expected", "south-mine")]
    assert "300.00%" in far["anomalies"][0]["detail"]


def test_an_ai_data_centre_shows_energy_and_tariff_only(allocated: Ledger) -> None:
    record.register_site(allocated, site("gpu-park", 500_000, kind="ai", meter="MTR-002"),
                         actor="operator")
    record.submit_reading(allocated, reading(T0, hours=3, kwh=900_000, site_name="gpu-park",
                                             meter="MTR-002"), actor="operator")
    found = built(allocated, [], price=Price.parse("97250.00", "USD", "stated"))
    gpu = next(r for r in found["sites"] if r["site"] == "gpu-park")
    assert gpu["energy_kwh"] == 900_000 and gpu["tariff_paid_minor"] == 900_000 * 7
    assert gpu["mined_sats"] is None and gpu["payouts"] is None
    assert gpu["revenue_per_mwh_minor"] is None and gpu["expected_sats"] is None
    assert ("reading_without_payout", "gpu-park") not in kinds(found)


# -- signed, checked in, verified ---------------------------------------------------------
def published_statement(ledger: Ledger, movements: list[dict[str, Any]]) -> dict[str, Any]:
    statement_body = {
        "format": "reserve-public-statement/1", "period": {"start": iso(T0), "end": iso(END)},
        "blocks": {"start_height": 1, "end_height": 9},
        "consolidated": {"opening_sats": 0, "closing_sats": 0, "flows": []},
        "wallets": [], "commitments": [], "movements": movements}
    document = AUDITOR.sign(statement_body)
    check_in_statement(ledger, document, "auditor:auditor-general")
    return document


def test_a_signed_report_is_checked_in_and_verifies(three_hours: Ledger) -> None:
    statement = published_statement(three_hours, [
        movement("north-payout", 5, T0 + timedelta(minutes=30)),
        movement("north-payout", 7, T0 + timedelta(minutes=90))])
    price = Price.parse("97250.00", "USD", "stated for the test")
    document, entry = publish.publish(three_hours, AUDITOR, statement, T0, END, price=price)
    event = EnergyReportPublished.of(entry)
    assert event.report_sha256 == document["signature"]["report_sha256"]
    assert event.statement_sha256 == statement["signature"]["report_sha256"]
    assert event.total["mined_sats"] == 12 and event.anomalies == []
    entries = list(three_hours.entries())
    again = publish.verify(document, [AUDITOR.verifier], statement, entries)
    assert again["total"]["mined_sats"] == 12

    edited = {**document, "report": {**document["report"], "total": {
        **document["report"]["total"], "mined_sats": 13}}}
    with pytest.raises(ReportRejected, match="edited after signing"):
        publish.verify(edited, [AUDITOR.verifier], statement, entries)
    resigned = AUDITOR.sign(edited["report"])
    with pytest.raises(ReportRejected, match="not published"):
        publish.verify(resigned, [AUDITOR.verifier], statement, entries)
    check_in_report = publish.check_in(three_hours, resigned, "auditor:auditor-general")
    with pytest.raises(ReportRejected, match="total: the report says"):
        publish.verify(resigned, [AUDITOR.verifier], statement,
                       [*entries, check_in_report])
    other = AuditorSigner("someone", Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32))
    with pytest.raises(ReportRejected, match="not an auditor key"):
        publish.verify(document, [other.verifier], statement, entries)


def test_a_statement_not_in_the_ledger_is_refused(three_hours: Ledger) -> None:
    unpublished = AUDITOR.sign({"format": "reserve-public-statement/1",
                                "period": {"start": iso(T0), "end": iso(END)},
                                "movements": []})
    before = three_hours.size()
    with pytest.raises(MiningError, match="not published in the ledger"):
        publish.publish(three_hours, AUDITOR, unpublished, T0, END)
    tampered = published_statement(three_hours, [])
    tampered["report"]["movements"] = [movement("north-payout", 5, T0)]
    size = three_hours.size()
    with pytest.raises(MiningError, match="edited after signing"):
        publish.publish(three_hours, AUDITOR, tampered, T0, END)
    with pytest.raises(MiningError, match="not a signed public-sector statement"):
        publish.publish(three_hours, AUDITOR, {"report": {}}, T0, END)
    assert three_hours.size() == size and size == before + 1
