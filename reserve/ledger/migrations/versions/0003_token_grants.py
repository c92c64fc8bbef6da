"""Create `api_token_grants`: tokens one admin asked for someone else, awaiting a second.

An admin alone may no longer issue a privileged token for another person; the request is
kept here until a different admin approves or rejects it, or it expires. The columns are
spelt out instead of imported from reserve/api/models.py: a migration is frozen history,
the models are today's code (a test checks that the two agree).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_token_grants"
down_revision = "0002_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_token_grants",
        sa.Column("grant_id", sa.Text(), primary_key=True),
        sa.Column("person", sa.Text(), sa.ForeignKey("api_users.person"), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("expires_in_seconds", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("closed_by", sa.Text(), nullable=True),
        sa.Column("closed_at", sa.Text(), nullable=True),
        sa.Column("token_id", sa.Text(), nullable=True))


def downgrade() -> None:
    # Pending grants are requests in flight; dropping them is an operator's deliberate act.
    raise RuntimeError("0003_token_grants is not downgraded: drop api_token_grants by hand")
