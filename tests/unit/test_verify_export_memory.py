"""`verify_export` streams the file: its peak memory does not grow with the ledger.

An export of 100,000 entries and one of 10,000 (realistic entry bodies, a signed checkpoint
every 1,000 entries, the consistency proofs between them) are verified under tracemalloc;
the larger one's peak stays within a small margin of the smaller one's, where loading every
row (as the verifier did before) grows it tenfold.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.ledger import CheckpointSigner, Ledger
from reserve.ledger.verify import export_lines, read_export, verify_export

ORIGIN = "test.reserve.example/ledger"
BATCH = 10_000


def write_export(path: Path, signer: CheckpointSigner, entries: int) -> None:
    ledger = Ledger.open("sqlite:///:memory:", signer=signer, checkpoint_every=1_000)
    try:
        for start in range(0, entries, BATCH):
            ledger.append_many([
                ("ledger.note", "treasury-operator",
                 {"i": i, "text": f"transfer {i} of 1000 sats to the cold vault",
                  "reference": f"REF-{i:08d}"})
                for i in range(start, min(entries, start + BATCH))])
        with open(path, "w", encoding="utf-8") as handle:
            for line in export_lines(ledger):
                handle.write(line + "\n")
    finally:
        ledger.close()


def peak_bytes(path: Path, signer: CheckpointSigner) -> int:
    tracemalloc.start()
    try:
        report = verify_export(path, signer.verifier)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.ok, report.findings[:3]
    return peak


@pytest.fixture(scope="module")
def signer() -> CheckpointSigner:
    return CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())


def test_peak_memory_does_not_grow_with_the_export(tmp_path: Path,
                                                   signer: CheckpointSigner) -> None:
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    write_export(small, signer, 10_000)
    write_export(large, signer, 100_000)
    small_peak, large_peak = peak_bytes(small, signer), peak_bytes(large, signer)
    # What does grow: one signed note (~200 bytes) and one short proof per checkpoint,
    # 90 more of them here; loading the rows would add over 20 MB.
    assert large_peak < small_peak + 2_000_000, (small_peak, large_peak)
    assert large_peak < 1.5 * small_peak + 1_000_000, (small_peak, large_peak)


def test_a_malformed_entry_line_is_refused(tmp_path: Path, signer: CheckpointSigner) -> None:
    path = tmp_path / "export.jsonl"
    write_export(path, signer, 20)
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace('"entry_hash": "', '"entry_hash": "zz')
    path.write_text("\n".join(lines) + "\n")
    from reserve.errors import VerificationError

    with pytest.raises(VerificationError, match="export line 6 is malformed"):
        verify_export(path, signer.verifier)


def test_entry_lines_written_another_way_are_still_verified(tmp_path: Path,
                                                            signer: CheckpointSigner) -> None:
    import json

    path = tmp_path / "export.jsonl"
    write_export(path, signer, 30)
    lines = path.read_text().splitlines()
    # Keys reordered and compact separators: not the writer's prefix, still an entry.
    record = json.loads(lines[8])
    lines[8] = json.dumps({key: record[key] for key in reversed(list(record))},
                          separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    report = verify_export(path, signer.verifier)
    assert report.ok and report.entries == 30
    assert len(read_export(path)[1]) == 30
    lines[8] = lines[8].replace(record["entry_hash"], "00" * 32)
    path.write_text("\n".join(lines) + "\n")
    report = verify_export(path, signer.verifier)
    assert not report.ok and report.first_bad_seq == 7
