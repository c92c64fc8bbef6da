"""Custodian-side approval signing: works offline, the approval key never leaves the device.

A custodian's approval key is an Ed25519 key (separate from any funds key) kept in the
project's encrypted keystore format (kind "ed25519"). Before signing, the tool parses the
proposal document itself, recomputes its digest and shows what it says (vault, network,
outputs, fee cap, expiry, policy version), so a custodian never signs a bare hash handed to
them; if they were also told a digest out of band, it must match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from reserve import keystore
from reserve.errors import ApprovalError, KeystoreError, ReserveError
from reserve.proposals import proposal as proposal_module
from reserve.proposals.approval import Approval, sign
from reserve.proposals.proposal import (
    DestinationBody,
    PolicyChangeBody,
    Proposal,
    TransferBody,
    format_time,
)

PASSPHRASE_ENV = "RESERVE_APPROVAL_PASSPHRASE"  # noqa: S105 (a variable name)
KEY_KIND = "ed25519"
LABEL_PREFIX = "approval-key:"
FILE_BYTES_MAX = 1024 * 1024


def _public_hex(private_key: Ed25519PrivateKey) -> str:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def seal_key(private_key: Ed25519PrivateKey, *, custodian: str, passphrase: str,
             scrypt_n: int = keystore.SCRYPT_N_DEFAULT) -> dict[str, Any]:
    """The keystore document of an approval key; its public key goes in the policy file."""
    secret = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return keystore.seal(secret, kind=KEY_KIND, label=LABEL_PREFIX + custodian,
                         public=_public_hex(private_key), passphrase=passphrase,
                         scrypt_n=scrypt_n)


def create_key(path: Path, *, custodian: str, passphrase: str,
               scrypt_n: int = keystore.SCRYPT_N_DEFAULT) -> str:
    """Generate a new approval key into an encrypted file; returns its public key (hex)."""
    document = seal_key(Ed25519PrivateKey.generate(), custodian=custodian,
                        passphrase=passphrase, scrypt_n=scrypt_n)
    keystore.write(Path(path), document)
    return str(document["public"])


def load_key(path: Path, passphrase: str) -> tuple[Ed25519PrivateKey, str]:
    """Decrypt an approval key file; returns (key, custodian id from its label)."""
    document = keystore.read(Path(path))
    if document["kind"] != KEY_KIND or not str(document["label"]).startswith(LABEL_PREFIX):
        raise KeystoreError(f"{path} is not an approval key (kind {document['kind']!r}, "
                            f"label {document['label']!r})")
    secret = keystore.unseal(document, passphrase)
    try:
        private_key = Ed25519PrivateKey.from_private_bytes(secret)
    except ValueError:
        raise KeystoreError(f"{path}: the sealed secret is not an Ed25519 key") from None
    if _public_hex(private_key) != document["public"]:
        raise KeystoreError(f"{path}: the public key in the header does not match the secret")
    return private_key, str(document["label"])[len(LABEL_PREFIX):]


def read_proposal(path: Path) -> Proposal:
    """A proposal from a file: the bare document, `reserve proposal show --json` output, or
    the API's proposal detail (what the dashboard's download gives)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ApprovalError(f"cannot read proposal file {path}: {error}") from None
    if len(data) > FILE_BYTES_MAX:
        raise ApprovalError(f"proposal file {path} is larger than {FILE_BYTES_MAX} bytes")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApprovalError(f"proposal file {path} is not JSON: {error}") from None
    # `reserve proposal show --json` nests it under "proposal", the API's GET
    # /api/proposals/{digest} (the dashboard's download) under "document".
    for key in ("proposal", "document"):
        if isinstance(value, dict) and isinstance(value.get(key), dict):
            value = value[key]
            break
    try:
        return proposal_module.from_document(value)
    except ReserveError as error:
        raise ApprovalError(f"proposal file {path}: {error}") from None


def describe(proposal: Proposal) -> str:
    """What the custodian is about to approve, in words to check before signing."""
    lines = [f"action      {proposal.action}",
             f"vault       {proposal.vault} on {proposal.network} ({proposal.chain})",
             f"policy      v{proposal.policy_version}",
             f"proposer    {proposal.proposer}",
             f"purpose     {proposal.purpose}",
             f"reference   {proposal.reference}",
             f"expires     {format_time(proposal.expires_at)}"]
    body = proposal.body
    if isinstance(body, TransferBody):
        lines += [f"pays        {o.amount} {body.asset} base units to {o.destination}"
                  for o in body.outputs]
        lines.append(f"total       {body.amount}; fee at most {body.fee_max}")
    elif isinstance(body, DestinationBody):
        lines.append(f"allowlist   {body.address} ({body.asset}) as {body.label!r}")
    elif isinstance(body, PolicyChangeBody):
        document = body.policy_document
        lines.append(f"new policy  {document.get('vault')} v{document.get('version')}")
    lines.append(f"digest      {proposal.digest_hex}")
    return "\n".join(lines)


def sign_proposal(proposal: Proposal, private_key: Ed25519PrivateKey, custodian: str, *,
                  decision: str = "approve", expected_digest: str | None = None) -> Approval:
    """Sign a vote over the digest recomputed here, never over a digest taken on trust."""
    if expected_digest is not None and expected_digest.lower() != proposal.digest_hex:
        raise ApprovalError(f"digest mismatch: expected {expected_digest.lower()}, the "
                            f"proposal file hashes to {proposal.digest_hex}; not signing")
    if custodian == proposal.proposer:
        raise ApprovalError(f"{custodian} proposed this and may not vote on it")
    return sign(private_key, proposal.digest, decision, custodian)


def sign_digest(private_key: Ed25519PrivateKey, custodian: str, digest_hex: str, *,
                decision: str = "approve") -> Approval:
    """Sign a vote over a bare digest, for automation that already checked the document.

    Prefer `sign_proposal`: a person should see what they approve, not just a hash.
    """
    try:
        digest = bytes.fromhex(digest_hex)
    except ValueError:
        raise ApprovalError(f"not a hex digest: {digest_hex!r}") from None
    return sign(private_key, digest, decision, custodian)
