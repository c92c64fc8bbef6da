"""The store-backed ledger: atomic, serialised appends and O(log n) proofs.

One writer at a time: on SQLite `BEGIN IMMEDIATE` takes the database's write lock (other
processes queue on the busy timeout), on PostgreSQL a transaction-scoped advisory lock does
the same; within a process a lock serialises threads sharing a Ledger. Each append reads
the head, writes the entries and every perfect-subtree hash they complete, and commits
once, so a batch lands whole or not at all and sequence numbers have no gaps.

Durability: SQLite runs in WAL mode with `synchronous=FULL` (an append that returned
survives power loss; NORMAL could lose the last commits); PostgreSQL with
`synchronous_commit=on`.

Read models ride on the same transaction: a model `attach`ed to the ledger is handed every
batch inside the append's transaction (after the entries, before the commit), so its rows
and the entries commit together or not at all; a model that refuses a batch rolls the
append back. Each entry row also holds the entry's kind, indexed by (kind, seq), which
`entries(kinds=...)` reads so that a few kinds cost their own entries, not the ledger's.

Group commit: inside `with ledger.group():` (one thread, holding the ledger) every append
is a SAVEPOINT of one outer transaction, so an append that fails rolls back alone and the
others commit together, with one fsync, when the group ends; if that commit fails none of
them is written. The API uses it to let concurrent requests share a commit
(reserve/api/reserve_views.py, WorkflowAccess); nothing is acknowledged before it. On
PostgreSQL a group's statements are pipelined (`_pipelined`): sent without waiting for
each answer, collected at each append's end, where a refusal rolls that append back.

Roots and proofs read only the O(log n) stored subtree hashes they need, fetched in one
query: the proof code runs once with a recorder to learn which subtrees it needs, then
again on the fetched hashes.
"""

from __future__ import annotations

import hashlib
import heapq
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from reserve.db import connect
from reserve.errors import (
    AppendOnlyViolation,
    EntryRejected,
    LedgerConflict,
    LedgerError,
    ProofError,
)
from reserve.ledger import merkle
from reserve.ledger.checkpoint import Checkpoint, CheckpointSigner, VerifierKey
from reserve.ledger.entry import (
    ENTRY_FIELDS,
    GENESIS_PREV_HASH,
    PAYLOAD_BYTES_MAX_DEFAULT,
    Entry,
    decode_body,
    encode_bodies,
    format_time,
)
from reserve.ledger.native import core as _native

T = TypeVar("T")
LEVEL_SHIFT = 40
BATCH_ENTRIES_MAX = 100_000
READ_CHUNK = 2000
# New ledgers store perfect-subtree hashes from level 4 up (one row per 8 entries instead
# of one per entry): the three levels below cover at most 8 leaves, which a proof hashes
# from the bodies in the same query it already makes. SUBTREE_LEVEL_MAX bounds the setting.
SUBTREE_LEVEL_MIN = 4
SUBTREE_LEVEL_MAX = 8
ADVISORY_LOCK_ID = 0x5245534552  # "RESER"
# Page size of a new SQLite ledger: rows of 300-450 bytes fill 8 KiB pages with less
# per-page overhead (fewer pages, B-tree splits and WAL frames per append) than 4 KiB.
SQLITE_PAGE_SIZE = 8192
COPY_CHUNK = 200  # entries encoded and hashed per piece of a PostgreSQL append's COPY
_ZERO = bytes(32)


class Transaction:
    """The statements a read model may run inside the ledger's write transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.dialect = ledger.dialect

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of `statement` (`?` placeholders), seeing this transaction's own writes."""
        return self._ledger._query(statement, params)

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self._ledger._db.execute(self._ledger._sql(statement), params)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._ledger._executemany(statement, rows)

    def size(self) -> int:
        return self._ledger._head()[0]

    def entries(self, start: int, stop: int) -> Iterator[Entry]:
        """Committed or this transaction's entries in [start, stop), in order."""
        return self._ledger.entries(start, stop)


class ReadModel(Protocol):
    """Derived tables kept in step with the ledger (see `Ledger.attach`)."""

    name: str
    memory_ddl: Sequence[str]  # its tables, for an in-memory SQLite ledger (no migrations)

    def apply(self, tx: Transaction, entries: Sequence[Entry]) -> None:
        """Bring the model's rows up to the end of `entries` (the batch being appended,
        or none): apply any entries before them it has not seen, then these; raise to
        refuse the batch."""

    def reset(self, tx: Transaction) -> None:
        """Delete every row of the model (it then applies the ledger from entry 0)."""


def node_id(level: int, index: int) -> int:
    """Key of the perfect subtree at `level` covering leaves [index << level, ...)."""
    return (level << LEVEL_SHIFT) | index


