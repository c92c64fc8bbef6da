"""C2SP tlog-checkpoint notes signed with Ed25519, and attacks on them."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.errors import CheckpointError
from reserve.ledger.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    VerifierKey,
    parse_note,
    verify_note,
)

SEED = hashlib.sha256(b"sovereign-reserve TEST checkpoint key").digest()  # test key only
ORIGIN = "test.reserve.example/ledger"


@pytest.fixture()
def signer() -> CheckpointSigner:
    return CheckpointSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))


def test_note_layout_follows_c2sp(signer: CheckpointSigner) -> None:
    root = hashlib.sha256(b"root").digest()
    note = signer.sign(Checkpoint(ORIGIN, 42, root))
    lines = note.split("\n")
    assert lines[:4] == [ORIGIN, "42", base64.b64encode(root).decode(), ""]
    assert lines[4].startswith(f"\u2014 {ORIGIN} ")
    assert note.endswith("\n") and lines[5] == ""
    blob = base64.b64decode(lines[4].split(" ")[2])
    assert blob[:4] == signer.verifier.key_hash and len(blob) == 68


def test_key_hash_is_signed_note_key_id(signer: CheckpointSigner) -> None:
    public = signer.verifier.public_key
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    assert signer.verifier.key_hash == expected
    text = signer.verifier.encode()
    encoded = base64.b64encode(b"\x01" + public).decode()
    assert text == f"{ORIGIN}+{expected.hex()}+{encoded}"
    assert VerifierKey.parse(text) == signer.verifier


def test_verify_round_trip(signer: CheckpointSigner) -> None:
    checkpoint = Checkpoint(ORIGIN, 7, bytes(32))
    assert verify_note(signer.sign(checkpoint), signer.verifier) == checkpoint


@pytest.mark.parametrize("mutate", [
    lambda n: n.replace("\n7\n", "\n8\n", 1),
    lambda n: n.replace(ORIGIN + "\n", "evil.example/ledger\n", 1),
    lambda n: n.replace("AAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAB", 1),
    lambda n: n[:-20] + "A" * 19 + "\n",
    lambda n: n.rsplit("\n\n", 1)[0] + "\n",
])
def test_tampered_notes_are_rejected(signer: CheckpointSigner, mutate) -> None:  # type: ignore[no-untyped-def]
    note = signer.sign(Checkpoint(ORIGIN, 7, bytes(32)))
    with pytest.raises(CheckpointError):
        verify_note(mutate(note), signer.verifier)


def test_other_key_is_rejected(signer: CheckpointSigner) -> None:
    other = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    with pytest.raises(CheckpointError, match="no signature"):
        verify_note(signer.sign(Checkpoint(ORIGIN, 1, bytes(32))), other.verifier)


def test_forged_signature_with_right_key_id_is_rejected(signer: CheckpointSigner) -> None:
    note = signer.sign(Checkpoint(ORIGIN, 1, bytes(32)))
    body, _, _ = note.rpartition("\n\n")
    forged = base64.b64encode(signer.verifier.key_hash + bytes(64)).decode()
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(f"{body}\n\n\u2014 {ORIGIN} {forged}\n", signer.verifier)


@pytest.mark.parametrize("text", ["", "a+b", "name+00000000+AAAA", "x+zz+AQ=="])
def test_malformed_keys(text: str) -> None:
    with pytest.raises(CheckpointError):
        VerifierKey.parse(text)


def test_parse_rejects_bad_size() -> None:
    with pytest.raises(CheckpointError):
        parse_note(f"{ORIGIN}\n007\n{base64.b64encode(bytes(32)).decode()}\n\n\u2014 x AAAAAA==\n")
