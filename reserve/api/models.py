"""SQLModel tables for the service's mutable state: API users, their tokens, token grants.

These are the rows that change (a token is revoked, a user disabled), so they live outside
the append-only ledger, which keeps their history instead (`auth.*` entries). Their schema
is created by the Alembic revision `0002_accounts` (reserve/ledger/migrations/versions),
and `api_token_grants` (tokens one admin asked for someone else, awaiting a second
admin) by `0003_token_grants`; each spells every column out rather than importing these classes: a migration is frozen
history, these models are today's code. `tests/unit/test_account_models.py` checks that the
two agree. Every column is TEXT, as the tables were before SQLModel: times are
`YYYY-MM-DDTHH:MM:SSZ` strings and role and vault lists JSON arrays, so existing rows read
back unchanged.
"""

from __future__ import annotations

from sqlalchemy import Index, Integer, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class ApiUser(SQLModel, table=True):
    __tablename__ = "api_users"

    person: str = Field(primary_key=True, sa_type=Text)
    name: str = Field(sa_type=Text)
    institution: str = Field(sa_type=Text)
    roles: str = Field(sa_type=Text)  # JSON array of role names, sorted
    vaults: str = Field(sa_type=Text)  # JSON array of vault ids, sorted
    created_at: str = Field(sa_type=Text)
    disabled_at: str | None = Field(default=None, sa_type=Text)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"), Index("api_tokens_person", "person"))

    token_id: str = Field(primary_key=True, sa_type=Text)
    token_hash: str = Field(sa_type=Text)  # SHA-256 of the token, hex; never the token
    person: str = Field(foreign_key="api_users.person", sa_type=Text)
    role: str = Field(sa_type=Text)
    label: str = Field(sa_type=Text)
    issued_by: str = Field(sa_type=Text)
    created_at: str = Field(sa_type=Text)
    expires_at: str = Field(sa_type=Text)
    revoked_at: str | None = Field(default=None, sa_type=Text)
    revoked_by: str | None = Field(default=None, sa_type=Text)


class ApiTokenGrant(SQLModel, table=True):
    """A token one admin asked for someone else: issued only when a second admin approves
    it before `expires_at`. `state` is pending, approved (then `token_id` names the token)
    or rejected; a closed grant is never reopened."""

    __tablename__ = "api_token_grants"

    grant_id: str = Field(primary_key=True, sa_type=Text)
    person: str = Field(foreign_key="api_users.person", sa_type=Text)
    role: str = Field(sa_type=Text)
    label: str = Field(sa_type=Text)
    expires_in_seconds: int = Field(sa_type=Integer)  # of the token, once issued
    requested_by: str = Field(sa_type=Text)
    created_at: str = Field(sa_type=Text)
    expires_at: str = Field(sa_type=Text)  # of the grant
    state: str = Field(sa_type=Text)
    closed_by: str | None = Field(default=None, sa_type=Text)
    closed_at: str | None = Field(default=None, sa_type=Text)
    token_id: str | None = Field(default=None, sa_type=Text)


# In SQLModel.metadata, parents first.
ACCOUNT_TABLES = ("api_users", "api_tokens", "api_token_grants")
