"""The custodian's EVM key and Safe transaction signing: offline, checked before signing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reserve.errors import EVMError, KeystoreError, MismatchError
from wallets.evm import testkeys
from wallets.evm.keys import load_account
from wallets.evm.safe_tx import SafeTx
from wallets.evm.signatures import recover_signer
from wallets.evm.transfer import ETH, ApprovedEVMTransfer, to_safe_tx
from wallets.signer import evm as signer

PASSPHRASE = "correct horse battery staple"
FAST = 2**12


def transfer(amount: int = 10**18) -> ApprovedEVMTransfer:
    return ApprovedEVMTransfer(proposal_digest=b"\x07" * 32, policy_version=1,
                               vault_id="evm-reserve", chain_id=31337,
                               safe_address="0x" + "5a" * 20, asset=ETH, to="0x" + "de" * 20,
                               amount_wei=amount, nonce=0)


def test_key_round_trip_and_signature(tmp_path: Path) -> None:
    path = tmp_path / "custodian.json"
    address = signer.create_key(path, label="central bank", passphrase=PASSPHRASE,
                                secret=testkeys.custodian_private_key(2), scrypt_n=FAST)
    assert address == testkeys.custodian_account(2).address
    assert signer.key_address(path) == address
    assert PASSPHRASE not in path.read_text()
    assert testkeys.custodian_private_key(2).hex() not in path.read_text()
    account = load_account(path, PASSPHRASE)
    request = signer.signing_request(transfer(), to_safe_tx(transfer()))
    json.dumps(request)  # the request travels as JSON
    share = signer.sign(request, account)
    review = signer.review(request)
    assert recover_signer(review.digest, share.signature) == address
    assert any("send 1.00 ETH (1,000,000,000,000,000,000 wei)" in line
               for line in review.summary())
    document = signer.share_document(share, review.digest)
    assert document["signer"] == address


def test_wrong_passphrase_and_wrong_kind(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    signer.create_key(path, label="x", passphrase=PASSPHRASE, scrypt_n=FAST)
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        load_account(path, "not the passphrase")
    from reserve import keystore

    other = tmp_path / "ed.json"
    keystore.write(other, keystore.seal(b"\x01" * 32, kind="ed25519", label="x", public="p",
                                        passphrase=PASSPHRASE, scrypt_n=FAST))
    with pytest.raises(KeystoreError, match="not an EVM"):
        load_account(other, PASSPHRASE)


def test_tampered_requests_are_not_signed() -> None:
    account = testkeys.custodian_account(1)
    request = signer.signing_request(transfer(), to_safe_tx(transfer()))
    swapped = {**request, "safe_tx": to_safe_tx(transfer(amount=5 * 10**18)).as_json()}
    with pytest.raises(MismatchError, match="amount_wei"):
        signer.sign(swapped, account)
    lying_hash = {**request, "safe_tx_hash": "0x" + "00" * 32}
    with pytest.raises(MismatchError, match="Safe transaction hash"):
        signer.sign(lying_hash, account)
    other_target = {**request, "safe_tx": SafeTx.call("0x" + "ab" * 20, 10**18, b"",
                                                      0).as_json()}
    with pytest.raises(MismatchError, match="recipient"):
        signer.sign(other_target, account)
    with pytest.raises(EVMError, match="not an EVM signing request"):
        signer.sign({"format": "something else"}, account)
