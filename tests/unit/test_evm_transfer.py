"""Approved transfers and the Safe transactions that carry them out."""

from __future__ import annotations

import pytest

from reserve.errors import EVMError, MismatchError
from wallets.evm.safe_tx import DELEGATE_CALL, SafeTx
from wallets.evm.transfer import (
    ETH,
    ApprovedEVMTransfer,
    describe,
    erc20_transfer_data,
    require_matches,
    to_safe_tx,
)

SAFE = "0x" + "5a" * 20
TOKEN = "0x" + "70" * 20
DEST = "0x" + "de" * 20


def transfer(asset: str = ETH, amount: int = 10**18, nonce: int = 3) -> ApprovedEVMTransfer:
    return ApprovedEVMTransfer(proposal_digest=b"\x01" * 32, policy_version=2,
                               vault_id="evm-reserve", chain_id=31337, safe_address=SAFE,
                               asset=asset, to=DEST, amount_wei=amount, nonce=nonce)


def test_eth_and_token_transfers_become_plain_calls() -> None:
    eth = to_safe_tx(transfer())
    assert (eth.value, eth.data, eth.nonce) == (10**18, b"", 3)
    assert describe(eth) == (ETH, transfer().to, 10**18)
    big = 2**200  # wei amounts beyond 2**53 stay exact
    token = to_safe_tx(transfer(asset=TOKEN, amount=big))
    assert token.value == 0 and token.data[:4].hex() == "a9059cbb"
    assert describe(token) == (transfer(asset=TOKEN).asset, transfer().to, big)
    require_matches(transfer(asset=TOKEN, amount=big), token)


def test_json_round_trip_uses_decimal_strings() -> None:
    document = transfer(amount=2**70).as_json()
    assert document["amount_wei"] == str(2**70)
    assert ApprovedEVMTransfer.from_json(document) == transfer(amount=2**70)


def test_mismatches_are_named() -> None:
    approved = transfer()
    with pytest.raises(MismatchError, match="amount_wei"):
        require_matches(approved, to_safe_tx(transfer(amount=1)))
    with pytest.raises(MismatchError, match="nonce"):
        require_matches(approved, to_safe_tx(transfer(nonce=4)))
    with pytest.raises(MismatchError, match="asset"):
        require_matches(approved, to_safe_tx(transfer(asset=TOKEN)))
    other_recipient = SafeTx.call("0x" + "ab" * 20, 10**18, b"", 3)
    with pytest.raises(MismatchError, match="recipient"):
        require_matches(approved, other_recipient)


def test_other_shapes_are_refused() -> None:
    base = to_safe_tx(transfer())
    with pytest.raises(EVMError, match="delegatecall"):
        describe(SafeTx(**{**base.__dict__, "operation": DELEGATE_CALL}))
    with pytest.raises(EVMError, match="gas refund"):
        describe(SafeTx(**{**base.__dict__, "gas_price": 1}))
    with pytest.raises(EVMError, match="neither"):
        describe(SafeTx.call(TOKEN, 0, b"\x09\x5e\xa7\xb3" + bytes(64), 3))
    with pytest.raises(EVMError, match="neither"):
        describe(SafeTx.call(TOKEN, 1, erc20_transfer_data(DEST, 1), 3))
    dirty = bytearray(erc20_transfer_data(DEST, 1))
    dirty[5] = 1
    with pytest.raises(EVMError, match="dirty"):
        describe(SafeTx.call(TOKEN, 0, bytes(dirty), 3))


@pytest.mark.parametrize("field,value,message", [
    ("amount_wei", 0, "positive"), ("amount_wei", -5, "positive"),
    ("amount_wei", 2**256, "positive"), ("to", "0x" + "00" * 20, "zero address"),
    ("proposal_digest", b"short", "32 bytes"), ("nonce", -1, "non-negative"),
    ("asset", "BTC", "not an EVM address"),
])
def test_bad_transfers_are_refused(field: str, value: object, message: str) -> None:
    fields = {**transfer().__dict__, field: value}
    with pytest.raises(EVMError, match=message):
        ApprovedEVMTransfer(**fields)
