"""Create the append-only ledger tables, nodes, checkpoints and their guards."""

from __future__ import annotations

from alembic import op

from reserve.ledger import schema

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    statements = schema.POSTGRES if dialect == "postgresql" else schema.SQLITE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its tables are never dropped by a migration")
