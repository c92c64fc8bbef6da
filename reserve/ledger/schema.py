"""The ledger's tables and the database rules that keep them append-only.

Used by the Alembic migration; kept here as plain DDL per dialect so a reader sees
exactly what the database enforces. On SQLite, triggers abort every UPDATE and DELETE.
On PostgreSQL, triggers abort UPDATE, DELETE and TRUNCATE (superusers included), and the
group role `reserve_app` (NOLOGIN, kept for databases made by this migration) is granted
only SELECT and INSERT. The triggers do not stop the tables' owner, who may disable or
drop them: the service connects as its own login role, which `reserve db init` grants
only SELECT and INSERT on these tables (reserve/db_roles.py).
"""

from __future__ import annotations

TABLES = ("ledger_entries", "ledger_nodes", "ledger_checkpoints", "ledger_meta")

SQLITE = [
    """CREATE TABLE ledger_entries (
        seq INTEGER PRIMARY KEY CHECK (seq >= 0),
        body BLOB NOT NULL,
        entry_hash BLOB NOT NULL CHECK (length(entry_hash) = 32))""",
    # Perfect-subtree hashes at level >= 1, keyed by (level << 40) | index.
    """CREATE TABLE ledger_nodes (
        node_id INTEGER PRIMARY KEY,
        hash BLOB NOT NULL CHECK (length(hash) = 32))""",
    """CREATE TABLE ledger_checkpoints (
        tree_size INTEGER PRIMARY KEY CHECK (tree_size >= 0),
        root_hash BLOB NOT NULL CHECK (length(root_hash) = 32),
        note TEXT NOT NULL,
        time TEXT NOT NULL)""",
    """CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
] + [
    f"""CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table}
        BEGIN SELECT RAISE(ABORT, 'ledger is append-only: {action} on {table} refused'); END"""
    for table in TABLES for action in ("UPDATE", "DELETE")
]

POSTGRES = [
    """CREATE TABLE ledger_entries (
        seq BIGINT PRIMARY KEY CHECK (seq >= 0),
        body BYTEA NOT NULL,
        entry_hash BYTEA NOT NULL CHECK (length(entry_hash) = 32))""",
    """CREATE TABLE ledger_nodes (
        node_id BIGINT PRIMARY KEY,
        hash BYTEA NOT NULL CHECK (length(hash) = 32))""",
    """CREATE TABLE ledger_checkpoints (
        tree_size BIGINT PRIMARY KEY CHECK (tree_size >= 0),
        root_hash BYTEA NOT NULL CHECK (length(root_hash) = 32),
        note TEXT NOT NULL,
        time TEXT NOT NULL)""",
    """CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
        END $$ LANGUAGE plpgsql""",
    """DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'reserve_app') THEN
            CREATE ROLE reserve_app NOLOGIN;
        END IF;
    END $$""",
] + [
    statement
    for table in TABLES
    for statement in (
        f"""CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()""",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC",
        f"GRANT SELECT, INSERT ON {table} TO reserve_app",
    )
]

# -- the kind index (revision 0004) ------------------------------------------------------------
# One row per entry, written by every append in the same transaction: (seq, kind), indexed
# by (kind, seq) so a reader that wants a few kinds reads only their entries instead of
# decoding the whole ledger. It is derived (the body is the evidence), append-only like
# the entries, and `reserve ledger verify --projections` checks it against the bodies.
# Since revision 0007 the kind is a column of `ledger_entries` (below) and this table is
# gone; its DDL stays for the migrations that made it.

KINDS_SQLITE = [
    """CREATE TABLE ledger_kinds (
        seq INTEGER PRIMARY KEY CHECK (seq >= 0),
        kind TEXT NOT NULL)""",
    "CREATE INDEX ledger_kinds_by_kind ON ledger_kinds (kind, seq)",
] + [
    f"""CREATE TRIGGER ledger_kinds_no_{action.lower()} BEFORE {action} ON ledger_kinds
        BEGIN SELECT RAISE(ABORT, 'ledger is append-only: {action} on ledger_kinds refused'); END"""
    for action in ("UPDATE", "DELETE")
]

KINDS_POSTGRES = [
    """CREATE TABLE ledger_kinds (
        seq BIGINT PRIMARY KEY CHECK (seq >= 0),
        kind TEXT NOT NULL)""",
    "CREATE INDEX ledger_kinds_by_kind ON ledger_kinds (kind, seq)",
    """CREATE TRIGGER ledger_kinds_no_change BEFORE UPDATE OR DELETE ON ledger_kinds
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()""",
    """CREATE TRIGGER ledger_kinds_no_truncate BEFORE TRUNCATE ON ledger_kinds
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()""",
    "REVOKE UPDATE, DELETE, TRUNCATE ON ledger_kinds FROM PUBLIC",
    "GRANT SELECT, INSERT ON ledger_kinds TO reserve_app",
]

# -- the kind in the entry row (revision 0007) --------------------------------------------------
# `ledger_kinds` cost every append a second row (and on PostgreSQL two more B-tree entries);
# the kind is now a column of `ledger_entries`, indexed by (kind, seq), written with the
# entry in the same row. It is still derived (the body is the evidence) and checked by
# `reserve ledger verify --projections`. Filling it for the entries already written is the
# one UPDATE the ledger ever runs: the migration lifts the table's UPDATE refusal for that
# statement alone, as the tables' owner, and puts it back in the same transaction. The
# kinds are copied from `ledger_kinds` (what the index said, so a wrong row stays a finding),
# '' where it had none.
APPEND_ONLY_TABLES = TABLES

KIND_COLUMN_SQLITE = [
    "ALTER TABLE ledger_entries ADD COLUMN kind TEXT NOT NULL DEFAULT ''",
    "DROP TRIGGER ledger_entries_no_update",
    """UPDATE ledger_entries SET kind = coalesce(
        (SELECT k.kind FROM ledger_kinds k WHERE k.seq = ledger_entries.seq), '')""",
    """CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
        BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE on ledger_entries refused'); END""",
    "CREATE INDEX ledger_entries_by_kind ON ledger_entries (kind, seq)",
    "DROP TABLE ledger_kinds",
]

KIND_COLUMN_POSTGRES = [
    "ALTER TABLE ledger_entries ADD COLUMN kind TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_change",
    "UPDATE ledger_entries e SET kind = k.kind FROM ledger_kinds k WHERE k.seq = e.seq",
    "ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_change",
    "ALTER TABLE ledger_entries ALTER COLUMN kind DROP DEFAULT",
    "CREATE INDEX ledger_entries_by_kind ON ledger_entries (kind, seq)",
    "DROP TABLE ledger_kinds",
]
