"""Tampering with the database behind the service's back, killing writers mid-append, and
many processes appending at once: `reserve ledger verify` must catch or survive each."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.ledger import Checkpoint, CheckpointSigner, Ledger
from reserve.ledger.keys import create_signer_file

ROOT = Path(__file__).resolve().parents[2]
RESERVE = [sys.executable, "-m", "reserve.cli.main"]
ORIGIN = "test.reserve.example/ledger"
PASSPHRASE = "test-passphrase-not-secret"


@pytest.fixture()
def workspace(tmp_path: Path) -> dict[str, object]:
    """A config file, an encrypted checkpoint key and a 30-entry ledger with checkpoints."""
    config = tmp_path / "config" / "reserve.toml"
    config.parent.mkdir()
    config.write_text(f'network = "regtest"\n[ledger]\ndatabase_url = "sqlite:///var/l.sqlite"\n'
                      f'origin = "{ORIGIN}"\nkey_path = "var/key.json"\ncheckpoint_every = 10\n')
    signer = create_signer_file(tmp_path / "var" / "key.json", ORIGIN, PASSPHRASE, scrypt_n=2**12)
    with Ledger.open(f"sqlite:///{tmp_path}/var/l.sqlite", signer=signer,
                     checkpoint_every=10) as ledger:
        for i in range(30):
            ledger.append("ledger.note", "tester", {"i": i, "memo": f"payment {i}"})
    return {"dir": tmp_path, "config": str(config), "db": tmp_path / "var" / "l.sqlite",
            "signer": signer}


def reserve(ws: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RESERVE_LEDGER_PASSPHRASE": PASSPHRASE}
    env.pop("RESERVE_DATABASE_URL", None)
    return subprocess.run([*RESERVE, *args, "--config", str(ws["config"])], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def sql(ws: dict[str, object], *statements: str) -> None:
    """Doctor the database directly, dropping the append-only triggers first."""
    connection = sqlite3.connect(str(ws["db"]))
    for table in ("ledger_entries", "ledger_checkpoints", "ledger_nodes", "ledger_meta"):
        for action in ("update", "delete"):
            connection.execute(f"DROP TRIGGER IF EXISTS {table}_no_{action}")
    for statement in statements:
        connection.execute(statement)
    connection.commit()
    connection.close()


def verify_json(ws: dict[str, object]) -> tuple[int, dict[str, object]]:
    key = ws["signer"].verifier.encode()  # type: ignore[attr-defined]
    result = reserve(ws, "ledger", "verify", "--json", "--key", key)
    return result.returncode, json.loads(result.stdout)


def test_untouched_ledger_verifies(workspace: dict[str, object]) -> None:
    code, report = verify_json(workspace)
    assert code == 0 and report["ok"] and report["entries"] == 30


def test_edited_payload_byte(workspace: dict[str, object]) -> None:
    sql(workspace, "UPDATE ledger_entries SET body = CAST(replace(CAST(body AS TEXT), "
                   "'payment 13', 'payment 93') AS BLOB) WHERE seq = 13")
    code, report = verify_json(workspace)
    assert code == 1 and report["first_bad_seq"] == 13


def test_deleted_row(workspace: dict[str, object]) -> None:
    sql(workspace, "DELETE FROM ledger_entries WHERE seq = 21")
    code, report = verify_json(workspace)
    assert code == 1 and report["first_bad_seq"] == 21


def test_swapped_rows(workspace: dict[str, object]) -> None:
    sql(workspace,
        "UPDATE ledger_entries SET seq = 999999 WHERE seq = 4",
        "UPDATE ledger_entries SET seq = 4 WHERE seq = 5",
        "UPDATE ledger_entries SET seq = 5 WHERE seq = 999999")
    code, report = verify_json(workspace)
    assert code == 1 and report["first_bad_seq"] == 4


NODE_4_1 = (4 << 40) | 1  # the subtree at level 4 over entries 16..31 (stored from 16)
# New ledgers store subtree hashes from level 4 up; the workspace's 30 entries hold one:
# level 4 index 0, over entries 0..15.
NODE_4_0 = 4 << 40


def test_edited_stored_subtree_hash(workspace: dict[str, object]) -> None:
    # Proofs are served from stored subtree hashes: a wrong one is reported with the first
    # entry it covers, although every entry is intact; the consistency proof from 20 to 30
    # that the ledger builds from it fails too.
    sql(workspace, f"UPDATE ledger_nodes SET hash = zeroblob(32) WHERE node_id = {NODE_4_0}")
    code, report = verify_json(workspace)
    findings = {(f["seq"], f["what"]) for f in report["findings"]}  # type: ignore[attr-defined]
    assert code == 1 and report["first_bad_seq"] == 0
    assert (0, "stored subtree hash at level 4 index 0 is wrong or missing") in findings
    assert (20, "consistency proof from size 20 to 30 fails") in findings


def test_deleted_stored_subtree_hash(workspace: dict[str, object]) -> None:
    sql(workspace, f"DELETE FROM ledger_nodes WHERE node_id = {NODE_4_0}")
    code, report = verify_json(workspace)
    findings = {(f["seq"], f["what"]) for f in report["findings"]}  # type: ignore[attr-defined]
    assert code == 1 and report["first_bad_seq"] == 0
    assert (0, "stored subtree hashes are missing") in findings
    assert (20, "the ledger cannot build the consistency proof from size 20 to 30: stored "
                "subtree hashes missing: [(4, 0)]") in findings


def test_stored_subtree_levels_setting_is_bound(workspace: dict[str, object]) -> None:
    # The setting says which levels are stored; changing it makes the stored set wrong.
    sql(workspace, "UPDATE ledger_meta SET value = '1' WHERE key = 'subtree_level_min'")
    code, report = verify_json(workspace)
    assert code == 1 and report["first_bad_seq"] == 0
    assert "stored subtree hashes are missing" in {f["what"] for f in report["findings"]}  # type: ignore[attr-defined]
    for value in ("99", "04"):  # the store writes str(level) only
        sql(workspace, f"UPDATE ledger_meta SET value = '{value}' WHERE key = 'subtree_level_min'")
        code, report = verify_json(workspace)
        whats = {f["what"] for f in report["findings"]}  # type: ignore[attr-defined]
        assert code == 1 and f"subtree_level_min {value} is not in 1..8: database altered" in whats


def test_planted_stored_subtree_hash(workspace: dict[str, object]) -> None:
    # A node for entries 32..47, which the 30-entry ledger does not hold.
    sql(workspace, f"INSERT INTO ledger_nodes (node_id, hash) VALUES ({(4 << 40) | 2}, "
                   "zeroblob(32))")
    code, report = verify_json(workspace)
    assert code == 1 and report["first_bad_seq"] == 32
    assert "covers no entries" in report["findings"][0]["what"]


def test_body_planted_as_text(workspace: dict[str, object]) -> None:
    # The same bytes stored as TEXT instead of BLOB read back the same (CAST in the query);
    # edited text is caught like any edit.
    sql(workspace, "UPDATE ledger_entries SET body = replace(CAST(body AS TEXT), "
                   "'payment 7', 'payment 8') WHERE seq = 7")
    code, report = verify_json(workspace)
    assert code == 1 and report["first_bad_seq"] == 7


def rehash_from(ws: dict[str, object], seq: int, old: str, new: str) -> None:
    """Edit entry `seq`'s body and recompute the hash chain from it on, as an attacker with
    write access would, leaving every chain link valid."""
    connection = sqlite3.connect(str(ws["db"]))
    rows = connection.execute("SELECT seq, body FROM ledger_entries WHERE seq >= ? "
                              "ORDER BY seq", (seq,)).fetchall()
    prev = connection.execute("SELECT entry_hash FROM ledger_entries WHERE seq = ?",
                              (seq - 1,)).fetchone()[0]
    connection.close()
    statements = []
    for number, body in rows:
        if number == seq:
            assert old.encode() in body
            body = body.replace(old.encode(), new.encode())
        prev = hashlib.sha256(prev + body).digest()
        statements.append(f"UPDATE ledger_entries SET body = x'{body.hex()}', "
                          f"entry_hash = x'{prev.hex()}' WHERE seq = {number}")
    sql(ws, *statements)


def grow(ws: dict[str, object], count: int, *, signed: bool = True) -> None:
    signer = ws["signer"] if signed else None
    with Ledger.open(f"sqlite:///{ws['db']}", signer=signer,  # type: ignore[arg-type]
                     checkpoint_every=10) as ledger:
        start = ledger.size()
        for i in range(start, start + count):
            ledger.append("ledger.note", "tester", {"i": i, "memo": f"payment {i}"})


def test_edit_with_rehashed_chain_is_reported_at_the_edited_entry(
        workspace: dict[str, object]) -> None:
    # Entry 30 edited and the chain rehashed from it: every link holds, the stored subtree
    # hashes over 16..31 and 0..31 differ, and the checkpoints at 10, 20 and 30 still match.
    # The first entry no evidence vouches for is the edited one, not 0 or 16.
    grow(workspace, 18)  # 48 entries, checkpoints at 10, 20, 30 and 40
    rehash_from(workspace, 30, "payment 30", "payment 39")
    code, report = verify_json(workspace)
    findings = report["findings"]
    assert code == 1 and report["first_bad_seq"] == 30, findings
    assert all(f["seq"] == 30 for f in findings), findings  # type: ignore[index]
    whats = [f["what"] for f in findings]  # type: ignore[index]
    assert ("stored subtree hash at level 5 index 0 is wrong or missing for entries 0..31: "
            "an entry in 30..31 was altered with its chain hash recomputed, or the stored "
            "hash was") in whats
    assert ("checkpoint at size 40: root hash does not match the entries (fork or edit of "
            "an entry in 30..39)") in whats


def test_edit_with_rehashed_chain_and_no_checkpoints(tmp_path: Path) -> None:
    # Without checkpoints only the stored subtree hashes remain, from level 4 up: they
    # place the edit in its block of 16 entries (16..31), which is as close as the stored
    # evidence goes, never at 0.
    ws = {"db": tmp_path / "l.sqlite"}
    grow(ws, 48, signed=False)
    rehash_from(ws, 30, "payment 30", "payment 39")
    with Ledger.open(f"sqlite:///{ws['db']}") as ledger:
        from reserve.ledger.verify import verify_ledger

        report = verify_ledger(ledger)
    assert report.first_bad_seq == 16, report.findings
    assert [(f.seq, f.what) for f in report.findings] == [
        (16, "stored subtree hash at level 4 index 1 is wrong or missing"),
        (16, "stored subtree hash at level 5 index 0 is wrong or missing for entries 0..31: "
             "an entry in 16..31 was altered with its chain hash recomputed, or the stored "
             "hash was")]


@pytest.mark.parametrize("statement, what", [
    ("UPDATE ledger_checkpoints SET root_hash = zeroblob(32) WHERE tree_size = 20",
     "ledger_checkpoints row of the checkpoint at size 20: root_hash column 0000"),
    ("UPDATE ledger_checkpoints SET tree_size = 25 WHERE tree_size = 20",
     "ledger_checkpoints row of the checkpoint at size 20: tree_size column says 25"),
    ("UPDATE ledger_checkpoints SET time = '2000-01-01T00:00:00.000000Z' WHERE tree_size = 20",
     "ledger_checkpoints row of the checkpoint at size 20: time column "
     "2000-01-01T00:00:00.000000Z is before entry 19"),
    ("UPDATE ledger_checkpoints SET time = 'yesterday' WHERE tree_size = 20",
     "ledger_checkpoints row of the checkpoint at size 20: time column 'yesterday' is not"),
    ("INSERT INTO ledger_meta (key, value) VALUES ('trusted', 'yes')",
     "ledger_meta holds key 'trusted', which the ledger never writes"),
    ("DELETE FROM ledger_meta WHERE key = 'verifier_key'",
     "ledger_meta has no verifier_key although the ledger holds checkpoints"),
    ("UPDATE ledger_meta SET value = 'other+00000000+AQ==' WHERE key = 'verifier_key'",
     "ledger_meta's verifier_key does not parse"),
])
def test_every_stored_column_is_checked(workspace: dict[str, object], statement: str,
                                        what: str) -> None:
    # Columns nothing else reads back: only the note is signed, so the verifier holds the
    # rest of the row to it. The entries are intact, so no entry is named.
    sql(workspace, statement)
    code, report = verify_json(workspace)
    whats = [f["what"] for f in report["findings"]]  # type: ignore[index]
    assert code == 1 and any(text.startswith(what) for text in whats), whats
    assert report["first_bad_seq"] is None
    plain = reserve(workspace, "ledger", "verify", "--key",
                    workspace["signer"].verifier.encode())  # type: ignore[attr-defined]
    assert plain.returncode == 1 and plain.stdout.startswith("FAILED: ")


def test_recorded_verifier_key_must_be_the_one_you_hold(workspace: dict[str, object]) -> None:
    other = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate()).verifier.encode()
    sql(workspace, f"UPDATE ledger_meta SET value = '{other}' WHERE key = 'verifier_key'")
    code, report = verify_json(workspace)
    assert code == 1 and [f["what"] for f in report["findings"]] == [  # type: ignore[index]
        f"ledger_meta's verifier_key {other} is not the key you hold "
        f"({workspace['signer'].verifier.encode()})"]  # type: ignore[attr-defined]


def test_forged_checkpoint(workspace: dict[str, object]) -> None:
    forger = CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    with Ledger.open(f"sqlite:///{workspace['db']}") as ledger:
        root = ledger.root_at(25)
    note = forger.sign(Checkpoint(ORIGIN, 25, root)).replace("'", "''")
    sql(workspace, "INSERT INTO ledger_checkpoints (tree_size, root_hash, note, time) "
                   f"VALUES (25, x'{root.hex()}', '{note}', 'now')")
    code, report = verify_json(workspace)
    assert code == 1 and report["first_bad_seq"] == 24
    assert "signature" in report["findings"][0]["what"]


def test_export_verifies_offline_and_catches_edits(workspace: dict[str, object]) -> None:
    export = Path(str(workspace["dir"])) / "export.jsonl"
    assert reserve(workspace, "ledger", "export", "-o", str(export)).returncode == 0
    key = workspace["signer"].verifier.encode()  # type: ignore[attr-defined]
    ok = subprocess.run([*RESERVE, "ledger", "verify", "--export", str(export), "--key", key],
                        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "OK: 30 entries" in ok.stdout
    export.write_text(export.read_text().replace("payment 7\\", "payment 8\\"))
    bad = subprocess.run([*RESERVE, "ledger", "verify", "--export", str(export), "--key", key],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "FAILED at entry 7" in bad.stdout


CHILD = """
import sys
from reserve.ledger import Ledger
ledger = Ledger.open(sys.argv[1])
i = 0
while True:
    ledger.append_many([("ledger.note", "writer", {"i": i + j}) for j in range(7)])
    i += 7
    if i == 70:
        print("started", flush=True)