class Ledger:
    """An append-only ledger on SQLite (default) or PostgreSQL, selected by URL."""

    def __init__(self, url: str, connection: Any, dialect: str, *,
                 payload_bytes_max: int, signer: CheckpointSigner | None,
                 checkpoint_every: int) -> None:
        self.url = url
        self.dialect = dialect
        self.payload_bytes_max = payload_bytes_max
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        # Where an append or checkpoint given no `now` takes its time: UTC wall-clock time
        # unless set (the configured clock of a regtest service, the demo's story clock).
        self.clock: Callable[[], datetime] | None = None
        self._db = connection
        self._ph = "?" if dialect == "sqlite" else "%s"
        self._lock = threading.RLock()
        # (size, head entry hash, frontier: the perfect-subtree roots, largest first; their
        # levels are the set bits of size)
        self._frontier_cache: tuple[int, bytes, list[bytes]] = (0, GENESIS_PREV_HASH, [])
        self._level_min: int | None = None
        self._models: list[ReadModel] = []
        self._grouped = False  # inside group(): appends are savepoints of its transaction
        # Inside a group on PostgreSQL: the connection's pipeline (psycopg), which sends
        # the group's statements without waiting for each one's answer.
        self._pipeline: Any = None
        # Inside a group, the head its last append left: no one else appends meanwhile
        # (the group holds the write lock), so the next append need not read it again.
        self._group_head: tuple[int, bytes] | None = None

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(cls, url: str, *, payload_bytes_max: int = PAYLOAD_BYTES_MAX_DEFAULT,
             signer: CheckpointSigner | None = None, checkpoint_every: int = 0) -> Ledger:
        """Open (creating and migrating if needed) the ledger at `url`.

        `sqlite:///relative/or/absolute/path`, `sqlite:///:memory:` or `postgresql://...`.
        With a signer and checkpoint_every > 0, a signed checkpoint is written in the same
        transaction as the append that reaches each multiple of checkpoint_every.
        """
        from reserve.ledger.migrate import upgrade

        connection, dialect = connect(url, LedgerError)
        if dialect == "sqlite":
            # A new database only (SQLite ignores it once the file has pages; existing
            # ledgers keep theirs): see SQLITE_PAGE_SIZE.
            connection.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
        else:
            connection.execute("SET synchronous_commit = on")
        upgrade(url, connection, dialect)
        return cls(url, connection, dialect, payload_bytes_max=payload_bytes_max,
                   signer=signer, checkpoint_every=checkpoint_every)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ read models
    def attach(self, model: ReadModel) -> ReadModel:
        """Keep `model` in step from now on; returns the model already attached under its
        name, if any (one instance per name and ledger)."""
        with self._lock:
            for attached in self._models:
                if attached.name == model.name:
                    return attached
            if self.url.endswith(":memory:"):
                for statement in model.memory_ddl:
                    self._db.execute(statement)
            self._models.append(model)
            return model

    def detach(self, name: str) -> None:
        """Stop keeping the model `name` in step (it catches up when attached again)."""
        with self._lock:
            self._models = [model for model in self._models if model.name != name]

    def update_models(self) -> None:
        """Let every attached model catch up with entries appended without it (by a process
        that had not attached it), in one write transaction."""
        with self._lock:
            if not self._models:
                return
            with self._write():
                tx = Transaction(self)
                for model in self._models:
                    model.apply(tx, ())

    def rebuild_models(self) -> None:
        """Recreate every attached model's rows from the whole ledger, in one transaction
        (readers see the old rows until it commits)."""
        with self._lock:
            with self._write():
                tx = Transaction(self)
                for model in self._models:
                    model.reset(tx)
                    model.apply(tx, ())

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of a read-only `statement` (`?` placeholders) on the ledger's connection."""
        with self._lock:
            return self._query(statement, params)

    # ------------------------------------------------------------- primitives
    def now(self) -> datetime:
        """The time an append or checkpoint given none takes (`clock`, else UTC time)."""
        return self.clock() if self.clock is not None else datetime.now(UTC)

    def _sql(self, statement: str) -> str:
        return statement if self._ph == "?" else statement.replace("?", "%s")

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self._db.execute(self._sql(statement), params).fetchall())

    def _executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.dialect == "sqlite":
            self._db.executemany(statement, rows)
        else:
            with self._db.cursor() as cursor:
                cursor.executemany(self._sql(statement), rows)

    def _insert_rows(self, table: str, columns: tuple[str, ...],
                     rows: Sequence[tuple[int, bytes | str]] | Sequence[tuple[int, bytes, bytes]]
                     ) -> None:
        """Insert `rows` (a bigint, then bytea or text columns) into one of the ledger's
        own tables, inside the open transaction: `executemany` on SQLite and inside a
        group's pipeline (where COPY cannot run), else one binary COPY on PostgreSQL (one
        statement, several times cheaper there than executemany; a duplicate key or a
        failed CHECK still fails it whole, and the transaction with it)."""
        if self.dialect == "sqlite" or self._pipeline is not None:  # no COPY in a pipeline
            marks = ", ".join("?" * len(columns))
            self._executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                              rows)
            return
        with self._db.cursor() as cursor, cursor.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_COPY_SIGNATURE + _copy_rows(len(columns), rows) + _COPY_TRAILER)

    def _insert_entries(self, rows: list[tuple[int, bytes, bytes]],
                        items: Sequence[tuple[str, str, Any]]) -> None:
        """Insert the entry rows with their kinds (SQLite, and PostgreSQL inside a group's
        pipeline, where COPY cannot run): multi-row INSERTs of ENTRY_INSERT_ROWS rows and
        smaller powers of two down to 16, the rest by executemany. One statement binding a
        few hundred rows skips executemany's per-row step (about 0.5 us an entry here); a
        few fixed widths keep the prepared statements few (the connection caches them)
        whatever the batch sizes."""
        params = _entry_params(rows, items)
        done, count = 0, len(rows)
        for width in _ENTRY_INSERT_WIDTHS:
            while count - done >= width:
                self._db.execute(_entry_insert(width, self._ph),
                                 params[4 * done:4 * (done + width)])
                done += width
        if done < count:
            rest = iter(params[4 * done:])
            self._executemany(_entry_insert(1, "?"), list(zip(rest, rest, rest, rest)))

    def _copy_entries(self, items: Sequence[tuple[str, str, Any]], size: int, time: str,
                      prev: bytes, frontier: list[bytes], level_min: int
                      ) -> tuple[list[tuple[int, bytes, bytes]], list[tuple[int, bytes]], bytes]:
        """Encode, hash and COPY the entry rows (with their kinds) of a batch (PostgreSQL), COPY_CHUNK at a
        time into one COPY statement, so that the server stores a chunk while the next is
        encoded. Returns what `_hash_rows` returns for the whole batch. A refused item
        raises EntryRejected out of the COPY, which aborts it (and the transaction rolls
        back, as before: nothing of the batch is written)."""
        entry_rows: list[tuple[int, bytes, bytes]] = []
        node_rows: list[tuple[int, bytes]] = []
        limit = self.payload_bytes_max
        with self._db.cursor() as cursor, cursor.copy(
                "COPY ledger_entries (seq, body, entry_hash, kind) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(_COPY_SIGNATURE)
            for offset in range(0, len(items), COPY_CHUNK):
                start = size + offset
                bodies = encode_bodies(items[offset:offset + COPY_CHUNK], start, time, limit)
                rows, nodes, prev = _hash_rows(prev, start, bodies, frontier, level_min)
                copy.write(_copy_entries_of(rows, items[offset:offset + COPY_CHUNK]))
                entry_rows += rows
                node_rows += nodes
            copy.write(_COPY_TRAILER)
        return entry_rows, node_rows, prev

    @contextmanager
    def group(self) -> Iterator[None]:
        """One write transaction around several appends: each is a savepoint (a failed one
        rolls back alone), all commit together at the end, or none if the body raises or
        the commit fails. Other threads wait for the ledger meanwhile, so no one reads
        what is not yet durable. Groups do not nest."""
        with self._lock:
            if self._grouped:
                raise LedgerError("a group of appends cannot open another group")
            try:
                with self._write(), self._pipelined():
                    self._grouped = True
                    self._group_head = None
                    yield
            except BaseException:
                # The cached head may describe appends the rollback undid.
                self._frontier_cache = (0, GENESIS_PREV_HASH, [])
                raise
            finally:
                self._grouped = False
                self._group_head = None

    @contextmanager
    def _pipelined(self) -> Iterator[None]:
        """On PostgreSQL, the group's statements in pipeline mode: each is sent without
        waiting for the answer of the one before, and the connection waits only where a
        result is needed (a query's rows, the end of each append, the end of the group).
        A group's appends are small and many, each about a dozen statements, so waiting
        for each one's round trip, and psycopg's work around it, was most of a write's cost
        there. Nothing changes on SQLite (in the process: no round trips)."""
        if self.dialect == "sqlite":
            yield
            return
        with self._db.pipeline() as pipeline:
            self._pipeline = pipeline
            try:
                yield
            finally:
                self._pipeline = None

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One serialised write transaction (a savepoint of the group's, inside one);
        rolls back entirely on any error."""
        with self._lock:  # first: another thread waits here while a group is open
            if self._grouped:
                with self._savepoint():
                    yield
                return
            if self.dialect == "sqlite":
                self._db.execute("BEGIN IMMEDIATE")
            else:
                self._db.execute("BEGIN")
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_ID,))
            try:
                yield
            except BaseException as error:
                self._db.execute("ROLLBACK")
                if _is_append_only_refusal(error):
                    raise AppendOnlyViolation(str(error)) from None
                raise
            try:
                self._db.execute("COMMIT")
            except Exception as error:  # disk full, I/O error, connection lost
                with suppress(Exception):
                    self._db.execute("ROLLBACK")
                raise LedgerError(f"the commit failed ({error}); nothing of it is "
                                  "written") from error

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        # One name for every append: where savepoints of one name nest, ROLLBACK TO and
        # RELEASE take the newest (SQL standard, both databases), so a fixed name works as
        # unique ones would, and its fixed text lets the driver prepare the statements.
        name = "append"
        self._db.execute(f"SAVEPOINT {name}")
        try:
            yield
            if self._pipeline is not None:  # this append's statements answered, or raise
                self._pipeline.sync()
        except BaseException as error:
            if self._pipeline is not None:
                # Collect what this append sent before it failed: a refusal among its own
                # statements is part of this failure, not the next append's.
                with suppress(Exception):
                    self._pipeline.sync()
            self._db.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self._db.execute(f"RELEASE SAVEPOINT {name}")
            if _is_append_only_refusal(error):
                raise AppendOnlyViolation(str(error)) from None
            raise
        self._db.execute(f"RELEASE SAVEPOINT {name}")

    def _head(self) -> tuple[int, bytes]:
        rows = self._query("SELECT seq, entry_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1")
        if not rows:
            return 0, GENESIS_PREV_HASH
        return int(rows[0][0]) + 1, bytes(rows[0][1])

    def subtree_level_min(self) -> int:
        """The lowest level whose perfect-subtree hashes this ledger stores.

        A ledger records it in `ledger_meta` with its first append (SUBTREE_LEVEL_MIN);
        a ledger with entries and no record predates the setting and stores every level
        from 1. A subtree below it is hashed from its bodies (at most 8 at the default)
        when a root or proof needs it. Raises LedgerError for a recorded value outside
        1..SUBTREE_LEVEL_MAX (no ledger writes one).
        """
        if self._level_min is None:
            with self._lock:
                rows = self._query("SELECT value FROM ledger_meta WHERE key = ?",
                                   ("subtree_level_min",))
                if rows:
                    text = str(rows[0][0])
                    level = int(text) if text.isdigit() and len(text) <= 2 else 0
                    if not 1 <= level <= SUBTREE_LEVEL_MAX or text != str(level):
                        raise LedgerError(f"subtree_level_min {text} is not in "
                                          f"1..{SUBTREE_LEVEL_MAX}: database altered")
                else:
                    level = SUBTREE_LEVEL_MIN if self._head()[0] == 0 else 1
                self._level_min = level
        return self._level_min

    def _fetch_nodes(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Hashes of the perfect subtrees `keys` (level, index): leaves and subtrees below
        subtree_level_min() hashed from their bodies, the others read as stored."""
        wanted = set(keys)
        level_min = self.subtree_level_min()
        found: dict[tuple[int, int], bytes] = {}
        hashed = [(level, index) for level, index in wanted if level < level_min]
        seqs = sorted({seq for level, index in hashed
                       for seq in range(index << level, (index + 1) << level)})
        leaf_hashes: dict[int, bytes] = {}
        # CAST: a TEXT value planted in the BLOB column reads back as its bytes.
        column = "CAST(body AS BLOB)" if self.dialect == "sqlite" else "body"
        for start in range(0, len(seqs), 500):
            chunk = seqs[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for seq, body in self._query(
                    f"SELECT seq, {column} FROM ledger_entries WHERE seq IN ({marks})", chunk):
                leaf_hashes[int(seq)] = merkle.leaf_hash(bytes(body))
        for level, index in hashed:
            covered = range(index << level, (index + 1) << level)
            if all(seq in leaf_hashes for seq in covered):
                found[(level, index)] = merkle.root_hash([leaf_hashes[seq] for seq in covered])
        inner = sorted(node_id(level, index) for level, index in wanted if level >= level_min)
        for start in range(0, len(inner), 500):
            chunk = inner[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._query(
                    f"SELECT node_id, hash FROM ledger_nodes WHERE node_id IN ({marks})", chunk):
                found[(int(key) >> LEVEL_SHIFT, int(key) & ((1 << LEVEL_SHIFT) - 1))] = bytes(value)
        missing = wanted - found.keys()
        if missing:
            raise LedgerError(f"stored subtree hashes missing: {sorted(missing)[:5]}")
        return found

    def _with_subtrees(self, compute: Callable[[merkle.RangeHash], T]) -> T:
        """Run `compute` on stored subtree hashes, fetched in one round of queries."""
        wanted: set[tuple[int, int]] = set()

        def record(begin: int, end: int) -> bytes:
            wanted.update(merkle.perfect_subtrees(begin, end))
            return _ZERO

        compute(record)
        hashes = self._fetch_nodes(wanted)

        def stored(begin: int, end: int) -> bytes:
            return merkle.fold_frontier([hashes[key] for key in merkle.perfect_subtrees(begin, end)])

        return compute(stored)

    def _frontier(self, size: int, head_hash: bytes) -> list[bytes]:
        cached_size, cached_head, frontier = self._frontier_cache
        if cached_size == size and cached_head == head_hash:
            return list(frontier)
        if size == 0:
            return []
        keys = merkle.perfect_subtrees(0, size)
        hashes = self._fetch_nodes(keys)
        return [hashes[key] for key in keys]

    # ---------------------------------------------------------------- appends
    def append(self, kind: str, actor: str, payload: dict[str, Any], *,
               now: datetime | None = None, expected_size: int | None = None) -> Entry:
        """Append one entry; see append_many."""
        return self.append_many([(kind, actor, payload)], now=now, expected_size=expected_size)[0]

    def append_many(self, items: Sequence[tuple[str, str, dict[str, Any]]], *,
                    now: datetime | None = None, expected_size: int | None = None) -> list[Entry]:
        """Append entries atomically, in order, with consecutive sequence numbers.

        Raises EntryRejected (nothing written) if any item is invalid, and LedgerConflict if
        `expected_size` is given and the ledger has another size when the lock is held.
        Requires 1 <= len(items) <= BATCH_ENTRIES_MAX.
        """
        if not 1 <= len(items) <= BATCH_ENTRIES_MAX:
            raise EntryRejected(f"a batch holds 1 to {BATCH_ENTRIES_MAX} entries, got {len(items)}")
        time = format_time(now or self.now())
        with self._write():
            size, prev = self._group_head or self._head()
            if expected_size is not None and expected_size != size:
                raise LedgerConflict(expected_size, size)
            frontier = self._frontier(size, prev)
            limit, level_min = self.payload_bytes_max, self.subtree_level_min()
            entries: list[Entry]
            if self.dialect == "postgresql" and self._pipeline is None:
                # encoded, hashed and copied chunk by chunk (COPY: not in a group's pipeline)
                entry_rows, node_rows, prev = self._copy_entries(items, size, time, prev,
                                                                 frontier, level_min)
            else:
                bodies = encode_bodies(items, size, time, limit)
                entry_rows, node_rows, prev = _hash_rows(prev, size, bodies, frontier,
                                                         level_min)
            if _native is not None:  # in C (reserve/ledger/_native.c)
                entries = _native.entries(Entry, ENTRY_FIELDS, entry_rows,
                                          items if type(items) is list else list(items), time)
            else:
                make = Entry.of_fields
                entries = [make(seq, time, kind, actor, payload, body, entry_hash)
                           for (seq, body, entry_hash), (kind, actor, payload)
                           in zip(entry_rows, items)]
            if size == 0 and not self._query("SELECT 1 FROM ledger_meta WHERE key = ?",
                                             ("subtree_level_min",)):
                self._db.execute(self._sql("INSERT INTO ledger_meta (key, value) VALUES (?, ?)"),
                                 ("subtree_level_min", str(level_min)))
            if self.dialect == "sqlite" or self._pipeline is not None:
                self._insert_entries(entry_rows, items)  # with the kind, its index's column
            if node_rows:
                # In key order: the B-tree then appends at the right edge of each level's
                # key range instead of seeking between levels (a fifth faster here).
                node_rows.sort()
                self._insert_rows("ledger_nodes", ("node_id", "hash"), node_rows)
            new_size = size + len(items)
            if self.signer and self.checkpoint_every > 0 and (
                    new_size // self.checkpoint_every > size // self.checkpoint_every):
                root = merkle.fold_frontier(frontier)
                self._insert_checkpoint(self.signer, new_size, root, time)
            if self._models:
                tx = Transaction(self)
                for model in self._models:
                    model.apply(tx, entries)
        self._frontier_cache = (new_size, prev, frontier)
        if self._grouped:  # a failed later append rolls back to exactly this head
            self._group_head = (new_size, prev)
        return entries

    # ------------------------------------------------------------ checkpoints
    def _insert_checkpoint(self, signer: CheckpointSigner, size: int, root: bytes,
                           time: str) -> str:
        note = signer.sign(Checkpoint(signer.name, size, root))
        self._db.execute(self._sql(
            "INSERT INTO ledger_checkpoints (tree_size, root_hash, note, time) VALUES (?, ?, ?, ?)"),
            (size, root, note, time))
        known = self._query("SELECT value FROM ledger_meta WHERE key = ?", ("verifier_key",))
        if not known:
            self._db.execute(self._sql("INSERT INTO ledger_meta (key, value) VALUES (?, ?)"),
                             ("verifier_key", signer.verifier.encode()))
        elif known[0][0] != signer.verifier.encode():
            raise LedgerError("this ledger's checkpoints are signed by another key: "
                              f"{known[0][0]}")
        return note

    def checkpoint(self, signer: CheckpointSigner | None = None, *,
                   now: datetime | None = None) -> str:
        """Sign and store a checkpoint at the current size (or return the existing one)."""
        chosen = signer or self.signer
        if chosen is None:
            raise LedgerError("no checkpoint key configured")
        time = format_time(now or self.now())
        with self._write():
            size, head = self._head()
            existing = self._query(
                "SELECT note FROM ledger_checkpoints WHERE tree_size = ?", (size,))
            if existing:
                return str(existing[0][0])
            if size > 0:  # never before the last entry it covers (the verifier checks)
                time = max(time, self.entry(size - 1).time)
            root = merkle.fold_frontier(self._frontier(size, head))
            return self._insert_checkpoint(chosen, size, root, time)

    def checkpoints(self, start: int = 0, limit: int | None = None) -> list[str]:
        """The signed notes in tree-size order; with `limit`, at most that many from the
        `start`-th (a page: one indexed read, not every checkpoint of the history)."""
        if start < 0 or (limit is not None and limit < 0):
            raise LedgerError(f"bad checkpoint page: start {start}, limit {limit}")
        page = "" if limit is None else " LIMIT ? OFFSET ?"
        params: tuple[int, ...] = () if limit is None else (limit, start)
        with self._lock:
            notes = [str(row[0]) for row in self._query(
                f"SELECT note FROM ledger_checkpoints ORDER BY tree_size{page}", params)]
        return notes if limit is not None else notes[start:]

    def checkpoint_count(self) -> int:
        with self._lock:
            return int(self._query("SELECT COUNT(*) FROM ledger_checkpoints")[0][0])

    def checkpoint_note(self, tree_size: int) -> str | None:
        """The stored note at `tree_size`, if one was signed there (unverified: the
        verifier checks the column against the note)."""
        with self._lock:
            rows = self._query(
                "SELECT note FROM ledger_checkpoints WHERE tree_size = ?", (tree_size,))
        return str(rows[0][0]) if rows else None

    def checkpoint_rows(self) -> list[tuple[int, bytes, str, str]]:
        """Every stored checkpoint row (tree_size, root_hash, note, time), for the verifier:
        only the note is signed, so it checks the other columns against it."""
        root = "CAST(root_hash AS BLOB)" if self.dialect == "sqlite" else "root_hash"
        with self._lock:
            return [(int(size), bytes(root_hash), str(note), str(time))
                    for size, root_hash, note, time in self._query(
                        f"SELECT tree_size, {root}, note, time FROM ledger_checkpoints "
                        "ORDER BY tree_size")]

    def meta_rows(self) -> list[tuple[str, str]]:
        """Every (key, value) of `ledger_meta`, for the verifier."""
        with self._lock:
            return [(str(key), str(value)) for key, value in self._query(
                "SELECT key, value FROM ledger_meta ORDER BY key")]

    def latest_checkpoint(self) -> str | None:
        with self._lock:
            rows = self._query(
                "SELECT note FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1")
            return str(rows[0][0]) if rows else None

    def verifier_key(self) -> VerifierKey | None:
        with self._lock:
            rows = self._query("SELECT value FROM ledger_meta WHERE key = ?", ("verifier_key",))
            return VerifierKey.parse(rows[0][0]) if rows else None

    # ------------------------------------------------------------------ reads
    def size(self) -> int:
        with self._lock:
            return self._head()[0]

    def head(self) -> tuple[int, bytes]:
        """(size, hash of the last entry) — the hash chain's tip."""
        with self._lock:
            return self._head()

    def head_now(self) -> tuple[int, bytes] | None:
        """`head()`, or None at once when another thread holds the ledger (a write or a
        group commit in progress): for a caller that must not wait (an event loop)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._head()
        finally:
            self._lock.release()

    def entry(self, seq: int) -> Entry:
        with self._lock:
            rows = self._query(
                "SELECT body, entry_hash FROM ledger_entries WHERE seq = ?", (seq,))
        if not rows:
            raise LedgerError(f"no entry with sequence number {seq}")
        return decode_body(bytes(rows[0][0]), bytes(rows[0][1]))

    def raw_rows(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes, bytes]]:
        """(seq, body, entry_hash) in order, read in bounded chunks."""
        for chunk in self.raw_chunks(start, stop):
            yield from chunk

    def raw_chunks(self, start: int = 0, stop: int | None = None
                   ) -> Iterator[list[tuple[int, bytes, bytes]]]:
        """`raw_rows` a list at a time (at most READ_CHUNK rows), for the verifier's loop."""
        # SQLite: CAST, or a TEXT value planted in a BLOB column would come back as str;
        # then the rows are already (int, bytes, bytes) and are passed on without a copy.
        columns = ("seq, CAST(body AS BLOB), CAST(entry_hash AS BLOB)" if self.dialect == "sqlite"
                   else "seq, body, entry_hash")
        statement = f"SELECT {columns} FROM ledger_entries WHERE seq >= ? ORDER BY seq LIMIT ?"
        position = start
        while stop is None or position < stop:
            limit = READ_CHUNK if stop is None else min(READ_CHUNK, stop - position)
            with self._lock:
                rows = self._query(statement, (position, limit))
            if not rows:
                return
            if self.dialect == "sqlite":  # already (int, bytes, bytes): no per-row copy
                yield rows
            else:
                yield [(int(seq), bytes(body), bytes(entry_hash))
                       for seq, body, entry_hash in rows]
            position = int(rows[-1][0]) + 1

    def entries(self, start: int = 0, stop: int | None = None,
                kinds: Iterable[str] | None = None) -> Iterator[Entry]:
        """Entries in [start, stop) in order; with `kinds`, only those kinds, read through
        the kind index (their own rows, not the ledger's)."""
        if kinds is None:
            for _, body, entry_hash in self.raw_rows(start, stop):
                yield decode_body(body, entry_hash)
            return
        wanted = sorted(set(kinds))
        streams = [self._kind_rows(kind, start, stop) for kind in wanted]
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
        for seq, body, entry_hash in merged:
            entry = decode_body(body, entry_hash)
            if entry.kind not in wanted:
                raise LedgerError(f"the kind index says entry {seq} is not what its body "
                                  f"says ({entry.kind}): run `reserve ledger verify "
                                  "--projections`")
            yield entry

    def kind_sequences(self, kinds: Iterable[str], start: int = 0, stop: int | None = None,
                       *, newest_first: bool = False, limit: int | None = None) -> list[int]:
        """Sequence numbers of entries of `kinds` in [start, stop), from the kind index."""
        order = "DESC" if newest_first else "ASC"
        found: list[int] = []
        for kind in sorted(set(kinds)):
            bound = "" if stop is None else " AND seq < ?"
            params: list[Any] = [kind, start, *(() if stop is None else (stop,))]
            tail = "" if limit is None else " LIMIT ?"
            params += [] if limit is None else [limit]
            found += [int(row[0]) for row in self.query(
                f"SELECT seq FROM ledger_entries WHERE kind = ? AND seq >= ?{bound} "
                f"ORDER BY seq {order}{tail}", params)]
        found.sort(reverse=newest_first)
        return found if limit is None else found[:limit]

    def _kind_rows(self, kind: str, start: int, stop: int | None
                   ) -> Iterator[tuple[int, bytes, bytes]]:
        columns = ("seq, CAST(body AS BLOB), CAST(entry_hash AS BLOB)"
                   if self.dialect == "sqlite" else "seq, body, entry_hash")
        bound = "" if stop is None else " AND seq < ?"
        statement = (f"SELECT {columns} FROM ledger_entries WHERE kind = ? AND seq >= ?{bound} "
                     "ORDER BY seq LIMIT ?")
        position = start
        while True:
            params = (kind, position, *(() if stop is None else (stop,)), READ_CHUNK)
            with self._lock:
                rows = self._query(statement, params)
            if not rows:
                return
            for seq, body, entry_hash in rows:
                yield int(seq), bytes(body), bytes(entry_hash)
            if len(rows) < READ_CHUNK:
                return
            position = int(rows[-1][0]) + 1

    def stored_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        """Every stored (level, index, hash), for the verifier."""
        # In node order, read in bounded chunks. On SQLite split and typed in SQL, so the
        # rows are already (int, int, bytes) (CAST: a TEXT value planted in the BLOB column
        # would come back as str).
        columns = (f"node_id >> {LEVEL_SHIFT}, node_id & {(1 << LEVEL_SHIFT) - 1}, "
                   "CAST(hash AS BLOB)" if self.dialect == "sqlite"
                   else "node_id, hash")
        statement = (f"SELECT {columns} FROM ledger_nodes WHERE node_id > ? "
                     "ORDER BY node_id LIMIT ?")
        after = -1
        while True:
            with self._lock:
                rows = self._query(statement, (after, READ_CHUNK))
            if not rows:
                return
            if self.dialect == "sqlite":
                yield from rows
                after = node_id(int(rows[-1][0]), int(rows[-1][1]))
            else:
                for key, value in rows:
                    yield int(key) >> LEVEL_SHIFT, int(key) & ((1 << LEVEL_SHIFT) - 1), bytes(value)
                after = int(rows[-1][0])

    def subtree_hashes(self, level: int, start: int, stop: int) -> list[bytes]:
        """Hashes of the perfect subtrees at `level` with indices [start, stop), in order:
        one range read of the stored nodes (the C2SP tiles of level >= 1 are exactly these
        rows at levels 8, 16, ...), or hashed from the bodies below subtree_level_min().

        Requires 0 <= start <= stop, (stop << level) <= size and stop - start <= 65536.
        """
        if not 0 <= start <= stop or stop - start > 65536 or level < 0:
            raise ProofError(f"subtree range {start}..{stop} at level {level} is not valid")
        with self._lock:
            size = self._head()[0]
            if stop << level > size:
                raise ProofError(f"subtrees up to {stop} at level {level} need "
                                 f"{stop << level} entries; the ledger has {size}")
            if start == stop:
                return []
            if level < self.subtree_level_min():
                found = self._fetch_nodes((level, index) for index in range(start, stop))
                return [found[(level, index)] for index in range(start, stop)]
            column = "CAST(hash AS BLOB)" if self.dialect == "sqlite" else "hash"
            rows = self._query(f"SELECT node_id, {column} FROM ledger_nodes WHERE node_id >= ? "
                               "AND node_id < ? ORDER BY node_id",
                               (node_id(level, start), node_id(level, stop)))
        if [int(key) for key, _ in rows] != [node_id(level, i) for i in range(start, stop)]:
            raise LedgerError(f"stored subtree hashes missing at level {level} in "
                              f"{start}..{stop}: database altered")
        return [bytes(value) for _, value in rows]

    def node_levels(self) -> dict[int, tuple[int, int, int]]:
        """{level: (count, lowest index, highest index)} of the stored subtree hashes."""
        mask = (1 << LEVEL_SHIFT) - 1
        with self._lock:
            rows = self._query(
                f"SELECT node_id >> {LEVEL_SHIFT}, count(*), min(node_id & {mask}), "
                f"max(node_id & {mask}) FROM ledger_nodes GROUP BY node_id >> {LEVEL_SHIFT}")
        return {int(level): (int(count), int(low), int(high))
                for level, count, low, high in rows}

    def node_hash_chunks(self, level: int, count: int) -> Iterator[list[tuple[bytes]]]:
        """Stored hashes of nodes (level, 0..count-1) as one-column rows in index order,
        at most READ_CHUNK a list (a level's rows missing from the table are skipped)."""
        column = "CAST(hash AS BLOB)" if self.dialect == "sqlite" else "hash"
        statement = (f"SELECT {column} FROM ledger_nodes WHERE node_id >= ? AND node_id < ? "
                     "ORDER BY node_id")
        for start in range(0, count, READ_CHUNK):
            stop = min(count, start + READ_CHUNK)
            with self._lock:
                rows = self._query(statement, (node_id(level, start), node_id(level, stop)))
            yield rows if self.dialect == "sqlite" else [(bytes(h),) for (h,) in rows]

    # ----------------------------------------------------------------- proofs
    def _check_size(self, tree_size: int) -> None:
        size = self._head()[0]
        if not 0 <= tree_size <= size:
            raise ProofError(f"tree size {tree_size} not in 0..{size}")

    def root_at(self, tree_size: int) -> bytes:
        """MTH of the first `tree_size` entries, from O(log n) stored hashes."""
        with self._lock:
            self._check_size(tree_size)
            if tree_size == 0:
                return merkle.EMPTY_ROOT
            return self._with_subtrees(lambda range_hash: range_hash(0, tree_size))

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> list[bytes]:
        with self._lock:
            size = self._head()[0] if tree_size is None else tree_size
            self._check_size(size)
            if not 0 <= seq < size:
                raise ProofError(f"entry {seq} is not in the tree of size {size}")
            return self._with_subtrees(lambda rh: merkle.inclusion_path(seq, size, rh))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        with self._lock:
            self._check_size(new_size)
            if not 0 <= old_size <= new_size:
                raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
            return self._with_subtrees(lambda rh: merkle.consistency_path(old_size, new_size, rh))


def _hash_batch(prev: bytes, size: int, bodies: Sequence[bytes], frontier: list[bytes],
                level_min: int) -> tuple[list[tuple[int, bytes, bytes]], list[tuple[int, bytes]],
                                         bytes]:
    """Chain, leaf and subtree hashes of appended bodies: `_native.hash_batch` in Python.

    Returns (entry rows (seq, body, entry_hash), node rows (node_id, hash) of the subtrees
    completed at `level_min` and above, last entry hash) and extends `frontier` (the roots
    of the tree of `size` leaves) in place.
    """
    entry_rows: list[tuple[int, bytes, bytes]] = []
    node_rows: list[tuple[int, bytes]] = []
    sha256, push, pop = hashlib.sha256, frontier.append, frontier.pop
    for seq, body in enumerate(bodies, size):
        prev = sha256(prev + body).digest()
        entry_rows.append((seq, body, prev))
        carry, level = sha256(b"\x00" + body).digest(), 0  # merkle.leaf_hash, inlined
        while seq >> level & 1:
            carry = sha256(b"\x01" + pop() + carry).digest()  # merkle.node_hash
            level += 1
            if level >= level_min:
                node_rows.append(((level << LEVEL_SHIFT) | (seq >> level), carry))
        push(carry)
    return entry_rows, node_rows, prev


_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, extension length
_COPY_TRAILER = b"\xff\xff"
_COPY_HEAD = struct.Struct("!hiqi").pack  # field count, then the bigint's length and value,
_COPY_LENGTH = struct.Struct("!i").pack    # then each further field's length and bytes


def _copy_rows(width: int, rows: Iterable[Sequence[Any]]) -> bytes:
    """The tuples of PostgreSQL's binary COPY stream for `rows` (between _COPY_SIGNATURE and
    _COPY_TRAILER): each a bigint then `width - 1` bytea or text values (text as UTF-8,
    its binary form), none NULL."""
    head, length = _COPY_HEAD, _COPY_LENGTH
    parts: list[bytes] = []
    append = parts.append
    if width == 2:
        for key, value in rows:
            data = value.encode() if type(value) is str else value
            append(head(2, 8, key, len(data)))
            append(data)
    else:
        for key, value, extra in rows:
            append(head(width, 8, key, len(value)))
            append(value)
            append(length(len(extra)))
            append(extra)
    return b"".join(parts)


def _copy_entry_rows(rows: Sequence[tuple[int, bytes, bytes]],
                     items: Sequence[tuple[str, str, Any]]) -> bytes:
    """The binary COPY tuples of entry rows (seq, body, entry_hash) with each item's kind
    (text, as UTF-8) as the fourth column."""
    head, length = _COPY_HEAD, _COPY_LENGTH
    parts: list[bytes] = []
    append = parts.append
    for (seq, body, entry_hash), item in zip(rows, items):
        kind = item[0].encode()
        append(head(4, 8, seq, len(body)))
        append(body)
        append(length(len(entry_hash)))
        append(entry_hash)
        append(length(len(kind)))
        append(kind)
    return b"".join(parts)


def _entry_params_py(rows: Sequence[tuple[int, bytes, bytes]],
                     items: Sequence[tuple[str, str, Any]]) -> list[Any]:
    """`_native.entry_params` in Python: [seq, body, entry_hash, kind, ...], flat."""
    return [value for (seq, body, entry_hash), item in zip(rows, items, strict=True)
            for value in (seq, body, entry_hash, item[0])]


# Rows per multi-row INSERT of entries on SQLite (4 parameters a row: far under SQLite's
# variable limit of 32,766 since 3.32), then the smaller widths for a batch's tail.
ENTRY_INSERT_ROWS = 256
_ENTRY_INSERT_WIDTHS = (ENTRY_INSERT_ROWS, 64, 16)


def _entry_insert_sql(width: int, mark: str) -> str:
    """INSERT of `width` entry rows (seq, body, entry_hash, kind) in one statement, with
    the driver's placeholder `mark`."""
    row = "(" + ", ".join([mark] * 4) + ")"
    return ("INSERT INTO ledger_entries (seq, body, entry_hash, kind) VALUES "
            + ", ".join([row] * width))


_ENTRY_INSERTS = {(width, mark): _entry_insert_sql(width, mark)
                  for width in (1, *_ENTRY_INSERT_WIDTHS) for mark in ("?", "%s")}


def _entry_insert(width: int, mark: str) -> str:
    return _ENTRY_INSERTS[(width, mark)]


_hash_rows = _native.hash_batch if _native is not None else _hash_batch
_entry_params = getattr(_native, "entry_params", None) or _entry_params_py
# getattr: a core built from an older _native.c has no copy_entry_rows (test_native fails).
_copy_entries_of = getattr(_native, "copy_entry_rows", None) or _copy_entry_rows


def _is_append_only_refusal(error: BaseException) -> bool:
    return "append-only" in str(error)
