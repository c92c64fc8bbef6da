"""The account tables as the code before Alembic revision 0002 made them, for upgrade tests.

Until 0002 reserve/api/store.py ran LEGACY_SCHEMA on every open; databases made that way
exist and must upgrade in place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command

from reserve.api import accounts
from reserve.api.store import AccountStore
from reserve.db import connect
from reserve.errors import AuthError, ConfigError
from reserve.ledger.migrate import alembic_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# What reserve/api/store.py ran on every open before revision 0002, verbatim.
LEGACY_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS api_users (
        person TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        institution TEXT NOT NULL,
        roles TEXT NOT NULL,
        vaults TEXT NOT NULL,
        created_at TEXT NOT NULL,
        disabled_at TEXT)""",
    """CREATE TABLE IF NOT EXISTS api_tokens (
        token_id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        person TEXT NOT NULL REFERENCES api_users(person),
        role TEXT NOT NULL,
        label TEXT NOT NULL,
        issued_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT,
        revoked_by TEXT)""",
    "CREATE INDEX IF NOT EXISTS api_tokens_person ON api_tokens (person)",
]
LEGACY_ROWS = [
    "INSERT INTO api_users VALUES ('ana', 'Ana', 'CB', '[\"custodian\"]', '[\"v1\"]', "
    "'2026-02-01T10:00:00Z', NULL)",
    "INSERT INTO api_tokens VALUES ('0123456789abcdef', '" + "ab" * 32 + "', 'ana', "
    "'custodian', 'laptop', 'root', '2026-02-01T10:00:00Z', '2027-02-01T10:00:00Z', NULL, NULL)",
]


def engine_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def database_at_0001(url: str, legacy: bool) -> None:
    """A database as the code before 0002 left it: the ledger migrated, and (if `legacy`)
    the account tables made by the store's own DDL, with a user and a token in them."""
    command.upgrade(alembic_config(url), "0001_ledger")
    if legacy:
        connection, _ = connect(url, ConfigError)
        try:
            for statement in LEGACY_SCHEMA + LEGACY_ROWS:
                connection.execute(statement)
        finally:
            connection.close()


def use_accounts(store: AccountStore) -> None:
    """Create, issue, authenticate, revoke and disable through the store's sessions."""
    written: list[tuple[str, dict[str, Any]]] = []
    accounts.create_user(store, written.extend, person="vic", name="Vic", institution="AG",
                         roles=["viewer"], vaults=[], now=NOW)
    issued, token = accounts.issue_token(store, written.extend, person="vic", role="viewer",
                                         expires_in_seconds=3600, label="", issued_by="root",
                                         now=NOW)
    assert accounts.authenticate(store, issued.token, NOW).person == "vic"
    accounts.revoke_token(store, written.extend, token_id=token.token_id, by="root", now=NOW)
    with pytest.raises(AuthError, match="revoked"):
        accounts.authenticate(store, issued.token, NOW)
    assert [kind for kind, _ in written] == ["auth.user_changed", "auth.token_issued",
                                             "auth.token_revoked"]
