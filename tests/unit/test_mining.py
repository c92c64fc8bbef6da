"""The allocation, its sites and signed energy readings (docs/mining.md): pure checks on
an in-memory ledger. Each refusal is a clear MiningError and writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from reserve.errors import MiningError, MiningNotFound
from reserve.events.registry import decode
from reserve.events.transparency import WalletRegistered
from reserve.ledger import Ledger
from reserve.ledger.checkpoint import VerifierKey
from reserve.mining import readings, record, report, sites

METER_KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
T0 = datetime(2026, 1, 5, tzinfo=UTC)


def verifier(private: Ed25519PrivateKey, name: str = "grid-meters") -> str:
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return VerifierKey(name=name, public_key=raw).encode()


def site(name: str = "north-mine", capacity_kw: int = 1_200_000, kind: str = "mining",
         meter: str = "MTR-001", key: str | None = None,
         wallets: tuple[str, ...] = ("north-payout",)) -> sites.Site:
    return sites.Site(site=name, operator="North Mining Ltd", kind=kind,
                      capacity_kw=capacity_kw, meter=meter,
                      meter_key=verifier(METER_KEY) if key is None else key,
                      tariff_minor_per_kwh=7, currency="USD",
                      payout_wallets=wallets if kind == "mining" else ())


def register_wallet(ledger: Ledger, name: str) -> None:
    event = WalletRegistered(name=name, institution="Treasury", role="mining payout",
                             custody="watched", chain="bitcoin", network="regtest",
                             descriptors=[f"addr(bcrt1q{name})"], range_end=0,
                             birth_height=0)
    ledger.append(event.KIND, "operator", event.to_payload())


@pytest.fixture()
def allocated(ledger: Ledger) -> Ledger:
    return allocate(ledger)


def allocate(ledger: Ledger) -> Ledger:
    """The phase-one allocation with the north site (payout wallet north-payout)."""
    register_wallet(ledger, "north-payout")
    record.set_allocation(ledger, sites.Allocation("phase-one", sites.PHASE_ONE_KW),
                          actor="operator")
    record.register_site(ledger, site(), actor="operator")
    return ledger


def reading(start: datetime = T0, hours: int = 1, kwh: int = 1_000_000,
            key: Ed25519PrivateKey = METER_KEY, name: str = "grid-meters",
            site_name: str = "north-mine", meter: str = "MTR-001") -> readings.Reading:
    return readings.sign_reading(key, name, site=site_name, meter=meter, period_start=start,
                                 period_end=start + timedelta(hours=hours), energy_kwh=kwh)


def refused(ledger: Ledger, action: object, match: str,
            error: type[Exception] = MiningError) -> None:
    before = ledger.size()
    with pytest.raises(error, match=match):
        action()  # type: ignore[operator]
    assert ledger.size() == before


# -- the allocation and its sites --------------------------------------------------------
def test_sites_share_the_allocation_and_are_read_back(allocated: Ledger) -> None:
    record.register_site(allocated, site("gpu-park", 800_000, kind="ai", meter="MTR-002"),
                         actor="operator")
    shown = sites.registry(allocated.entries())
    assert shown.allocated_kw == 2_000_000
    assert shown.to_json()["by_kind"] == {"mining": 1_200_000, "ai": 800_000}
    assert shown.to_json()["free_kw"] == 0
    assert [s.site for s in shown.sites] == ["north-mine", "gpu-park"]
    assert shown.site("north-mine") == site()
    for entry in allocated.entries():
        decode(entry.kind, entry.payload)  # every entry is a well-formed typed event


def test_allocating_above_the_ceiling_is_refused(allocated: Ledger) -> None:
    refused(allocated, lambda: record.register_site(
        allocated, site("gpu-park", 800_001, kind="ai", meter="MTR-002"), actor="operator"),
        r"2,000,001 kW, above the allocation's ceiling of 2,000,000 kW \(800,000 kW free\)")


def test_a_ceiling_below_the_allocated_capacity_is_refused(allocated: Ledger) -> None:
    refused(allocated, lambda: record.set_allocation(
        allocated, sites.Allocation("phase-one", 1_000_000), actor="operator"),
        "below the 1,200,000 kW already allocated")


def test_a_site_without_an_allocation_is_refused(ledger: Ledger) -> None:
    register_wallet(ledger, "north-payout")
    refused(ledger, lambda: record.register_site(ledger, site(), actor="operator"),
            "no allocation is set")


def test_a_duplicate_site_or_meter_is_refused(allocated: Ledger) -> None:
    refused(allocated, lambda: record.register_site(allocated, site(capacity_kw=1),
                                                    actor="operator"),
            "site 'north-mine' is registered already")
    refused(allocated, lambda: record.register_site(
        allocated, site("south-mine", 1, kind="ai"), actor="operator"),
        "meter MTR-001 is registered already for site 'north-mine'")


def test_an_unknown_payout_wallet_is_refused(allocated: Ledger) -> None:
    refused(allocated, lambda: record.register_site(
        allocated, site("south-mine", 1, meter="MTR-009", wallets=("nowhere",)),
        actor="operator"), "payout wallet 'nowhere' is not a registered public-sector wallet")


@pytest.mark.parametrize(("change", "match"), [
    ({"key": ""}, "no meter key"),
    ({"key": "not-a-key"}, "not an Ed25519 verifier key"),
    ({"capacity_kw": 0}, "capacity"),
    ({"kind": "hydro"}, "kind must be one of mining, ai"),
    ({"wallets": ()}, "names 1..20 payout wallets"),
    ({"name": "North Mine"}, "site name"),
    ({"meter": "bad meter"}, "meter id"),
])
def test_a_malformed_site_is_refused(change: dict[str, object], match: str) -> None:
    with pytest.raises(MiningError, match=match):
        site(**change)  # type: ignore[arg-type]


def test_tariffs_and_capacities_are_integers() -> None:
    with pytest.raises(MiningError, match="tariff"):
        sites.Site(site="x", operator="o", kind="ai", capacity_kw=1, meter="M",
                   meter_key=verifier(METER_KEY), tariff_minor_per_kwh=7.5,  # type: ignore
                   currency="USD")
    with pytest.raises(MiningError, match="ceiling"):
        sites.Allocation("phase-one", True)


# -- signed readings ----------------------------------------------------------------------
def test_a_signed_reading_is_recorded(allocated: Ledger) -> None:
    signed = reading()
    document = signed.document()
    assert document["format"] == "reserve-energy-reading/1"
    assert document["period_start"] == "2026-01-05T00:00:00Z"
    entry = record.submit_reading(allocated, readings.reading_from_document(document),
                                  actor="operator")
    assert entry.kind == "energy.reading" and entry.payload["energy_kwh"] == 1_000_000
    assert readings.recorded(allocated.entries()) == [signed]
    # the next hour, back to back, is fine
    record.submit_reading(allocated, reading(T0 + timedelta(hours=1)), actor="operator")


def test_a_forged_reading_is_refused(allocated: Ledger) -> None:
    document = {**reading(kwh=10).document(), "energy_kwh": 900_000}  # edited after signing
    forged = readings.reading_from_document(document)
    refused(allocated, lambda: record.submit_reading(allocated, forged, actor="operator"),
            "does not verify with grid-meters's key")
    garbage = readings.reading_from_document({**document, "signature": "!!"})
    refused(allocated, lambda: record.submit_reading(allocated, garbage, actor="operator"),
            "not base64")
    unsigned = readings.reading_from_document({**document, "signature": ""})
    refused(allocated, lambda: record.submit_reading(allocated, unsigned, actor="operator"),
            "carries no meter signature")


def test_a_reading_signed_with_another_key_is_refused(allocated: Ledger) -> None:
    other = reading(key=OTHER_KEY, name="someone")
    refused(allocated, lambda: record.submit_reading(allocated, other, actor="operator"),
            "not the site's registered meter key")
    # the other key's signature under the registered key's name: does not verify
    borrowed = readings.Reading(**{**reading(key=OTHER_KEY).__dict__,
                                   "meter_key": verifier(METER_KEY)})
    refused(allocated, lambda: record.submit_reading(allocated, borrowed, actor="operator"),
            "does not verify")


def test_duplicate_and_overlapping_periods_are_refused(allocated: Ledger) -> None:
    record.submit_reading(allocated, reading(hours=2, kwh=5), actor="operator")
    refused(allocated, lambda: record.submit_reading(allocated, reading(hours=2, kwh=5),
                                                     actor="operator"), "duplicate period")
    refused(allocated, lambda: record.submit_reading(
        allocated, reading(T0 + timedelta(hours=1), kwh=5), actor="operator"),
        "overlaps the recorded 2026-01-05T00:00:00Z .. 2026-01-05T02:00:00Z")
    refused(allocated, lambda: record.submit_reading(
        allocated, reading(T0 - timedelta(minutes=30), kwh=5), actor="operator"), "overlaps")


def test_consumption_above_capacity_is_refused(allocated: Ledger) -> None:
    refused(allocated, lambda: record.submit_reading(allocated, reading(kwh=1_200_001),
                                                     actor="operator"),
            r"1,200,001 kWh in 3,600 s is more than its 1,200,000 kW could draw")
    record.submit_reading(allocated, reading(kwh=1_200_000), actor="operator")


def test_an_unknown_site_or_meter_is_refused(allocated: Ledger) -> None:
    refused(allocated, lambda: record.submit_reading(
        allocated, reading(site_name="atlantis"), actor="operator"),
        "no site 'atlantis' is registered", MiningNotFound)
    refused(allocated, lambda: record.submit_reading(
        allocated, reading(meter="MTR-404"), actor="operator"), "names meter MTR-404")


@pytest.mark.parametrize(("change", "match"), [
    ({"period_end": "2026-01-05T00:00:00Z"}, "at or before it starts"),
    ({"period_end": "2026-01-04T23:00:00Z"}, "at or before it starts"),
    ({"period_start": "2026-01-05 00:00"}, "must be a UTC time"),
    ({"period_start": "2026-02-30T00:00:00Z"}, "not a valid time"),
    ({"energy_kwh": -1}, "energy_kwh must be an integer"),
    ({"energy_kwh": 1.5}, "energy_kwh must be an integer"),
    ({"format": "reserve-licence-change/1"}, "not an energy reading"),
    ({"extra": 1}, "unknown field 'extra'"),
])
def test_a_malformed_reading_document_is_refused(change: dict[str, object],
                                                 match: str) -> None:
    with pytest.raises(MiningError, match=match):
        readings.reading_from_document({**reading().document(), **change})


def test_signing_refuses_an_empty_period() -> None:
    with pytest.raises(MiningError, match="at or before it starts"):
        reading(hours=0)


# -- the capacity arithmetic -------------------------------------------------------------
@given(capacity_kw=st.integers(1, sites.CEILING_KW_MAX), seconds=st.integers(1, 10**8),
       kwh=st.integers(0, 10**15))
def test_capacity_check_is_exact_integer_arithmetic(capacity_kw: int, seconds: int,
                                                    kwh: int) -> None:
    from fractions import Fraction

    exact = Fraction(kwh) <= Fraction(capacity_kw * seconds, 3600)
    assert readings.within_capacity(kwh, capacity_kw, seconds) is exact


@given(capacity_kw=st.integers(1, sites.CEILING_KW_MAX), hours=st.integers(1, 24 * 366))
def test_full_capacity_fits_and_one_more_kwh_does_not(capacity_kw: int, hours: int) -> None:
    seconds = hours * 3600
    assert readings.within_capacity(capacity_kw * hours, capacity_kw, seconds)
    assert not readings.within_capacity(capacity_kw * hours + 1, capacity_kw, seconds)


@given(start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1)),
       seconds=st.integers(1, 10**7))
def test_seconds_between_counts_whole_seconds(start: datetime, seconds: int) -> None:
    start = start.replace(microsecond=0, tzinfo=UTC)
    assert readings.seconds_between(start, start + timedelta(seconds=seconds)) == seconds


# -- the energy report ---------------------------------------------------------------------
def test_a_payout_wallet_belongs_to_one_site(allocated: Ledger) -> None:
    refused(allocated, lambda: record.register_site(
        allocated, site("south-mine", 1, meter="MTR-009"), actor="operator"),
        "'north-payout' is already the payout wallet of site 'north-mine'")


@given(kwh=st.integers(0, 10**15))
def test_mwh_is_shown_from_kwh_without_floats(kwh: int) -> None:
    text = report.mwh_text(kwh)
    assert text.endswith(" MWh")
    whole, part = text[:-4].replace(",", "").split(".")
    assert int(whole) * 1000 + int(part) == kwh and len(part) == 3


def test_mwh_examples() -> None:
    assert report.mwh_text(12_345) == "12.345 MWh"
    assert report.mwh_text(7) == "0.007 MWh"
    assert report.mwh_text(2_000_000_000) == "2,000,000.000 MWh"


@given(capacity_kw=st.integers(1, 10**8), seconds=st.integers(1, 10**8),
       share=st.integers(0, 10_000))
def test_utilisation_is_floor_basis_points(capacity_kw: int, seconds: int,
                                           share: int) -> None:
    from fractions import Fraction

    energy = capacity_kw * seconds * share // (3600 * 10_000)
    one = site(capacity_kw=capacity_kw)
    start = T0
    end = T0 + timedelta(seconds=seconds)
    reads = [readings.Reading("north-mine", "MTR-001", start, end, energy, "", "")]
    figures = report.site_figures(one, reads, 0, start, end)
    exact = Fraction(energy * 10_000 * 3600, capacity_kw * seconds)
    assert figures["utilisation_bp"] == exact.numerator // exact.denominator
    assert figures["utilisation_bp"] <= share
    assert figures["allocated_kwh"] == capacity_kw * seconds // 3600


@given(mined=st.integers(0, 21 * 10**14), kwh=st.integers(1, 10**12))
def test_sats_per_mwh_is_floor_division(mined: int, kwh: int) -> None:
    start, end = T0, T0 + timedelta(days=365 * 100)
    reads = [readings.Reading("north-mine", "MTR-001", start, end, kwh, "", "")]
    figures = report.site_figures(site(), reads, mined, start, end)
    assert figures["sats_per_mwh"] == (mined * 1000) // kwh
    assert figures["sats_per_mwh"] * kwh <= mined * 1000 < (figures["sats_per_mwh"] + 1) * kwh


def statement(movements: list[dict[str, object]], start: str = "2026-01-05T00:00:00+00:00",
              end: str = "2026-01-06T00:00:00+00:00") -> dict[str, object]:
    return {"period": {"start": start, "end": end}, "blocks": {"start_height": 1},
            "movements": movements}


def test_the_report_attributes_coinbase_movements_to_sites(allocated: Ledger) -> None:
    register_wallet(allocated, "south-payout")
    record.register_site(allocated, site("south-mine", 300_000, meter="MTR-003",
                                         wallets=("south-payout",)), actor="operator")
    record.register_site(allocated, site("gpu-park", 500_000, kind="ai", meter="MTR-002"),
                         actor="operator")
    for hour in range(24):
        record.submit_reading(allocated, reading(T0 + timedelta(hours=hour), kwh=600_000),
                              actor="operator")
    record.submit_reading(allocated, reading(T0 + timedelta(hours=24), kwh=1),  # next day
                          actor="operator")
    movements = [
        {"txid": "a", "wallet": "north-payout", "class": "mining", "sats": 5_000_000_000},
        {"txid": "b", "wallet": "north-payout", "class": "mining", "sats": 2_500_000_000},
        {"txid": "c", "wallet": "north-payout", "class": "purchase", "sats": 99},
        {"txid": "d", "wallet": "south-payout", "class": "mining", "sats": 1_000},
        {"txid": "e", "wallet": "treasury", "class": "mining", "sats": 7}]
    entries = record.relevant(allocated)
    built = report.build_report(sites.registry(entries), readings.recorded(entries),
                                statement(movements), T0, T0 + timedelta(days=1))
    by_site = {row["site"]: row for row in built["sites"]}
    north = by_site["north-mine"]
    assert north["energy_kwh"] == 14_400_000 and north["energy_mwh"] == "14,400.000 MWh"
    assert north["allocated_kwh"] == 28_800_000 and north["utilisation_bp"] == 5_000
    assert north["mined_sats"] == 7_500_000_000
    assert north["sats_per_mwh"] == 7_500_000_000 * 1000 // 14_400_000
    assert north["readings"] == 24 and north["tariff_paid_minor"] == 14_400_000 * 7
    assert by_site["south-mine"]["mined_sats"] == 1_000
    assert by_site["south-mine"]["sats_per_mwh"] is None  # no reading: no energy
    assert by_site["gpu-park"]["mined_sats"] is None
    assert built["total"]["mined_sats"] == 7_500_001_000  # the mining flow into the sites
    wrong = statement(movements, end="2026-01-07T00:00:00+00:00")
    with pytest.raises(MiningError, match="the statement covers"):
        report.build_report(sites.registry(entries), [], wrong, T0, T0 + timedelta(days=1))


def test_a_straddling_reading_is_counted_apart(allocated: Ledger) -> None:
    record.submit_reading(allocated, reading(T0 - timedelta(hours=1), hours=2, kwh=10),
                          actor="operator")
    entries = record.relevant(allocated)
    row = report.site_figures(sites.registry(entries).sites[0], readings.recorded(entries),
                              0, T0, T0 + timedelta(days=1))
    assert row["energy_kwh"] == 0 and row["straddling_readings"] == 1


# -- changing and retiring a site ----------------------------------------------------------
def test_a_meter_key_rotation_binds_the_readings_after_it(allocated: Ledger) -> None:
    record.submit_reading(allocated, reading(T0), actor="operator")
    record.change_site(allocated, "north-mine", {"meter_key": verifier(OTHER_KEY)},
                       note="meter operator rotated its key", actor="operator")
    assert sites.registry(record.relevant(allocated)).site("north-mine").meter_key == \
        verifier(OTHER_KEY)
    refused(allocated, lambda: record.submit_reading(
        allocated, reading(T0 + timedelta(hours=1)), actor="operator"),
        "not the site's registered meter key")
    record.submit_reading(allocated, reading(T0 + timedelta(hours=1), key=OTHER_KEY),
                          actor="operator")
    assert len(readings.recorded(record.relevant(allocated))) == 2  # the first one stays


def test_a_change_keeps_every_check_of_a_new_site(allocated: Ledger) -> None:
    register_wallet(allocated, "south-payout")
    record.register_site(allocated, site("south-mine", 500_000, meter="MTR-003",
                                         wallets=("south-payout",)), actor="operator")
    for changes, match in (
            ({"capacity_kw": 1_500_001}, "above the allocation's ceiling"),
            ({"payout_wallets": ["south-payout"]}, "already the payout wallet of site"),
            ({"payout_wallets": ["nowhere"]}, "not a registered public-sector wallet"),
            ({"payout_wallets": "north-payout"}, "must be a list"),
            ({"meter": "MTR-9"}, "meter cannot be changed"),
            ({"kind": "ai"}, "kind cannot be changed"),
            ({"meter_key": "nonsense"}, "not an Ed25519 verifier key"),
            ({"tariff_minor_per_kwh": -1}, "tariff"),
            ({}, "nothing to change")):
        refused(allocated, lambda changes=changes: record.change_site(
            allocated, "north-mine", changes, note="test", actor="operator"), match)
    refused(allocated, lambda: record.change_site(
        allocated, "atlantis", {"capacity_kw": 1}, note="test", actor="operator"),
        "no site 'atlantis'")
    refused(allocated, lambda: record.change_site(
        allocated, "north-mine", {"capacity_kw": 1}, note="", actor="operator"),
        "give a note")
    record.change_site(allocated, "north-mine", {"capacity_kw": 1_500_000, "tariff_minor_per_kwh": 8},
                       note="grid upgrade", actor="operator")
    changed = sites.registry(record.relevant(allocated)).site("north-mine")
    assert (changed.capacity_kw, changed.tariff_minor_per_kwh) == (1_500_000, 8)


def test_a_retired_site_frees_its_capacity_and_takes_no_readings(allocated: Ledger) -> None:
    record.change_site(allocated, "north-mine", {}, retire=True, note="decommissioned",
                       actor="operator")
    current = sites.registry(record.relevant(allocated))
    assert current.allocated_kw == 0 and current.site("north-mine").retired
    refused(allocated, lambda: record.submit_reading(allocated, reading(T0),
                                                     actor="operator"),
            "site north-mine is retired")
    refused(allocated, lambda: record.change_site(
        allocated, "north-mine", {"capacity_kw": 1}, note="again", actor="operator"),
        "is retired")
    register_wallet(allocated, "new-payout")
    record.register_site(allocated, site("new-mine", 2_000_000, meter="MTR-010",
                                         wallets=("new-payout",)), actor="operator")
    for entry in allocated.entries():
        decode(entry.kind, entry.payload)


def test_the_statement_follows_a_sites_new_payout_wallets(allocated: Ledger) -> None:
    from reserve.statement.records import mining_sites

    register_wallet(allocated, "pool-payout")
    record.change_site(allocated, "north-mine", {"payout_wallets": ["pool-payout"]},
                       note="paid by a pool now", actor="operator")
    assert mining_sites(allocated.entries()) == [
        {"site": "north-mine", "payout_wallets": ["pool-payout"], "pool_payers": []}]
