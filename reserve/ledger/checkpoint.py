"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed-note envelopes, Ed25519.

A checkpoint commits to the ledger's Merkle tree at one size:

    <origin>
    <tree size>
    <base64 root hash>

    — <key name> <base64(key hash[4] || Ed25519 signature[64])>

The key hash is SHA-256(key name || 0x0A || 0x01 || public key)[:4] and the verifier key is
written `<name>+<hex key hash>+<base64(0x01 || public key)>`, as in the signed-note spec,
so third-party tools (Go's sumdb/note, transparency-dev) check these notes as they are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reserve.errors import CheckpointError

ALGORITHM_ED25519 = 0x01
NOTE_BYTES_MAX = 16384
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space start every signature line


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.tree_size}\n{base64.b64encode(self.root_hash).decode()}\n"


@dataclass(frozen=True)
class VerifierKey:
    name: str
    public_key: bytes

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.name, self.public_key)

    def encode(self) -> str:
        encoded = base64.b64encode(bytes([ALGORITHM_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_hash.hex()}+{encoded}"

    @staticmethod
    def parse(text: str) -> VerifierKey:
        name, public_key = split_vkey(text, ALGORITHM_ED25519, CheckpointError, "verifier key",
                                      "an Ed25519 signed-note key")
        return VerifierKey(name=name, public_key=public_key)


def key_hash(name: str, public_key: bytes, algorithm: int = ALGORITHM_ED25519) -> bytes:
    """The 4-byte key id of a signed-note key: SHA-256(name || "\\n" || algorithm || key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([algorithm]) + public_key).digest()[:4]


def split_vkey(text: str, algorithm: int, error: type[Exception], what: str, kind: str,
               id_word: str = "hash", check_name: Callable[[str], None] | None = None
               ) -> tuple[str, bytes]:
    """(name, 32-byte Ed25519 key) of a signed-note vkey `<name>+<hex id>+<base64(alg||key)>`
    whose algorithm byte is `algorithm` (0x01 note keys, 0x04 cosignature/v1 witnesses):
    `error` naming `what` when it is malformed, its name fails `check_name`, or its id is
    not the name's and key's."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise error(f"{what} must be <name>+<hex {id_word}>+<base64 key>")
    name, id_hex, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
        claimed = bytes.fromhex(id_hex)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not valid hex/base64") from None
    if len(raw) != 33 or raw[0] != algorithm:
        raise error(f"{what} is not {kind}")
    if check_name is not None:
        check_name(name)
    if claimed != key_hash(name, raw[1:], algorithm):
        raise error(f"{what} {id_word.removeprefix('key ')} does not match its name and key")
    return name, raw[1:]


def _check_origin(origin: str) -> None:
    if not origin or "\n" in origin or "+" in origin or " " in origin:
        raise CheckpointError(f"origin {origin!r} must be one non-empty line without '+' or spaces")


class CheckpointSigner:
    """Holds the ledger's Ed25519 key; signs a note per checkpoint, never per entry."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_origin(name)
        self.name = name
        self._private_key = private_key
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.verifier = VerifierKey(name=name, public_key=public)

    def sign(self, checkpoint: Checkpoint) -> str:
        body = checkpoint.body()
        signature = self._private_key.sign(body.encode())
        blob = base64.b64encode(self.verifier.key_hash + signature).decode()
        return f"{body}\n{SIGNATURE_PREFIX}{self.name} {blob}\n"

    def __repr__(self) -> str:  # never show key material
        return f"CheckpointSigner(name={self.name!r})"


def parse_note(note: str) -> tuple[Checkpoint, list[tuple[str, bytes, bytes]]]:
    """Split a signed note into its checkpoint and (name, key hash, signature) lines."""
    if len(note) > NOTE_BYTES_MAX:
        raise CheckpointError("note too large")
    body, separator, signatures = note.rpartition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise CheckpointError("note lacks the blank line and signature block")
    lines = body.split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint body needs origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CheckpointError("root hash is not base64") from None
    if len(root) != 32:
        raise CheckpointError("root hash is not 32 bytes")
    parsed = []
    for line in signatures[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError(f"malformed signature line {line!r}")
        name, _, blob = line[len(SIGNATURE_PREFIX):].partition(" ")
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise CheckpointError("signature is not base64") from None
        if len(raw) < 5:
            raise CheckpointError("signature too short")
        parsed.append((name, raw[:4], raw[4:]))
    return Checkpoint(origin, int(size_text), root), parsed


def verify_note(note: str, key: VerifierKey) -> Checkpoint:
    """Return the checkpoint if `key` signed `note`; CheckpointError otherwise."""
    checkpoint, signatures = parse_note(note)
    if checkpoint.origin != key.name:
        raise CheckpointError(f"origin mismatch: expected {key.name!r}, found {checkpoint.origin!r}")
    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    body = note.rpartition("\n\n")[0] + "\n"
    for name, hash_bytes, signature in signatures:
        if name == key.name and hash_bytes == key.key_hash:
            try:
                public.verify(signature, body.encode())
            except InvalidSignature:
                raise CheckpointError(
                    f"checkpoint at size {checkpoint.tree_size}: signature does not verify"
                ) from None
            return checkpoint
    raise CheckpointError(f"checkpoint at size {checkpoint.tree_size}: no signature by {key.name}")