"""


def test_sigkill_mid_append_leaves_a_verifying_prefix(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crash.sqlite"
    Ledger.open(url).close()
    child = subprocess.Popen([sys.executable, "-c", CHILD, url], stdout=subprocess.PIPE,
                             cwd=ROOT, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "started"
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    with Ledger.open(url) as ledger:
        size = ledger.size()
        assert size >= 70 and size % 7 == 0  # whole batches only
        assert [e.seq for e in ledger.entries()] == list(range(size))
        from reserve.ledger.verify import verify_ledger

        assert verify_ledger(ledger).ok


WRITER = """
import sys
from reserve.ledger import Ledger
ledger = Ledger.open(sys.argv[1])
for i in range(30):
    ledger.append("ledger.note", "process-" + sys.argv[2], {"i": i})
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_eight_processes_appending_at_once(backend: str, tmp_path: Path,
                                           request: pytest.FixtureRequest) -> None:
    url = (f"sqlite:///{tmp_path}/many.sqlite" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    Ledger.open(url).close()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(n)], cwd=ROOT)
               for n in range(8)]
    assert all(w.wait(timeout=180) == 0 for w in writers)
    with Ledger.open(url) as ledger:
        entries = list(ledger.entries())
        assert [e.seq for e in entries] == list(range(240))
        assert sorted((e.actor, e.payload["i"]) for e in entries) == sorted(
            (f"process-{n}", i) for n in range(8) for i in range(30))
        from reserve.ledger.verify import verify_ledger

        assert verify_ledger(ledger).ok
