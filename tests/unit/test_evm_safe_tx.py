"""EIP-712 Safe transaction hashes: a known mainnet vector and an independent reference."""

from __future__ import annotations

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.errors import EVMError
from wallets.evm.safe_tx import (
    DOMAIN_TYPEHASH,
    SAFE_TX_TYPEHASH,
    ZERO_ADDRESS,
    SafeTx,
    checksum,
    domain_separator,
    safe_tx_hash,
    struct_hash,
    typed_data,
)

# A real Safe transaction (Safe 0xf654...DA5d on Ethereum mainnet, nonce 434), whose hashes
# were shown by a hardware wallet and the Safe transaction service. Safe >= 1.3.0 (incl.
# 1.4.1) uses the same domain and SafeTx type.
VECTOR_SAFE = "0xf65475e74C1Ed6d004d5240b06E3088724dFDA5d"
VECTOR_TX = SafeTx(
    to="0xCe01C90dE7FD1bcFa39e237FE6D8D9F569e8A6a3", value=0,
    data=bytes.fromhex(
        "ac9650d8000000000000000000000000000000000000000000000000000000000000002000000000000000"
        "00000000000000000000000000000000000000000000000001000000000000000000000000000000000000"
        "00000000000000000000000000200000000000000000000000000000000000000000000000000000000000"
        "0000846c3dead4000000000000000000000000f65475e74c1ed6d004d5240b06e3088724dfda5d00000000"
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000002caaf1dd9f3a1ff60000000000000000000000000000000000000000000000000000000000"
        "00000000000100000000000000000000000000000000000000000000000000000000"),
    operation=0, safe_tx_gas=0, base_gas=0, gas_price=0, gas_token=ZERO_ADDRESS,
    refund_receiver=ZERO_ADDRESS, nonce=434)


def test_type_hashes_are_the_safe_constants() -> None:
    assert DOMAIN_TYPEHASH.hex() == \
        "47e79534a245952e8b16893a336b85a3d9ea9fa8c573f3d803afb92a79469218"
    assert SAFE_TX_TYPEHASH.hex() == \
        "bb8310d486368db6bd6f849402fdd73ad53d316b5a4b2644ad6efe0f941286d8"


def test_known_mainnet_vector() -> None:
    assert domain_separator(1, VECTOR_SAFE).hex() == \
        "af88393f1c14cf4d8f0b773c4f37cf80a29d606bed88e0fd8f61350debb3ac65"
    assert struct_hash(VECTOR_TX).hex() == \
        "4d51fb13b155063239c656f466a7d1810bfa863edb4f96aad775643d4afe3675"
    assert safe_tx_hash(1, VECTOR_SAFE, VECTOR_TX).hex() == \
        "57f5c1a8390932d29f5aa6e321a2e689c483a728fa5bccfc4ac7becb91239801"


def test_any_field_changes_the_hash() -> None:
    base = safe_tx_hash(1, VECTOR_SAFE, VECTOR_TX)
    assert safe_tx_hash(2, VECTOR_SAFE, VECTOR_TX) != base
    assert safe_tx_hash(1, "0x" + "11" * 20, VECTOR_TX) != base
    changed = SafeTx(**{**VECTOR_TX.__dict__, "nonce": 435})
    assert safe_tx_hash(1, VECTOR_SAFE, changed) != base


addresses = st.binary(min_size=20, max_size=20).map(lambda raw: checksum("0x" + raw.hex()))
uint256 = st.integers(min_value=0, max_value=2**256 - 1)


@settings(max_examples=60, deadline=None)
@given(chain_id=st.integers(min_value=1, max_value=2**64), safe=addresses, to=addresses,
       value=uint256, data=st.binary(max_size=200), operation=st.sampled_from([0, 1]),
       gas=st.tuples(uint256, uint256, uint256), gas_token=addresses, refund=addresses,
       nonce=uint256)
def test_matches_eth_account_typed_data(chain_id: int, safe: str, to: str, value: int,
                                        data: bytes, operation: int,
                                        gas: tuple[int, int, int], gas_token: str, refund: str,
                                        nonce: int) -> None:
    """Our hand-written encoding equals eth_account's generic EIP-712 implementation."""
    tx = SafeTx(to=to, value=value, data=data, operation=operation, safe_tx_gas=gas[0],
                base_gas=gas[1], gas_price=gas[2], gas_token=gas_token,
                refund_receiver=refund, nonce=nonce)
    signable = encode_typed_data(full_message=typed_data(chain_id, safe, tx))
    reference = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert safe_tx_hash(chain_id, safe, tx) == reference


def test_json_round_trip_keeps_uint256_as_strings() -> None:
    document = VECTOR_TX.as_json()
    assert document["nonce"] == "434" and isinstance(document["value"], str)
    assert SafeTx.from_json(document) == VECTOR_TX


@pytest.mark.parametrize("bad", ["0x123", "c2bb5483d5d4fcb37b898d9db68ea843e025ae10",
                                 "0xZZbb5483d5d4fcb37b898d9db68ea843e025ae10",
                                 "0xC2bb5483D5D4fCB37B898d9DB68ea843e025aE10"])
def test_bad_addresses_are_refused(bad: str) -> None:
    with pytest.raises(EVMError):
        checksum(bad)


def test_bad_fields_are_refused() -> None:
    with pytest.raises(EVMError, match="uint256"):
        SafeTx.call(VECTOR_SAFE, -1, b"", 0)
    with pytest.raises(EVMError, match="uint256"):
        SafeTx.call(VECTOR_SAFE, 2**256, b"", 0)
    with pytest.raises(EVMError, match="operation"):
        SafeTx(**{**VECTOR_TX.__dict__, "operation": 2})
    with pytest.raises(EVMError, match="chain id"):
        domain_separator(0, VECTOR_SAFE)
    with pytest.raises(EVMError, match="malformed"):
        SafeTx.from_json({"to": VECTOR_SAFE})
