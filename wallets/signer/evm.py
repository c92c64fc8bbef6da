"""Custodian EVM keys and Safe transaction signing, for the offline signing tool.

A custodian's EVM key lives in the project's encrypted keystore (kind "secp256k1", public
part = the address). `reserve-sign evm-sign` signs from a signing package: the release is
re-checked there (wallets/signer/package.py `check_evm`) and `sign_reviewed` signs the hash
it computed. `review`/`sign` of a bare signing request (the approved transfer, the Safe
transaction and its hash) remain as a library (the demo uses it): they check the
transaction against the request's approved transfer, which they must take as given. Either way the EIP-712 hash is the one
computed here for that chain and Safe; nothing is signed over a hash it did not compute.
Nothing here talks to a node.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32

from reserve import keystore, present
from reserve.errors import EVMError, MismatchError
from wallets.evm.keys import KIND
from wallets.evm.safe_tx import SafeTx, safe_tx_hash
from wallets.evm.signatures import SignatureShare
from wallets.evm.transfer import ETH, ApprovedEVMTransfer, describe, require_matches

REQUEST_FORMAT = "reserve-evm-signing-request/1"


def create_key(path: Path, *, label: str, passphrase: str, secret: bytes | None = None,
               scrypt_n: int = keystore.SCRYPT_N_DEFAULT) -> str:
    """Create (or import `secret`) an EVM key, store it encrypted at `path`; returns address."""
    private_key = secret if secret is not None else secrets.token_bytes(32)
    account: LocalAccount = Account.from_key(private_key)
    document = keystore.seal(bytes(account.key), kind=KIND, label=label,
                             public=account.address, passphrase=passphrase, scrypt_n=scrypt_n)
    keystore.write(Path(path), document)
    return str(account.address)


def key_address(path: Path) -> str:
    """The address of a keystore, without decrypting it."""
    return str(keystore.read(Path(path))["public"])


def signing_request(transfer: ApprovedEVMTransfer, tx: SafeTx) -> dict[str, Any]:
    """The JSON document the service gives custodians to sign."""
    return {"format": REQUEST_FORMAT, "transfer": transfer.as_json(), "safe_tx": tx.as_json(),
            "safe_tx_hash": "0x" + safe_tx_hash(transfer.chain_id, transfer.safe_address,
                                                tx).hex()}


def _amount(amount: int, asset: str) -> str:
    """'1.00 ETH (1,000,000,000,000,000,000 wei)', or a token's base units and contract."""
    if asset == ETH:
        return present.amount_words(amount, present.ETH)
    return f"{amount:,} base units of the token at {asset}"


@dataclass(frozen=True)
class Review:
    """What the custodian is about to sign, recomputed locally."""

    transfer: ApprovedEVMTransfer
    tx: SafeTx
    digest: bytes

    def summary(self) -> list[str]:
        asset, recipient, amount = describe(self.tx)
        return [f"vault {self.transfer.vault_id} (Safe {self.transfer.safe_address}) "
                f"on chain {self.transfer.chain_id}",
                f"send {_amount(amount, asset)} to {recipient}",
                f"proposal {self.transfer.proposal_digest.hex()} "
                f"(policy v{self.transfer.policy_version}), Safe nonce {self.tx.nonce}",
                f"Safe transaction hash 0x{self.digest.hex()}"]


def review(request: dict[str, Any]) -> Review:
    """Check a signing request independently of whoever produced it."""
    if not isinstance(request, dict) or request.get("format") != REQUEST_FORMAT:
        raise EVMError(f"not an EVM signing request (expected format {REQUEST_FORMAT})")
    transfer = ApprovedEVMTransfer.from_json(request.get("transfer", {}))
    tx = SafeTx.from_json(request.get("safe_tx", {}))
    require_matches(transfer, tx)
    digest = safe_tx_hash(transfer.chain_id, transfer.safe_address, tx)
    claimed = str(request.get("safe_tx_hash", ""))
    if claimed.lower() != "0x" + digest.hex():
        raise MismatchError("Safe transaction hash", "0x" + digest.hex(), claimed)
    return Review(transfer=transfer, tx=tx, digest=digest)


def sign(request: dict[str, Any], account: LocalAccount) -> SignatureShare:
    """Review the request, then sign its EIP-712 Safe transaction hash (v = 27/28)."""
    return sign_reviewed(review(request), account)


def sign_reviewed(checked: Review, account: LocalAccount) -> SignatureShare:
    """Sign the EIP-712 Safe transaction hash of a review this device computed (v = 27/28)."""
    signed = account.unsafe_sign_hash(Hash32(checked.digest))
    return SignatureShare(signer=account.address, signature=bytes(signed.signature))


def share_document(share: SignatureShare, digest: bytes) -> dict[str, str]:
    """The JSON a custodian returns to the service."""
    return {"safe_tx_hash": "0x" + digest.hex(), "signer": share.signer,
            "signature": "0x" + share.signature.hex()}
