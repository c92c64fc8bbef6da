"""Owner signature checks and Safe ordering, without a node."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.errors import EVMError
from wallets.evm import testkeys
from wallets.evm.signatures import (
    SECP256K1_N,
    SignatureShare,
    check_share,
    pack_signatures,
    recover_signer,
)

DIGEST = bytes(range(32))
OTHER_DIGEST = bytes(range(1, 33))
KEYS = [testkeys.custodian_private_key(n) for n in range(1, 6)]
OWNERS = [Account.from_key(key).address for key in KEYS]


def share(key: bytes, digest: bytes = DIGEST) -> SignatureShare:
    signed = Account.unsafe_sign_hash(digest, key)
    return SignatureShare(Account.from_key(key).address, bytes(signed.signature))


SHARES = [share(key) for key in KEYS]  # deterministic (RFC 6979), computed once


def test_recover_gives_the_signer() -> None:
    for key, owner in zip(KEYS, OWNERS, strict=True):
        assert recover_signer(DIGEST, share(key).signature) == owner


@settings(max_examples=15, deadline=None)
@given(order=st.permutations(range(5)), count=st.integers(min_value=3, max_value=5))
def test_packed_signatures_are_sorted_by_owner_whatever_the_input_order(
        order: list[int], count: int) -> None:
    chosen = [SHARES[index] for index in order[:count]]
    packed = pack_signatures(DIGEST, chosen, OWNERS, 3)
    assert len(packed) == 65 * count
    signers = [recover_signer(DIGEST, packed[i:i + 65]) for i in range(0, len(packed), 65)]
    assert [int(a, 16) for a in signers] == sorted(int(a, 16) for a in signers)
    assert set(signers) == {OWNERS[index] for index in order[:count]}


def test_non_owner_is_refused() -> None:
    outsider = b"\x03" * 32
    with pytest.raises(EVMError, match="is not an owner"):
        pack_signatures(DIGEST, [share(KEYS[0]), share(KEYS[1]), share(outsider)], OWNERS, 3)


def test_signature_over_another_hash_is_refused() -> None:
    with pytest.raises(EVMError, match="signed a different transaction"):
        check_share(DIGEST, share(KEYS[0], OTHER_DIGEST), OWNERS)


def test_too_few_and_repeated_owners_are_refused() -> None:
    with pytest.raises(EVMError, match="too few signatures: 2 of 3 required"):
        pack_signatures(DIGEST, [share(KEYS[0]), share(KEYS[1])], OWNERS, 3)
    with pytest.raises(EVMError, match="signed more than once"):
        pack_signatures(DIGEST, [share(KEYS[0]), share(KEYS[0]), share(KEYS[1])], OWNERS, 3)
    with pytest.raises(EVMError, match="threshold"):
        pack_signatures(DIGEST, [], OWNERS, 6)


def test_non_canonical_and_foreign_signature_types_are_refused() -> None:
    good = share(KEYS[0]).signature
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    high_s = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    with pytest.raises(EVMError, match="non-canonical"):
        recover_signer(DIGEST, high_s)
    for bad_v in (0, 1, 31, 32):
        with pytest.raises(EVMError, match="unsupported signature type"):
            recover_signer(DIGEST, good[:64] + bytes([bad_v]))
    with pytest.raises(EVMError, match="65 bytes"):
        SignatureShare(OWNERS[0], good[:64])
    with pytest.raises(EVMError, match="32 bytes"):
        recover_signer(DIGEST[:31], good)
