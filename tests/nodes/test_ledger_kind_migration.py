"""Revision 0007 folds the kind index into the entry rows, on SQLite and PostgreSQL.

A ledger written before it (revision 0006: the kind in `ledger_kinds`, a row per entry)
opens, migrates, verifies with its checkpoints, reads by kind as before and keeps
appending; its entries stay append-only, and the kinds it had indexed are the ones the new
column holds (copied, not re-derived: a wrong index row stays a finding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from alembic import command

from bench.ledger import make_items
from reserve.db import connect
from reserve.errors import AppendOnlyViolation, ConfigError
from reserve.ledger import CheckpointSigner, Ledger
from reserve.ledger.migrate import HEAD_REVISION, alembic_config, current_revision
from reserve.ledger.verify import verify_ledger
from tests.nodes.test_ledger_store import NOW

OLD_REVISION = "0006_document_index"


def _old_ledger(url: str, tmp_path: Any, signer: CheckpointSigner, count: int,
                forged: dict[int, str]) -> list[Any]:
    """A database at revision 0006 holding what the code of that revision wrote for
    `count` entries: the same entry, node, checkpoint and meta rows (made here by today's
    code in a scratch ledger and copied), and one `ledger_kinds` row per entry."""
    items = make_items(count)
    with Ledger.open(f"sqlite:///{tmp_path}/scratch.sqlite", signer=signer,
                     checkpoint_every=100) as scratch:
        for start in range(0, count, 70):
            scratch.append_many(items[start:start + 70], now=NOW)
        tables: dict[str, tuple[str, Sequence[Any]]] = {
            "ledger_entries": ("seq, body, entry_hash", list(scratch.raw_rows())),
            "ledger_nodes": ("node_id, hash", [tuple(row) for row in scratch.query(
                "SELECT node_id, hash FROM ledger_nodes")]),
            "ledger_checkpoints": ("tree_size, root_hash, note, time", [tuple(row) for row in
                                   scratch.query("SELECT tree_size, root_hash, note, time "
                                                 "FROM ledger_checkpoints")]),
            "ledger_meta": ("key, value", scratch.meta_rows()),
            "ledger_kinds": ("seq, kind", [(i, forged.get(i, item[0]))
                                           for i, item in enumerate(items)]),
        }
    command.upgrade(alembic_config(url), OLD_REVISION)
    connection, dialect = connect(url, ConfigError)
    try:
        assert current_revision(connection, dialect) == OLD_REVISION
        mark = "?" if dialect == "sqlite" else "%s"
        if dialect == "sqlite":
            connection.execute("BEGIN")
        for table, (columns, rows) in tables.items():
            marks = ", ".join([mark] * len(columns.split(",")))
            cursor = connection.cursor()
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        connection.execute("COMMIT")
    finally:
        connection.close()
    return items


def test_an_old_ledger_migrates_verifies_and_reads_by_kind(ledger_url: str, tmp_path: Any,
                                                           signer: CheckpointSigner) -> None:
    items = _old_ledger(ledger_url, tmp_path, signer, 450, forged={7: "vault.frozen"})
    with Ledger.open(ledger_url, signer=signer, checkpoint_every=100) as ledger:
        connection, dialect = ledger._db, ledger.dialect
        assert current_revision(connection, dialect) == HEAD_REVISION
        report = verify_ledger(ledger, signer.verifier)
        assert report.ok and report.entries == 450, report
        assert len(ledger.checkpoints()) == 4
        # The column holds what the index held, the forged row included.
        stored = dict(ledger.query("SELECT seq, kind FROM ledger_entries ORDER BY seq"))
        assert stored == {i: "vault.frozen" if i == 7 else item[0]
                          for i, item in enumerate(items)}
        deposits = [entry.seq for entry in ledger.entries() if entry.kind == "btc.deposit"]
        assert [entry.seq for entry in ledger.entries(kinds=["btc.deposit"])] == deposits
        assert ledger.kind_sequences(["btc.deposit"], newest_first=True,
                                     limit=3) == deposits[::-1][:3]
        with pytest.raises(Exception, match="kind index says entry 7"):
            list(ledger.entries(kinds=["vault.frozen"]))
        tables = ledger.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'ledger_kinds'"
            if dialect == "sqlite" else "SELECT to_regclass('ledger_kinds')")
        assert tables in ([], [(None,)])
        # Append-only again after the migration's one UPDATE.
        statements = ["UPDATE ledger_entries SET kind = 'x'", "DELETE FROM ledger_entries"]
        if dialect == "postgresql":
            statements.append("TRUNCATE ledger_entries")
        for statement in statements:
            with pytest.raises(AppendOnlyViolation, match="append-only"):
                with ledger._write():
                    ledger._db.execute(statement)
        # And it goes on: new entries carry their kind, the whole still verifies.
        more = make_items(120, start=450)
        ledger.append_many(more, now=NOW)
        assert verify_ledger(ledger, signer.verifier).ok
        assert [e.seq for e in ledger.entries(450, kinds=["evm.confirmed"])] == [
            450 + i for i, item in enumerate(more) if item[0] == "evm.confirmed"]


def test_the_fold_downgrades_and_upgrades_without_loss(ledger_url: str, tmp_path: Any,
                                                        signer: CheckpointSigner) -> None:
    _old_ledger(ledger_url, tmp_path, signer, 130, forged={})
    with Ledger.open(ledger_url, signer=signer) as ledger:
        kinds = ledger.query("SELECT seq, kind FROM ledger_entries ORDER BY seq")
    command.downgrade(alembic_config(ledger_url), OLD_REVISION)
    connection, _ = connect(ledger_url, ConfigError)
    try:
        assert [tuple(row) for row in connection.execute(
            "SELECT seq, kind FROM ledger_kinds ORDER BY seq").fetchall()] == \
            [tuple(row) for row in kinds]
    finally:
        connection.close()
    with Ledger.open(ledger_url, signer=signer) as ledger:
        assert ledger.query("SELECT seq, kind FROM ledger_entries ORDER BY seq") == kinds
        assert verify_ledger(ledger, signer.verifier).ok
