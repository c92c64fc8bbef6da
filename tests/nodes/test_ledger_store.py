"""The store-backed ledger on real SQLite and PostgreSQL: one conformance suite for both."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime

import psycopg
import pytest

from reserve.errors import AppendOnlyViolation, EntryRejected, LedgerConflict, LedgerError
from reserve.ledger import CheckpointSigner, Ledger, merkle
from reserve.ledger.entry import format_time
from reserve.ledger.store import SUBTREE_LEVEL_MIN
from reserve.ledger.verify import verify_ledger

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def fill(ledger: Ledger, count: int, batch: int = 50) -> None:
    for start in range(0, count, batch):
        ledger.append_many([("ledger.note", "tester", {"i": i})
                            for i in range(start, min(count, start + batch))], now=NOW)


@pytest.mark.parametrize("level_min", [1, SUBTREE_LEVEL_MIN])
def test_roots_and_proofs_match_the_pure_module(ledger_url: str, signer: CheckpointSigner,
                                                level_min: int) -> None:
    # Subtrees below the ledger's stored level are hashed from bodies; either way every
    # root and proof is exactly the pure module's.
    with Ledger.open(ledger_url, signer=signer, checkpoint_every=64) as ledger:
        ledger._level_min = level_min  # recorded by the first append
        fill(ledger, 300)
        assert ledger.subtree_level_min() == level_min
        stored = list(ledger.stored_nodes())
        assert stored and min(level for level, _, _ in stored) == level_min
        assert len(stored) == sum(300 >> level for level in range(level_min, 9))
        leaves = [entry.leaf_hash for entry in ledger.entries()]
        assert len(leaves) == 300 and [e.seq for e in ledger.entries()] == list(range(300))
        for size in (1, 2, 3, 64, 65, 127, 128, 200, 300):
            root = ledger.root_at(size)
            assert root == merkle.root_hash(leaves[:size])
            for seq in {0, size // 2, size - 1}:
                assert ledger.inclusion_proof(seq, size) == merkle.inclusion_proof(leaves[:size], seq)
            for old in {1, size // 3 or 1, size}:
                assert ledger.consistency_proof(old, size) == merkle.consistency_proof(
                    leaves[:size], old)
        assert len(ledger.checkpoints()) == 4  # at 64, 128, 192, 256
        report = verify_ledger(ledger, signer.verifier)
        assert report.ok, report.findings


def test_ledger_from_before_the_setting_stores_every_level(tmp_path, signer) -> None:  # type: ignore[no-untyped-def]
    # A ledger written before subtree_level_min existed has every level stored and no
    # record of the setting: it reads as level 1, verifies, and keeps storing every level.
    url = f"sqlite:///{tmp_path}/old.sqlite"
    with Ledger.open(url, signer=signer, checkpoint_every=16) as ledger:
        ledger._level_min = 1
        fill(ledger, 40)
    connection = sqlite3.connect(tmp_path / "old.sqlite")
    connection.execute("DROP TRIGGER ledger_meta_no_delete")
    connection.execute("DELETE FROM ledger_meta WHERE key = 'subtree_level_min'")
    connection.commit()
    connection.close()
    with Ledger.open(url, signer=signer, checkpoint_every=16) as ledger:
        assert ledger.subtree_level_min() == 1
        fill(ledger, 20)
        leaves = [entry.leaf_hash for entry in ledger.entries()]
        assert ledger.inclusion_proof(37, 60) == merkle.inclusion_proof(leaves, 37)
        assert min(level for level, _, _ in ledger.stored_nodes()) == 1
        report = verify_ledger(ledger, signer.verifier)
        assert report.ok, report.findings


@pytest.mark.parametrize("batch", [1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 337, 1000])
def test_batches_of_every_insert_width_read_back(ledger_url: str, batch: int) -> None:
    # SQLite inserts entry rows 256, 64 and 16 at a time, the rest one by one: whatever
    # the split, every row lands once, in order, with its kind, and the ledger verifies.
    from bench.ledger import make_items

    with Ledger.open(ledger_url) as ledger:
        fill(ledger, 3, batch=3)
        items = make_items(batch, 3)  # four kinds in turn
        appended = ledger.append_many(items, now=NOW)
        assert [entry.seq for entry in appended] == list(range(3, 3 + batch))
        assert [(e.kind, e.actor, e.payload) for e in appended] == [tuple(i) for i in items]
        assert list(ledger.entries(3)) == appended
        assert ledger.kind_sequences(["ledger.note"]) == [0, 1, 2]
        for kind in {item[0] for item in items}:
            assert ledger.kind_sequences([kind]) == [e.seq for e in appended if e.kind == kind]
            assert list(ledger.entries(kinds=[kind])) == [e for e in appended if e.kind == kind]
        assert ledger.size() == 3 + batch
        assert verify_ledger(ledger).ok


def test_new_sqlite_ledgers_use_8k_pages_and_old_ones_keep_theirs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from reserve.ledger.store import SQLITE_PAGE_SIZE

    with Ledger.open(f"sqlite:///{tmp_path}/new.sqlite") as ledger:
        fill(ledger, 20)
        assert ledger.query("PRAGMA page_size") == [(SQLITE_PAGE_SIZE,)] == [(8192,)]
    old = sqlite3.connect(tmp_path / "old.sqlite")  # a database made before the setting
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE unrelated (x INTEGER)")
    old.close()
    with Ledger.open(f"sqlite:///{tmp_path}/old.sqlite") as ledger:
        fill(ledger, 600, batch=300)
        assert ledger.query("PRAGMA page_size") == [(4096,)]
        assert ledger.query("PRAGMA journal_mode") == [("wal",)]
        assert ledger.query("PRAGMA synchronous") == [(2,)]  # FULL
        assert verify_ledger(ledger).ok
    with Ledger.open(f"sqlite:///{tmp_path}/old.sqlite") as ledger:
        assert ledger.size() == 600 and verify_ledger(ledger).ok


def test_reopen_continues_the_chain(ledger_url: str, signer: CheckpointSigner) -> None:
    with Ledger.open(ledger_url, signer=signer) as ledger:
        fill(ledger, 10)
        head = ledger.head()
    with Ledger.open(ledger_url, signer=signer) as ledger:
        assert ledger.head() == head
        entry = ledger.append("ledger.note", "tester", {"after": "reopen"})
        assert entry.seq == 10
        assert verify_ledger(ledger, signer.verifier).ok


@pytest.mark.parametrize("kind, payload, message", [
    ("ledger.unknown", {}, "unknown entry kind"),
    ("ledger.note", {"amount": 1.5}, "floats"),
    ("ledger.note", {"wei": 10**18}, "2\\*\\*53"),
    ("ledger.note", ["not", "an", "object"], "JSON object"),
    ("ledger.note", {"blob": "x" * 70000}, "over the limit"),
    ("ledger.note", {"set": {1}}, "not JSON"),
])
def test_bad_entries_change_nothing(ledger_url: str, kind: str, payload: object,
                                    message: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        fill(ledger, 3)
        head = ledger.head()
        with pytest.raises(EntryRejected, match=message):
            ledger.append(kind, "tester", payload)  # type: ignore[arg-type]
        with pytest.raises(EntryRejected):
            ledger.append_many([("ledger.note", "a", {"ok": 1}), (kind, "b", payload)])  # type: ignore[list-item]
        assert ledger.head() == head


def test_checkpoint_time_is_never_before_the_entries_it_covers(ledger_url: str,
                                                              signer: CheckpointSigner) -> None:
    # The verifier holds each checkpoint row's unsigned columns to its note and the entry
    # times: a checkpoint taken on a clock behind the last entry's writer records that
    # entry's time, so an honest ledger always passes.
    later = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with Ledger.open(ledger_url, signer=signer) as ledger:
        ledger.append("ledger.note", "tester", {"i": 0}, now=later)
        ledger.checkpoint(now=NOW)
        assert ledger.checkpoint_rows() == [
            (1, ledger.root_at(1), ledger.latest_checkpoint(), format_time(later))]
        assert ledger.meta_rows() == [("subtree_level_min", str(SUBTREE_LEVEL_MIN)),
                                      ("verifier_key", signer.verifier.encode())]
        assert verify_ledger(ledger, signer.verifier).ok


def test_checkpoints_are_read_a_page_at_a_time(ledger_url: str,
                                               signer: CheckpointSigner) -> None:
    with Ledger.open(ledger_url, signer=signer) as ledger:
        notes = []
        for i in range(5):
            ledger.append("ledger.note", "tester", {"i": i}, now=NOW)
            notes.append(ledger.checkpoint(now=NOW))
        assert ledger.checkpoints() == notes and ledger.checkpoint_count() == 5
        assert ledger.checkpoints(1, 2) == notes[1:3]
        assert ledger.checkpoints(4, 10) == notes[4:] and ledger.checkpoints(5, 1) == []
        assert ledger.checkpoints(2) == notes[2:]
        assert ledger.checkpoint_note(3) == notes[2] and ledger.checkpoint_note(6) is None
        with pytest.raises(LedgerError):
            ledger.checkpoints(-1, 2)


def test_expected_size_guards_against_lost_updates(ledger_url: str) -> None:
    with Ledger.open(ledger_url) as ledger:
        fill(ledger, 2)
        ledger.append("ledger.note", "a", {}, expected_size=2)
        with pytest.raises(LedgerConflict) as caught:
            ledger.append("ledger.note", "b", {}, expected_size=2)
        assert caught.value.found_size == 3 and ledger.size() == 3


def test_database_refuses_update_and_delete(ledger_url: str, signer: CheckpointSigner) -> None:
    with Ledger.open(ledger_url, signer=signer) as ledger:
        fill(ledger, 20)  # 16 entries complete the first stored subtree hash (level 4)
        ledger.checkpoint()
        statements = ["UPDATE ledger_entries SET body = body", "DELETE FROM ledger_entries",
                      "UPDATE ledger_nodes SET hash = hash", "DELETE FROM ledger_checkpoints",
                      "UPDATE ledger_meta SET value = 'x'"]
        if ledger.dialect == "postgresql":
            statements.append("TRUNCATE ledger_entries")
        for statement in statements:
            with pytest.raises(AppendOnlyViolation, match="append-only"):
                with ledger._write():
                    ledger._db.execute(statement)
        assert ledger.size() == 20 and verify_ledger(ledger, signer.verifier).ok


@pytest.mark.postgres
def test_application_role_cannot_update(postgres_url: str) -> None:
    with Ledger.open(postgres_url) as ledger:
        fill(ledger, 2)
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("SET ROLE reserve_app")
        connection.execute("SELECT count(*) FROM ledger_entries")
        for statement in ("UPDATE ledger_entries SET seq = seq", "DELETE FROM ledger_entries",
                          "TRUNCATE ledger_entries"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(statement)


def test_threads_sharing_one_ledger_leave_no_gaps(ledger_url: str, signer) -> None:  # type: ignore[no-untyped-def]
    with Ledger.open(ledger_url, signer=signer, checkpoint_every=50) as ledger:
        def work(worker: int) -> None:
            for i in range(40):
                ledger.append("ledger.note", f"worker-{worker}", {"i": i})

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert [e.seq for e in ledger.entries()] == list(range(320))
        assert verify_ledger(ledger, signer.verifier).ok


def test_separate_connections_in_threads_leave_no_gaps(ledger_url: str, signer) -> None:  # type: ignore[no-untyped-def]
    Ledger.open(ledger_url).close()
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            with Ledger.open(ledger_url, signer=signer, checkpoint_every=25) as own:
                for i in range(25):
                    own.append_many([("ledger.note", f"w{worker}", {"i": i, "j": j})
                                     for j in range(2)])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    with Ledger.open(ledger_url) as ledger:
        assert [e.seq for e in ledger.entries()] == list(range(400))
        assert verify_ledger(ledger, signer.verifier).ok


def test_entry_refused_deep_in_a_batch_writes_nothing(ledger_url: str) -> None:
    # On PostgreSQL the entry rows are streamed into one COPY in chunks: an entry refused
    # after several chunks were sent aborts the COPY, and the batch (alone, in a group)
    # rolls back; the appends around it are unaffected.
    good = [("ledger.note", "tester", {"i": i}) for i in range(700)]
    bad = good[:650] + [("ledger.note", "tester", {"float": 1.5})] + good[651:]
    with Ledger.open(ledger_url) as ledger:
        ledger.append_many(good[:3], now=NOW)
        with pytest.raises(EntryRejected):
            ledger.append_many(bad, now=NOW)
        assert ledger.size() == 3
        with ledger.group():
            ledger.append_many(good[:5], now=NOW)
            with pytest.raises(EntryRejected):
                ledger.append_many(bad, now=NOW)
            ledger.append_many(good, now=NOW)
        assert ledger.size() == 3 + 5 + 700
        assert [entry.payload["i"] for entry in ledger.entries(8)] == list(range(700))
        assert len(ledger.kind_sequences(["ledger.note"])) == 708
        assert verify_ledger(ledger).ok


class _Checked:
    """A read model whose table refuses a negative value (a CHECK the database enforces,
    not Python): how a statement the server refuses inside a group is met."""

    name = "checked"
    memory_ddl = ()

    def __init__(self) -> None:
        self.pipelined: list[bool] = []

    def apply(self, tx, entries) -> None:  # type: ignore[no-untyped-def]
        connection = tx._ledger._db
        self.pipelined.append(getattr(getattr(connection, "pgconn", None),
                                      "pipeline_status", 0) != 0)
        for entry in entries:
            tx.execute("INSERT INTO checked_values (seq, v) VALUES (?, ?)",
                       (entry.seq, entry.payload["v"]))
            if entry.payload.get("then_refuse"):  # after a statement the server refuses
                raise EntryRejected("refused by the model as well")

    def reset(self, tx) -> None:  # type: ignore[no-untyped-def]
        tx.execute("DELETE FROM checked_values")


def test_a_statement_the_database_refuses_in_a_group_rolls_back_its_append_alone(
        ledger_url: str) -> None:
    # On PostgreSQL a group's statements are pipelined (sent without waiting for each
    # answer): the refusal is still met at the end of the append that caused it, which
    # rolls back alone, and the appends around it commit together.
    with Ledger.open(ledger_url) as ledger:
        ledger._db.execute("CREATE TABLE checked_values (seq BIGINT PRIMARY KEY, "
                           "v BIGINT NOT NULL CHECK (v >= 0))")
        model = _Checked()
        ledger.attach(model)
        ledger.append("ledger.note", "tester", {"v": 0}, now=NOW)
        refused = (sqlite3.IntegrityError, psycopg.errors.CheckViolation)
        with ledger.group():
            ledger.append_many([("ledger.note", "tester", {"v": 1}),
                                ("ledger.note", "tester", {"v": 2})], now=NOW)
            with pytest.raises(refused):
                ledger.append_many([("ledger.note", "tester", {"v": 3}),
                                    ("ledger.note", "tester", {"v": -1})], now=NOW)
            # Refused by the server (met at once on SQLite), then by the model (PostgreSQL,
            # where the server's answer is still on its way).
            with pytest.raises((EntryRejected, *refused)):
                ledger.append("ledger.note", "tester", {"v": -1, "then_refuse": True},
                              now=NOW)
            ledger.append("ledger.note", "tester", {"v": 4}, now=NOW)
        assert model.pipelined == [False] + [ledger.dialect == "postgresql"] * 4
        assert [entry.payload["v"] for entry in ledger.entries()] == [0, 1, 2, 4]
        assert [tuple(row) for row in ledger.query(
            "SELECT seq, v FROM checked_values ORDER BY seq")] == [(0, 0), (1, 1), (2, 2),
                                                                   (3, 4)]
        assert verify_ledger(ledger).ok
        with pytest.raises(refused):  # outside a group: the append alone, as before
            ledger.append("ledger.note", "tester", {"v": -2}, now=NOW)
        assert ledger.size() == 4
        ledger.append("ledger.note", "tester", {"v": 5}, now=NOW)
        assert ledger.size() == 5 and verify_ledger(ledger).ok


@pytest.mark.parametrize("statement, seq, what", [
    (None, None, None),
    ("DELETE FROM ledger_entries WHERE seq = 1999", 1999,
     "entry 1999 is missing (next stored entry is 2000)"),
    ("DELETE FROM ledger_entries WHERE seq = 2000", 2000,
     "entry 2000 is missing (next stored entry is 2001)"),
    ("UPDATE ledger_entries SET seq = 30000 WHERE seq = 3000", 3000,
     "entry 3000 is missing (next stored entry is 3001)"),
    ("UPDATE ledger_entries SET entry_hash = zeroblob(32) WHERE seq = 4001", 4001,
     "stored entry hash differs from SHA-256(previous hash || body): entry altered"),
    ("UPDATE ledger_entries SET body = CAST(replace(CAST(body AS TEXT), 'tester', 'Tester') "
     "AS BLOB) WHERE seq = 2222", 2222,
     "stored entry hash differs from SHA-256(previous hash || body): entry altered"),
])
def test_tampering_found_across_read_chunks(tmp_path, signer, statement: str | None,  # type: ignore[no-untyped-def]
                                            seq: int | None, what: str | None) -> None:
    # The verifier reads 2,000 rows at a time, the next on a second thread while the core
    # walks the current one with the GIL released: a gap, a moved row or a wrong hash at or
    # near a chunk's edge is still the first finding, worded as before.
    url = f"sqlite:///{tmp_path}/chunks.sqlite"
    with Ledger.open(url, signer=signer, checkpoint_every=1000) as ledger:
        fill(ledger, 4500, batch=500)
    if statement is not None:
        connection = sqlite3.connect(tmp_path / "chunks.sqlite")
        connection.execute("DROP TRIGGER ledger_entries_no_update")
        connection.execute("DROP TRIGGER ledger_entries_no_delete")
        connection.execute(statement)
        connection.commit()
        connection.close()
    with Ledger.open(url) as ledger:
        report = verify_ledger(ledger, signer.verifier)
    if statement is None:
        assert report.ok and report.entries == 4500, report.findings
        return
    assert report.first_bad_seq == seq and report.entries == seq
    assert (seq, what) in [(f.seq, f.what) for f in report.findings]
