"""A witness cosigns only consistent extensions; the ledger records only true cosignatures.

`reserve witness init|cosign|submit` run as an outside party would: the witness reads the
published tile tree, remembers what it cosigned, and refuses a smaller tree, a tree with a
bad log signature, and a forked ledger (same key and origin, another history). The service
records a cosignature only after checking it, once per witness and size; the published
checkpoint then carries it, and Go's reader verifies it with crypto/ed25519.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reserve.ledger import Ledger
from tests.support.tlog import build_reader, read_with_go, reserve, write_config

PASSPHRASE = "witness-test-passphrase"  # a throwaway test key


@pytest.fixture(scope="module")
def tlogread(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_reader(tmp_path_factory.mktemp("go"))


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESERVE_DATABASE_URL", raising=False)
    monkeypatch.delenv("RESERVE_CONFIG", raising=False)
    monkeypatch.setenv("RESERVE_WITNESS_PASSPHRASE", PASSPHRASE)


def append_notes(folder: Path, count: int, prefix: str) -> None:
    with Ledger.open(f"sqlite:///{folder}/ledger.sqlite") as ledger:
        ledger.append_many([("ledger.note", "witness-test", {"text": f"{prefix} {i}"})
                            for i in range(count)])


def ledger_size(folder: Path) -> int:
    with Ledger.open(f"sqlite:///{folder}/ledger.sqlite") as ledger:
        return ledger.size()


def test_a_witness_cosigns_extensions_and_refuses_a_fork(tmp_path: Path, tlogread: Path) -> None:
    log = tmp_path / "log"
    config = write_config(log)
    published = log / "public-log"
    append_notes(log, 300, "first")
    assert reserve(config, "publish").returncode == 0
    vkey = reserve(config, "ledger", "public-key", "--json").json()["verifier_key"]

    state = tmp_path / "witness"
    made = reserve(None, "witness", "init", "--name", "witness.lender.example/w1", "--out",
                   str(state), "--log-key", vkey, "--json")
    assert made.returncode == 0, made.stderr
    witness_key = made.json()["witness_key"]
    assert oct((state / "key.json").stat().st_mode & 0o777) == "0o600"
    assert PASSPHRASE not in (state / "key.json").read_text()
    again = reserve(None, "witness", "init", "--name", "w2", "--out", str(state), "--log-key",
                    vkey)
    assert again.returncode == 2 and "already holds a witness" in again.stderr

    first = reserve(None, "witness", "cosign", str(published / "checkpoint"), "--state",
                    str(state), "--output", str(tmp_path / "cosigned-300"), "--json")
    assert first.returncode == 0, first.stderr
    assert (first.json()["previous_size"], first.json()["size"]) == (0, 300)
    submitted = reserve(config, "witness", "submit", str(tmp_path / "cosigned-300"),
                        "--witness-key", witness_key, "--json")
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.json()["tree_size"] == 300

    # Recorded once: a second submission of the same size is refused, nothing written.
    size = ledger_size(log)
    twice = reserve(config, "witness", "submit", str(tmp_path / "cosigned-300"),
                    "--witness-key", witness_key)
    assert twice.returncode == 2 and "already cosigned size 300" in twice.stderr
    assert ledger_size(log) == size

    # The published checkpoint carries the cosignature; Go checks it (and the log's).
    assert reserve(config, "publish", "--latest").returncode == 0
    assert first.json()["cosignature"] in (published / "checkpoint").read_text()
    read = read_with_go(tlogread, str(published), vkey, "-witness", witness_key)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["cosignatures"] == {
        "witness.lender.example/w1": first.json()["timestamp"]}

    # The log grows (the cosignature's entry and 120 more): a consistent extension.
    keep_300 = tmp_path / "published-300"
    shutil.copytree(published, keep_300)
    append_notes(log, 120, "second")
    assert reserve(config, "publish").returncode == 0
    grown = reserve(None, "witness", "cosign", str(published / "checkpoint"), "--state",
                    str(state), "--json")
    assert grown.returncode == 0, grown.stderr
    assert (grown.json()["previous_size"], grown.json()["size"]) == (300, 421)
    seen = (state / "witness.json").read_bytes()

    # A smaller tree than the one it cosigned: refused, state unchanged.
    smaller = reserve(None, "witness", "cosign", str(keep_300 / "checkpoint"), "--state",
                      str(state))
    assert smaller.returncode == 2 and "smaller than the 421" in smaller.stderr

    # A forked ledger: same key, same origin, the same first 300 entries, another history
    # after them, published elsewhere. The witness, having seen 421, refuses it.
    fork = tmp_path / "fork"
    forked = write_config(fork, key_path=log / "keys" / "ledger.json")
    copy_prefix(log, fork, 300)
    append_notes(fork, 200, "forked")
    assert reserve(forked, "publish").returncode == 0
    refused = reserve(None, "witness", "cosign", str(fork / "public-log" / "checkpoint"),
                      "--state", str(state))
    assert refused.returncode == 2, refused.stdout
    assert "not a consistent extension of size 421" in refused.stderr

    # A checkpoint whose log signature does not verify: refused.
    tampered = tmp_path / "tampered"
    shutil.copytree(published, tampered)
    note = (tampered / "checkpoint").read_text().split("\n")
    note[1] = str(int(note[1]) + 1)
    (tampered / "checkpoint").write_text("\n".join(note))
    bad = reserve(None, "witness", "cosign", str(tampered / "checkpoint"), "--state", str(state))
    assert bad.returncode == 2 and "does not verify" in bad.stderr
    assert (state / "witness.json").read_bytes() == seen


def copy_prefix(source: Path, target: Path, count: int) -> None:
    """The first `count` entries of the ledger in `source`, byte for byte, in a new ledger
    in `target` (they were appended as one batch, so one time)."""
    with Ledger.open(f"sqlite:///{source}/ledger.sqlite") as old, \
            Ledger.open(f"sqlite:///{target}/ledger.sqlite") as new:
        entries = list(old.entries(0, count))
        moment = datetime.strptime(entries[0].time, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        new.append_many([(entry.kind, entry.actor, entry.payload) for entry in entries],
                        now=moment)
        assert new.root_at(count) == old.root_at(count)


def test_forged_and_foreign_cosignatures_are_refused_and_nothing_is_written(
        tmp_path: Path) -> None:
    log = tmp_path / "log"
    config = write_config(log)
    append_notes(log, 40, "entries")
    assert reserve(config, "publish").returncode == 0
    vkey = reserve(config, "ledger", "public-key", "--json").json()["verifier_key"]
    state = tmp_path / "witness"
    witness_key = reserve(None, "witness", "init", "--name", "w.example/one", "--out",
                          str(state), "--log-key", vkey, "--json").json()["witness_key"]
    cosigned = reserve(None, "witness", "cosign", str(log / "public-log/checkpoint"),
                       "--state", str(state), "--json").json()["note"]
    size = ledger_size(log)

    def submit(note: str, key: str = witness_key) -> str:
        path = tmp_path / "note"
        path.write_text(note)
        outcome = reserve(config, "witness", "submit", str(path), "--witness-key", key)
        assert outcome.returncode == 2, outcome.stdout
        return outcome.stderr

    # One flipped character in the cosignature's signature bytes.
    lines = cosigned.split("\n")
    line = lines[-2]
    forged_line = line[:-8] + ("A" if line[-8] != "A" else "B") + line[-7:]
    assert "does not verify" in submit("\n".join(lines[:-2] + [forged_line, ""]))
    # A cosignature by another witness key under the same name.
    other_state = tmp_path / "other"
    other_key = reserve(None, "witness", "init", "--name", "w.example/one", "--out",
                        str(other_state), "--log-key", vkey, "--json").json()["witness_key"]
    assert "no cosignature by w.example/one" in submit(cosigned, other_key)
    # The checkpoint's body changed under both signatures.
    body = cosigned.replace("\n40\n", "\n41\n", 1)
    assert "does not verify" in submit(body)
    # Not a checkpoint, a bad key, a missing file: clear errors.
    assert "not" in submit("hello\n")
    assert "witness key" in submit(cosigned, "w+zz+AAAA")
    missing = reserve(config, "witness", "submit", str(tmp_path / "absent"), "--witness-key",
                      witness_key)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert ledger_size(log) == size


def test_witness_commands_give_clear_errors(tmp_path: Path) -> None:
    nowhere = reserve(None, "witness", "cosign", str(tmp_path / "checkpoint"), "--state",
                      str(tmp_path / "none"))
    assert nowhere.returncode == 2 and "no witness" in nowhere.stderr
    bad_key = reserve(None, "witness", "init", "--name", "w", "--out", str(tmp_path / "w"),
                      "--log-key", "not+a+key")
    assert bad_key.returncode == 2 and "log key" in bad_key.stderr
    bad_name = reserve(None, "witness", "init", "--name", "two words", "--out",
                       str(tmp_path / "w"), "--log-key", "x+00000000+AAAA")
    assert bad_name.returncode == 2 and "witness name" in bad_name.stderr
    assert not (tmp_path / "w").exists()
