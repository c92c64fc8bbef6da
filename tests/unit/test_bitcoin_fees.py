"""Fee rates, size estimates and exact amount conversion."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reserve.errors import PSBTError, WalletError
from wallets.bitcoin.fees import (
    dust_threshold,
    p2wsh_multisig_input_weight,
    rate_from_estimate,
    transaction_vsize,
)
from wallets.bitcoin.rpc import btc_to_sats, sats_to_btc


def test_rate_is_clamped_to_floor_and_ceiling() -> None:
    assert rate_from_estimate({"feerate": Decimal("0.00010000")}, 2, 50).msat_per_vb == 10_000
    assert rate_from_estimate({"feerate": Decimal("0.00001000")}, 2, 50).source == "floor"
    assert rate_from_estimate({"feerate": Decimal("0.01")}, 2, 50).msat_per_vb == 50_000
    assert rate_from_estimate({"errors": ["Insufficient data"]}, 3, 50).msat_per_vb == 3000
    assert rate_from_estimate({"feerate": 0.0001}, 3, 50).source == "floor"  # floats ignored
    with pytest.raises(PSBTError):
        rate_from_estimate({}, 10, 5)


def test_sizes_match_bitcoin_core_for_a_2_of_3_spend() -> None:
    # Core's analyzepsbt estimated 189 vB for 1 input, P2WPKH + P2WSH outputs; ours is an
    # upper bound with 73-byte signatures.
    vsize = transaction_vsize([p2wsh_multisig_input_weight(2, 3)], [22, 34])
    assert 189 <= vsize <= 191


def test_dust_thresholds() -> None:
    assert dust_threshold(bytes.fromhex("0014" + "00" * 20)) == 294
    assert dust_threshold(bytes.fromhex("0020" + "00" * 32)) == 330
    assert dust_threshold(bytes.fromhex("76a914" + "00" * 20 + "88ac")) == 546


@given(st.integers(-21_000_000 * 10**8, 21_000_000 * 10**8))
def test_sats_round_trip_exactly(sats: int) -> None:
    assert btc_to_sats(sats_to_btc(sats)) == sats
    assert btc_to_sats(Decimal(sats_to_btc(sats))) == sats


def test_floats_and_sub_satoshi_amounts_are_refused() -> None:
    with pytest.raises(WalletError, match="float"):
        btc_to_sats(0.1)  # type: ignore[arg-type]
    with pytest.raises(WalletError, match="whole number"):
        btc_to_sats(Decimal("0.000000001"))
    with pytest.raises(WalletError):
        sats_to_btc(True)
