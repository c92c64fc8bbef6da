"""Fold the kind index into the entry row: `ledger_entries.kind`, indexed by (kind, seq).

Until now every append wrote a second row per entry into `ledger_kinds` (seq, kind); the
kind is now written with the entry itself, which saves an append that row and its B-tree
entries (see docs/benchmarks.md). Existing entries take their kind from `ledger_kinds`,
which is then dropped; the append-only triggers of `ledger_entries` hold again before the
transaction ends (reserve/ledger/schema.py, KIND_COLUMN_*).
"""

from __future__ import annotations

from alembic import op

from reserve.ledger import schema

revision = "0007_kind_in_entries"
down_revision = "0006_document_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in schema.KIND_COLUMN_POSTGRES if postgres else schema.KIND_COLUMN_SQLITE:
        op.execute(statement)


def downgrade() -> None:
    """Back to revision 0006's shape, nothing lost: `ledger_kinds` made again (its DDL,
    triggers and grants of 0004) and filled from the column, then the column dropped."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in schema.KINDS_POSTGRES if postgres else schema.KINDS_SQLITE:
        op.execute(statement)
    op.execute("INSERT INTO ledger_kinds (seq, kind) SELECT seq, kind FROM ledger_entries")
    op.execute("DROP INDEX ledger_entries_by_kind")
    op.execute("ALTER TABLE ledger_entries DROP COLUMN kind")
