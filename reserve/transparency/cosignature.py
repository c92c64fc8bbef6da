"""C2SP tlog-cosignature/v1: a witness's timestamped Ed25519 signature on a checkpoint.

A cosignature is one more signature line on the checkpoint's signed note:

    — <witness name> base64(key ID[4] || timestamp[8, big-endian] || Ed25519 signature[64])

over the message `cosignature/v1\\ntime <timestamp>\\n` followed by the checkpoint body.
The key ID is SHA-256(name || 0x0A || 0x04 || public key)[:4] and the witness's verifier
key is written `<name>+<hex key ID>+<base64(0x04 || public key)>`. By signing, the witness
states that this is the largest tree consistent with everything it saw of the log at that
time. Pure: no I/O.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reserve.errors import CheckpointError, TransparencyError
from reserve.ledger.checkpoint import (
    SIGNATURE_PREFIX,
    Checkpoint,
    key_hash,
    parse_note,
    split_vkey,
)

ALGORITHM_COSIGNATURE_V1 = 0x04
TIMESTAMP_MAX = 2**63 - 1
SIGNATURES_MAX = 64  # a checkpoint carries the log's signature and a few witnesses'


@dataclass(frozen=True)
class WitnessKey:
    """A witness's public key under its name (the vkey of the cosignature spec)."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_hash(self.name, self.public_key, ALGORITHM_COSIGNATURE_V1)

    def encode(self) -> str:
        encoded = base64.b64encode(bytes([ALGORITHM_COSIGNATURE_V1]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @staticmethod
    def parse(text: str) -> WitnessKey:
        name, public_key = split_vkey(text, ALGORITHM_COSIGNATURE_V1, TransparencyError,
                                      "witness key", "a cosignature/v1 (0x04) Ed25519 key",
                                      id_word="key id", check_name=check_name)
        return WitnessKey(name=name, public_key=public_key)


def check_name(name: str) -> None:
    """A key name is one non-empty token without '+' or white space (signed-note rules)."""
    if not name or len(name) > 256 or "+" in name or any(c.isspace() for c in name):
        raise TransparencyError(f"witness name {name!r} must be one token without '+' or "
                                "spaces (at most 256 characters)")


def witness_key_of(name: str, private_key: Ed25519PrivateKey) -> WitnessKey:
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return WitnessKey(name, public)


def note_body(note: str) -> str:
    """The checkpoint body a note's signatures sign (up to and with its last newline)."""
    body, separator, _ = note.rpartition("\n\n")
    if not separator:
        raise TransparencyError("not a signed note: no blank line before the signatures")
    return body + "\n"


def signed_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def cosign(note: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """The signature line of a cosignature/v1 by `name` on `note`'s checkpoint."""
    check_name(name)
    if not 0 <= timestamp <= TIMESTAMP_MAX:
        raise TransparencyError(f"timestamp {timestamp} is outside 0..2^63-1")
    key = witness_key_of(name, private_key)
    signature = private_key.sign(signed_message(note_body(note), timestamp))
    blob = base64.b64encode(key.key_id + timestamp.to_bytes(8, "big") + signature).decode()
    return f"{SIGNATURE_PREFIX}{name} {blob}"


def signature_lines(note: str) -> list[str]:
    """The note's signature lines, in order."""
    _, _, block = note.rpartition("\n\n")
    return [line for line in block.split("\n") if line]


def find_cosignature(note: str, key: WitnessKey) -> tuple[str, int]:
    """(signature line, timestamp) of `key`'s cosignature on `note`, verified;
    TransparencyError if it has none or it does not verify."""
    try:
        checkpoint, signatures = parse_note(note)
    except CheckpointError as error:
        raise TransparencyError(f"not a checkpoint: {error}") from None
    if len(signatures) > SIGNATURES_MAX:
        raise TransparencyError(f"a checkpoint with {len(signatures)} signatures is refused")
    public = Ed25519PublicKey.from_public_bytes(key.public_key)
    body = note_body(note)
    for line, (name, key_id, rest) in zip(signature_lines(note), signatures, strict=True):
        if name != key.name or key_id != key.key_id:
            continue
        if len(rest) != 8 + 64:
            raise TransparencyError(f"cosignature by {name} is not 8 + 64 bytes")
        timestamp = int.from_bytes(rest[:8], "big")
        if timestamp > TIMESTAMP_MAX:
            raise TransparencyError(f"cosignature by {name}: timestamp beyond 2^63-1")
        try:
            public.verify(rest[8:], signed_message(body, timestamp))
        except InvalidSignature:
            raise TransparencyError(f"cosignature by {name} on size {checkpoint.tree_size} "
                                    "does not verify") from None
        return line, timestamp
    raise TransparencyError(f"the checkpoint at size {checkpoint.tree_size} carries no "
                            f"cosignature by {key.name}")


def with_signatures(note: str, lines: list[str]) -> str:
    """`note` with the signature `lines` it lacks appended (in the order given)."""
    present = signature_lines(note)
    extra = [line for line in dict.fromkeys(lines) if line not in present]
    if len(present) + len(extra) > SIGNATURES_MAX:
        raise TransparencyError(f"more than {SIGNATURES_MAX} signatures on one checkpoint")
    return note + "".join(line + "\n" for line in extra)


def checkpoint_of(note: str) -> Checkpoint:
    try:
        return parse_note(note)[0]
    except CheckpointError as error:
        raise TransparencyError(f"not a checkpoint: {error}") from None
