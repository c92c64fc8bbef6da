"""Create the mutable account tables, API users and their tokens, beside the ledger's.

Until this revision the API's account store created them itself with
`CREATE TABLE IF NOT EXISTS` on first open, so a database at 0001 may already hold them
(any database the service has run on) or not (one only the CLI has used). Both upgrade
here: a table that exists is checked column by column against the one this revision
would create and kept with its rows; a missing one is created. Checking beats stamping
because it needs no knowledge outside the database (who knows which databases were
served?) and refuses, instead of hiding, a table of the same name that is something else.

The columns are spelt out instead of imported from reserve/api/models.py: a migration is
frozen history, the models are today's code (a test checks that the two agree).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_accounts"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

USER_COLUMNS = ("person", "name", "institution", "roles", "vaults", "created_at",
                "disabled_at")
TOKEN_COLUMNS = ("token_id", "token_hash", "person", "role", "label", "issued_by",
                 "created_at", "expires_at", "revoked_at", "revoked_by")
TOKEN_PERSON_INDEX = "api_tokens_person"  # noqa: S105


def _existing_matches(inspector: sa.Inspector, table: str, columns: tuple[str, ...]) -> bool:
    """True when `table` exists with exactly `columns`; False when it does not exist."""
    if not inspector.has_table(table):
        return False
    found = tuple(column["name"] for column in inspector.get_columns(table))
    if found != columns:
        raise RuntimeError(f"table {table} exists with columns {list(found)}, not the "
                           f"{list(columns)} this revision expects: rename it and upgrade again")
    return True


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not _existing_matches(inspector, "api_users", USER_COLUMNS):
        op.create_table(
            "api_users",
            sa.Column("person", sa.Text(), primary_key=True),
            sa.Column("name", sa.Text(), nullable=False),
            sa.Column("institution", sa.Text(), nullable=False),
            sa.Column("roles", sa.Text(), nullable=False),
            sa.Column("vaults", sa.Text(), nullable=False),
            sa.Column("created_at", sa.Text(), nullable=False),
            sa.Column("disabled_at", sa.Text(), nullable=True))
    if not _existing_matches(inspector, "api_tokens", TOKEN_COLUMNS):
        op.create_table(
            "api_tokens",
            sa.Column("token_id", sa.Text(), primary_key=True),
            sa.Column("token_hash", sa.Text(), nullable=False),
            sa.Column("person", sa.Text(), sa.ForeignKey("api_users.person"), nullable=False),
            sa.Column("role", sa.Text(), nullable=False),
            sa.Column("label", sa.Text(), nullable=False),
            sa.Column("issued_by", sa.Text(), nullable=False),
            sa.Column("created_at", sa.Text(), nullable=False),
            sa.Column("expires_at", sa.Text(), nullable=False),
            sa.Column("revoked_at", sa.Text(), nullable=True),
            sa.Column("revoked_by", sa.Text(), nullable=True),
            sa.UniqueConstraint("token_hash"))
    indexes = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("api_tokens")}
    if TOKEN_PERSON_INDEX not in indexes:
        op.create_index(TOKEN_PERSON_INDEX, "api_tokens", ["person"])


def downgrade() -> None:
    # Users and tokens are the service's credentials; dropping them is an operator's
    # deliberate act, never a side effect of a downgrade.
    raise RuntimeError("0002_accounts is not downgraded: drop api_tokens and api_users by hand")
