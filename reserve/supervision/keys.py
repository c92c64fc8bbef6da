"""The regulator's and a supervisor's Ed25519 keys, at rest in the project's keystore.

Both sign offline: the regulator its licence changes (reserve.policy.licences), a supervisor
its attestations of reconciliation reports (reserve.supervision.attest). Their public keys
are note verifier keys (`name+hash+base64`), the form the ledger's checkpoint and the
auditor's keys already use, so one parser reads them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from reserve import keystore
from reserve.errors import KeystoreError
from reserve.ledger.checkpoint import VerifierKey


@dataclass(frozen=True)
class SigningKey:
    """A named Ed25519 key; `repr` never shows the key."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> VerifierKey:
        public = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifierKey(name=self.name, public_key=public)

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r})"


def _check_name(name: str) -> None:
    if not name or any(c in name for c in "+ \n"):
        raise KeystoreError(f"key name {name!r} must be one word without '+'")


def create_key(path: Path, name: str, passphrase: str, *, role: str,
               scrypt_n: int = keystore.SCRYPT_N_DEFAULT) -> SigningKey:
    """Generate a `role` ("regulator" or "supervisor") key, sealed at `path` (never
    overwrites)."""
    _check_name(name)
    key = SigningKey(name, Ed25519PrivateKey.generate())
    raw = key.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    keystore.write(path, keystore.seal(raw, kind="ed25519", label=f"{role} {name}",
                                       public=key.verifier.encode(), passphrase=passphrase,
                                       scrypt_n=scrypt_n))
    return key


def load_key(path: Path, passphrase: str, *, role: str) -> SigningKey:
    document = keystore.read(path)
    if document["kind"] != "ed25519" or not str(document.get("label", "")).startswith(
            f"{role} "):
        raise KeystoreError(f"{path} does not hold a {role} Ed25519 key")
    public = VerifierKey.parse(document["public"])
    key = SigningKey(public.name, Ed25519PrivateKey.from_private_bytes(
        keystore.unseal(document, passphrase)))
    if key.verifier != public:
        raise KeystoreError(f"{path}: key does not match its recorded public key")
    return key
