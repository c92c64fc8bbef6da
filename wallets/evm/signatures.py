"""Owner signatures on a Safe transaction hash: recover, check, order, pack. Pure.

Every check the Safe would make on chain is made here first, so a bad signature is refused
with a clear reason before any gas is spent: each signature must be a canonical ECDSA
signature over exactly this `safe_tx_hash`, recover to the custodian who claims it, that
custodian must be an owner, no owner counts twice, and there must be at least `threshold`.
The Safe then requires them sorted by owner address, ascending, and concatenated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

from reserve.errors import EVMError
from wallets.evm.safe_tx import checksum

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SIGNATURE_LENGTH = 65


@dataclass(frozen=True)
class SignatureShare:
    """One custodian's signature (r || s || v, v in {27, 28}) and the address they claim."""

    signer: str
    signature: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "signer", checksum(self.signer, "signer"))
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_LENGTH:
            raise EVMError(f"signature must be {SIGNATURE_LENGTH} bytes")


def recover_signer(message_hash: bytes, signature: bytes) -> str:
    """The address whose key made `signature` over `message_hash` (raw ECDSA, no prefix).

    Refuses eth_sign-style (v > 30), contract (v = 0) and approved-hash (v = 1) signatures:
    custodians sign the EIP-712 hash directly. High-s signatures are refused as
    non-canonical.
    """
    if len(message_hash) != 32:
        raise EVMError("message hash must be 32 bytes")
    if len(signature) != SIGNATURE_LENGTH:
        raise EVMError(f"signature must be {SIGNATURE_LENGTH} bytes, got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise EVMError(f"unsupported signature type v={v}: expected an ECDSA signature "
                       "over the EIP-712 hash (v = 27 or 28)")
    if not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        raise EVMError("non-canonical ECDSA signature (r or s out of range)")
    try:
        public = Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(
            message_hash)
    except (BadSignature, ValidationError) as error:
        raise EVMError(f"signature does not recover: {error}") from None
    return str(public.to_checksum_address())


def check_share(message_hash: bytes, share: SignatureShare, owners: Sequence[str]) -> str:
    """The owner who made `share`, or EVMError saying why it is refused."""
    recovered = recover_signer(message_hash, share.signature)
    if recovered != share.signer:
        raise EVMError(
            f"signature claimed by {share.signer} is not over Safe transaction hash "
            f"0x{message_hash.hex()} (it recovers to {recovered}): signed a different "
            "transaction?")
    owner_set = {checksum(owner) for owner in owners}
    if recovered not in owner_set:
        raise EVMError(f"signer {recovered} is not an owner of this Safe")
    return recovered


def pack_signatures(message_hash: bytes, shares: Iterable[SignatureShare],
                    owners: Sequence[str], threshold: int) -> bytes:
    """Check every share and return the signatures in the order Safe requires.

    Requires 1 <= threshold <= len(owners). Refuses a repeated owner and fewer than
    `threshold` distinct owners.
    """
    if not 1 <= threshold <= len(owners):
        raise EVMError(f"threshold {threshold} out of range for {len(owners)} owners")
    by_owner: dict[str, bytes] = {}
    for share in shares:
        owner = check_share(message_hash, share, owners)
        if owner in by_owner:
            raise EVMError(f"owner {owner} signed more than once")
        by_owner[owner] = share.signature
    if len(by_owner) < threshold:
        raise EVMError(f"too few signatures: {len(by_owner)} of {threshold} required "
                       f"(need {threshold - len(by_owner)} more)")
    # Safe walks signatures expecting strictly increasing owner addresses (as uint160).
    ordered = sorted(by_owner, key=lambda address: int(address, 16))
    return b"".join(by_owner[owner] for owner in ordered)
