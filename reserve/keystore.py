"""Encrypted keystore: one format for every secret this project holds at rest.

Ledger checkpoint keys, custodians' approval keys (Ed25519), Bitcoin xprvs and EVM keys all
live in a small JSON file: the secret is sealed with AES-256-GCM under a key derived from a
passphrase with scrypt. The header (kind, label, public part, KDF parameters) is bound to
the ciphertext as associated data, so editing any of it makes decryption fail instead of
silently yielding a different key. Secrets are never logged and never written in clear.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from reserve.errors import KeystoreError

FORMAT = "reserve-keystore/1"
KINDS = frozenset({"ed25519", "bip32-xprv", "secp256k1", "bip39-seed"})
SCRYPT_N_DEFAULT = 2**15
SCRYPT_N_MIN = 2**12  # tests may use a cheaper KDF; files below this are refused
PASSPHRASE_LENGTH_MIN = 8


@dataclass(frozen=True)
class KeystoreHeader:
    kind: str
    label: str
    public: str
    scrypt_n: int
    scrypt_r: int
    scrypt_p: int
    salt: bytes
    nonce: bytes

    def associated_data(self) -> bytes:
        fields = {
            "format": FORMAT,
            "kind": self.kind,
            "label": self.label,
            "public": self.public,
            "scrypt": [self.scrypt_n, self.scrypt_r, self.scrypt_p, self.salt.hex()],
            "nonce": self.nonce.hex(),
        }
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _derive(passphrase: str, header: KeystoreHeader) -> bytes:
    kdf = Scrypt(salt=header.salt, length=32, n=header.scrypt_n, r=header.scrypt_r,
                 p=header.scrypt_p)
    return kdf.derive(passphrase.encode("utf-8"))


def seal(secret: bytes, *, kind: str, label: str, public: str, passphrase: str,
         scrypt_n: int = SCRYPT_N_DEFAULT) -> dict[str, Any]:
    """Encrypt `secret` and return the keystore document (a JSON-ready dict).

    Requires kind in KINDS, a passphrase of at least PASSPHRASE_LENGTH_MIN characters and
    scrypt_n a power of two >= SCRYPT_N_MIN.
    """
    if kind not in KINDS:
        raise KeystoreError(f"unknown key kind {kind!r}; expected one of {sorted(KINDS)}")
    if len(passphrase) < PASSPHRASE_LENGTH_MIN:
        raise KeystoreError(f"passphrase too short: at least {PASSPHRASE_LENGTH_MIN} characters")
    if scrypt_n < SCRYPT_N_MIN or scrypt_n & (scrypt_n - 1):
        raise KeystoreError(f"scrypt N must be a power of two >= {SCRYPT_N_MIN}")
    header = KeystoreHeader(kind=kind, label=label, public=public, scrypt_n=scrypt_n,
                            scrypt_r=8, scrypt_p=1, salt=secrets.token_bytes(16),
                            nonce=secrets.token_bytes(12))
    ciphertext = AESGCM(_derive(passphrase, header)).encrypt(
        header.nonce, secret, header.associated_data())
    return {
        "format": FORMAT,
        "kind": kind,
        "label": label,
        "public": public,
        "scrypt": {"n": header.scrypt_n, "r": header.scrypt_r, "p": header.scrypt_p,
                   "salt": header.salt.hex()},
        "nonce": header.nonce.hex(),
        "ciphertext": ciphertext.hex(),
    }


def parse_header(document: dict[str, Any]) -> KeystoreHeader:
    """Validate a keystore document's shape and return its header."""
    try:
        if document["format"] != FORMAT:
            raise KeystoreError(f"not a keystore of format {FORMAT}: {document['format']!r}")
        kind = document["kind"]
        if kind not in KINDS:
            raise KeystoreError(f"unknown key kind {kind!r}")
        scrypt = document["scrypt"]
        header = KeystoreHeader(kind=kind, label=str(document["label"]),
                                public=str(document["public"]), scrypt_n=int(scrypt["n"]),
                                scrypt_r=int(scrypt["r"]), scrypt_p=int(scrypt["p"]),
                                salt=bytes.fromhex(scrypt["salt"]),
                                nonce=bytes.fromhex(document["nonce"]))
        bytes.fromhex(document["ciphertext"])
    except KeystoreError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise KeystoreError(f"malformed keystore: {error}") from None
    if header.scrypt_n < SCRYPT_N_MIN or header.scrypt_n > 2**22:
        raise KeystoreError(f"scrypt N out of range: {header.scrypt_n}")
    return header


def unseal(document: dict[str, Any], passphrase: str) -> bytes:
    """Decrypt a keystore document; a wrong passphrase or edited file raises KeystoreError."""
    header = parse_header(document)
    try:
        return AESGCM(_derive(passphrase, header)).decrypt(
            header.nonce, bytes.fromhex(document["ciphertext"]), header.associated_data())
    except InvalidTag:
        raise KeystoreError(
            f"cannot decrypt keystore {header.label!r}: wrong passphrase or file altered"
        ) from None


def write(path: Path, document: dict[str, Any]) -> None:
    """Write a keystore file readable by its owner only; never overwrite an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeystoreError(f"refusing to overwrite existing keystore {path}") from None
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def read(path: Path) -> dict[str, Any]:
    """Read and shape-check a keystore file."""
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KeystoreError(f"keystore not found: {path}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise KeystoreError(f"cannot read keystore {path}: {error}") from None
    if not isinstance(document, dict):
        raise KeystoreError(f"malformed keystore {path}: not a JSON object")
    parse_header(document)
    return document


def passphrase_from_env(variable: str, *, prompt: str | None = None) -> str:
    """The passphrase from environment variable `variable`, or prompted when it is unset."""
    value = os.environ.get(variable)
    if value:
        return value
    if prompt is None:
        raise KeystoreError(f"passphrase not given: set {variable}")
    import getpass

    return getpass.getpass(prompt)
