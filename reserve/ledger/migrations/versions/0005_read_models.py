"""Create the read models: vaults, proposals and holdings as of the ledger, kept in step.

They are a cache of the ledger, never a source of truth: every append updates them in its
own transaction (reserve/transfers/readmodel.py), `reserve projections rebuild` recreates
them and `reserve ledger verify --projections` compares them with a full replay. The rows
are filled by the first writer that opens the database after this revision (it catches
up from size 0), not here. Columns are spelt out (frozen history, not today's code).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_read_models"
down_revision = "0004_entry_kinds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "read_model_state",
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False))
    op.create_table(
        "rm_vaults",
        sa.Column("vault", sa.Text(), primary_key=True),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False))
    op.create_table(
        "rm_proposals",
        sa.Column("digest", sa.Text(), primary_key=True),
        sa.Column("vault", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("approved_at_us", sa.BigInteger(), nullable=True),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False))
    op.create_index("rm_proposals_by_seq", "rm_proposals", ["seq"])
    op.create_index("rm_proposals_by_action", "rm_proposals", ["action", "seq"])
    op.create_index("rm_proposals_by_vault", "rm_proposals", ["vault", "seq"])
    op.create_index("rm_proposals_by_state", "rm_proposals", ["state", "seq"])
    op.create_index("rm_proposals_by_approval", "rm_proposals", ["vault", "approved_at_us"])
    op.create_table(
        "rm_digest_entries",
        sa.Column("digest", sa.Text(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True))
    op.create_table(
        "rm_holdings",
        sa.Column("vault", sa.Text(), primary_key=True),
        sa.Column("asset", sa.Text(), primary_key=True),
        sa.Column("balance", sa.Text(), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False))
    op.create_table(
        "rm_holding_points",
        sa.Column("vault", sa.Text(), primary_key=True),
        sa.Column("asset", sa.Text(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("time", sa.Text(), nullable=False),
        sa.Column("balance", sa.Text(), nullable=False))


def downgrade() -> None:
    for table in ("rm_holding_points", "rm_holdings", "rm_digest_entries", "rm_proposals",
                  "rm_vaults", "read_model_state"):
        op.drop_table(table)
