"""The verifier is attacked, not trusted: every way to doctor an export must be caught,
with the first bad sequence number."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.ledger import Checkpoint, CheckpointSigner, Ledger
from reserve.ledger.verify import export_lines, verify_export

ORIGIN = "test.reserve.example/ledger"


def build(signer: CheckpointSigner, entries: int = 40, every: int = 10,
          start: int = 0) -> Ledger:
    ledger = Ledger.open("sqlite:///:memory:", signer=signer, checkpoint_every=every)
    for i in range(start, start + entries):
        ledger.append("ledger.note", "tester", {"i": i, "text": f"entry {i}"})
    return ledger


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    return CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def lines(signer: CheckpointSigner) -> list[str]:
    return list(export_lines(build(signer)))


def check(tmp_path: Path, lines: list[str], signer: CheckpointSigner, **kw):  # type: ignore[no-untyped-def]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return verify_export(path, signer.verifier, **kw)


def entry_index(lines: list[str], seq: int) -> int:
    return next(i for i, line in enumerate(lines)
                if json.loads(line).get("type") == "entry" and json.loads(line)["seq"] == seq)


def test_honest_export_verifies(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    report = check(tmp_path, lines, signer)
    assert report.ok, report.findings
    assert report.entries == 40 and report.checkpoints == 4


def test_bit_flipped_payload(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    doctored = list(lines)
    i = entry_index(doctored, 17)
    doctored[i] = doctored[i].replace("entry 17", "entry 71")
    report = check(tmp_path, doctored, signer)
    assert not report.ok and report.first_bad_seq == 17
    assert "altered" in report.findings[0].what


def test_edited_payload_with_recomputed_hashes(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    # An attacker who rewrites the hash chain from the edit onwards still fails the
    # signed checkpoints, which the attacker cannot re-sign. An export holds no subtree
    # hashes, so the edit is placed between the last checkpoint that still matches (20)
    # and the first that does not (30): reported at 20, the first entry none vouches for,
    # never after the edit.
    import hashlib

    doctored = [json.loads(line) for line in lines]
    prev = bytes(32)
    for record in doctored:
        if record["type"] != "entry":
            continue
        if record["seq"] == 23:
            record["body"] = record["body"].replace("entry 23", "entry 99")
        prev = hashlib.sha256(prev + record["body"].encode()).digest()
        record["entry_hash"] = prev.hex()
    report = check(tmp_path, [json.dumps(r, ensure_ascii=False) for r in doctored], signer)
    assert not report.ok and report.first_bad_seq == 20
    assert "root hash does not match" in report.findings[0].what
    assert "an entry in 20..29" in report.findings[0].what


def test_removed_entry(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    doctored = list(lines)
    del doctored[entry_index(doctored, 12)]
    report = check(tmp_path, doctored, signer)
    assert report.first_bad_seq == 12 and "missing" in report.findings[0].what


def test_reordered_entries(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    doctored = list(lines)
    a, b = entry_index(doctored, 5), entry_index(doctored, 6)
    doctored[a], doctored[b] = doctored[b], doctored[a]
    report = check(tmp_path, doctored, signer)
    assert report.first_bad_seq == 5


def test_swapped_bodies_keeping_row_numbers(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    doctored = [json.loads(line) for line in lines]
    a, b = entry_index(lines, 8), entry_index(lines, 9)
    doctored[a]["body"], doctored[b]["body"] = doctored[b]["body"], doctored[a]["body"]
    report = check(tmp_path, [json.dumps(r) for r in doctored], signer)
    assert report.first_bad_seq == 8 and "reordered" in report.findings[0].what


def test_truncated_ledger_is_caught_by_checkpoint(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    doctored = [line for line in lines
                if json.loads(line).get("type") != "entry" or json.loads(line)["seq"] < 35]
    report = check(tmp_path, doctored, signer)
    assert not report.ok and report.first_bad_seq == 35


def test_rolled_back_ledger_against_a_kept_checkpoint(tmp_path: Path, signer) -> None:  # type: ignore[no-untyped-def]
    ledger = build(signer, entries=30)
    kept = ledger.checkpoints()[-1]  # size 30, kept by an outside reader
    rolled_back = build(signer, entries=20)
    report = check(tmp_path, list(export_lines(rolled_back)), signer, trusted=[kept])
    assert not report.ok and "rolled back" in report.findings[0].what


def test_forked_ledger_against_a_kept_checkpoint(tmp_path: Path, signer) -> None:  # type: ignore[no-untyped-def]
    kept = build(signer, entries=20).checkpoints()[-1]
    fork = build(signer, entries=30, start=1000)  # same key, different history
    report = check(tmp_path, list(export_lines(fork)), signer, trusted=[kept])
    assert not report.ok and "fork" in report.findings[0].what


def test_forged_checkpoint_signature(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    forger = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    doctored = list(lines)
    i = next(i for i, line in enumerate(doctored) if '"checkpoint"' in line and '\\n20\\n' in line)
    note = json.loads(doctored[i])["note"]
    body = note.rpartition("\n\n")[0]
    forged = forger.sign(Checkpoint(ORIGIN, 20, base64.b64decode(body.split("\n")[2])))
    doctored[i] = json.dumps({"type": "checkpoint", "note": forged})
    report = check(tmp_path, doctored, signer)
    assert not report.ok and report.first_bad_seq == 19
    assert "signature" in report.findings[0].what


def test_tampered_consistency_proof(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    doctored = [json.loads(line) for line in lines]
    claim = next(r for r in doctored if r["type"] == "consistency")
    claim["proof"][0] = "00" * 32
    report = check(tmp_path, [json.dumps(r) for r in doctored], signer)
    assert not report.ok and "consistency proof" in report.findings[0].what


def test_non_canonical_body(tmp_path: Path, lines: list[str], signer) -> None:  # type: ignore[no-untyped-def]
    doctored = [json.loads(line) for line in lines]
    record = doctored[entry_index(lines, 3)]
    record["body"] = record["body"].replace(',"kind"', ', "kind"')
    report = check(tmp_path, [json.dumps(r) for r in doctored], signer)
    assert report.first_bad_seq == 3
