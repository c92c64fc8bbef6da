"""The ledger's checkpoint key: created once, kept encrypted at rest, public part exportable."""

from __future__ import annotations

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
from reserve.ledger.checkpoint import CheckpointSigner


def create_signer_file(path: Path, origin: str, passphrase: str, *,
                       scrypt_n: int = keystore.SCRYPT_N_DEFAULT) -> CheckpointSigner:
    """Generate an Ed25519 checkpoint key and store it encrypted at `path`."""
    private = Ed25519PrivateKey.generate()
    signer = CheckpointSigner(origin, private)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    document = keystore.seal(raw, kind="ed25519", label=f"ledger checkpoint key {origin}",
                             public=signer.verifier.encode(), passphrase=passphrase,
                             scrypt_n=scrypt_n)
    keystore.write(path, document)
    return signer


def load_signer_file(path: Path, origin: str, passphrase: str) -> CheckpointSigner:
    document = keystore.read(path)
    if document["kind"] != "ed25519":
        raise KeystoreError(f"{path} holds a {document['kind']} key, not an Ed25519 ledger key")
    private = Ed25519PrivateKey.from_private_bytes(keystore.unseal(document, passphrase))
    signer = CheckpointSigner(origin, private)
    if signer.verifier.encode() != document["public"]:
        raise KeystoreError(f"{path}: key does not match its recorded public key/origin")
    return signer


def load_or_create_signer(path: Path, origin: str, passphrase: str) -> CheckpointSigner:
    if Path(path).exists():
        return load_signer_file(path, origin, passphrase)
    return create_signer_file(path, origin, passphrase)


def public_key_text(signer: CheckpointSigner) -> str:
    """The verifier key line and the raw public key in PEM, for publication."""
    pem = signer._private_key.public_key().public_bytes(Encoding.PEM,
                                                        PublicFormat.SubjectPublicKeyInfo)
    return signer.verifier.encode() + "\n" + pem.decode()
