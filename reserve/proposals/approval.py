"""Approvals and rejections: Ed25519 signatures by a custodian's approval key.

The signed message is a domain-separation prefix, the decision, and the proposal digest.
The prefix keeps these signatures from ever being valid for anything else a key might sign
(ledger checkpoints, other protocols); the decision inside the message keeps an approval from
being replayed as a rejection or the other way round; the digest binds proposal, vault,
network, chain and policy version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from reserve.errors import ApprovalError

DOMAIN = b"reserve/approval/v1\x00"
FORMAT = "reserve-approval/1"
DECISIONS = ("approve", "reject")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")


def signing_message(digest: bytes, decision: str) -> bytes:
    """Requires a 32-byte digest and a decision in DECISIONS."""
    if decision not in DECISIONS:
        raise ApprovalError(f"unknown decision {decision!r}; expected one of {DECISIONS}")
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise ApprovalError("a proposal digest is 32 bytes")
    return DOMAIN + decision.encode("ascii") + b"\x00" + digest


@dataclass(frozen=True)
class Approval:
    """One custodian's signed vote on one proposal; `recorded_at` is set from the ledger."""

    proposal_digest: bytes
    custodian: str
    decision: str
    signature: bytes
    recorded_at: datetime | None = None

    def __post_init__(self) -> None:
        signing_message(self.proposal_digest, self.decision)
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise ApprovalError("an Ed25519 signature is 64 bytes")
        if not isinstance(self.custodian, str) or not 0 < len(self.custodian) <= 64:
            raise ApprovalError(f"bad custodian id {self.custodian!r}")

    def verifies(self, public_key: bytes) -> bool:
        """True when the signature is by `public_key` over this digest and decision."""
        return _verifies(bytes(public_key), bytes(self.signature),
                         signing_message(self.proposal_digest, self.decision))

    def document(self) -> dict[str, Any]:
        return {"format": FORMAT, "proposal_digest": self.proposal_digest.hex(),
                "custodian": self.custodian, "decision": self.decision,
                "signature": self.signature.hex()}


VERIFIED_MAX = 4096  # signature checks remembered (every read of a proposal re-checks its votes)


@lru_cache(maxsize=VERIFIED_MAX)
def _verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Ed25519 verification, memoised on the exact bytes of key, signature and message (a
    pure function: the same three always give the same answer)."""
    try:
        _public_key(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@lru_cache(maxsize=256)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    """The loaded key of a custodian (a policy names few): loading it cost as much as half
    a verification. Raises ValueError for bytes that are not a key (not remembered)."""
    return Ed25519PublicKey.from_public_bytes(raw)


def sign(private_key: Ed25519PrivateKey, digest: bytes, decision: str,
         custodian: str) -> Approval:
    """Sign a vote; done offline on the custodian's own device."""
    signature = private_key.sign(signing_message(digest, decision))
    return Approval(proposal_digest=digest, custodian=custodian, decision=decision,
                    signature=signature)


def from_document(document: Any) -> Approval:
    """Parse an approval file (as written by `reserve-sign approval sign`)."""
    if not isinstance(document, dict):
        raise ApprovalError("an approval must be a JSON object")
    if document.get("format") != FORMAT:
        raise ApprovalError(f"not an approval of format {FORMAT}: {document.get('format')!r}")
    digest, signature = document.get("proposal_digest"), document.get("signature")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise ApprovalError("approval: proposal_digest must be 64 lowercase hex characters")
    if not isinstance(signature, str) or not _HEX128.match(signature):
        raise ApprovalError("approval: signature must be 128 lowercase hex characters")
    return Approval(proposal_digest=bytes.fromhex(digest),
                    custodian=str(document.get("custodian", "")),
                    decision=str(document.get("decision", "")),
                    signature=bytes.fromhex(signature))
