"""Users and API tokens: the service's only mutable state, in their own tables.

They live in the ledger's database (SQLite or PostgreSQL, same URL) but never in the
append-only ledger tables: a token must be revocable, a user disableable. The ledger
keeps the history instead (`auth.token_issued`, `auth.token_revoked`, `api.request`).
Plain SQL through the same drivers the ledger uses; one connection and one lock per store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reserve.db import connect
from reserve.errors import AccountConflict, AccountNotFound, ConfigError

SCHEMA = [
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
SCHEMA_LOCK_ID = 0x5245534541  # serialises concurrent first opens on PostgreSQL
LIST_MAX = 10_000


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class User:
    person: str
    name: str
    institution: str
    roles: tuple[str, ...]
    vaults: tuple[str, ...]
    created_at: str
    disabled_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"person": self.person, "name": self.name, "institution": self.institution,
                "roles": list(self.roles), "vaults": list(self.vaults),
                "created_at": self.created_at, "disabled_at": self.disabled_at}


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    token_hash: str
    person: str
    role: str
    label: str
    issued_by: str
    created_at: str
    expires_at: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if parse_instant(self.expires_at) <= now else "active"

    def to_json(self, now: datetime) -> dict[str, Any]:
        """Public view: never the hash itself, only its first hex digits."""
        return {"token_id": self.token_id, "hash_prefix": self.token_hash[:12],
                "person": self.person, "role": self.role, "label": self.label,
                "issued_by": self.issued_by, "created_at": self.created_at,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at,
                "revoked_by": self.revoked_by, "status": self.status(now)}


_USER_COLUMNS = "person, name, institution, roles, vaults, created_at, disabled_at"
_TOKEN_COLUMNS = ("token_id, token_hash, person, role, label, issued_by, "  # noqa: S105
                  "created_at, expires_at, revoked_at, revoked_by")


def _user(row: Sequence[Any]) -> User:
    return User(person=row[0], name=row[1], institution=row[2],
                roles=tuple(json.loads(row[3])), vaults=tuple(json.loads(row[4])),
                created_at=row[5], disabled_at=row[6])


def _token(row: Sequence[Any]) -> TokenRecord:
    return TokenRecord(*row)


class AccountStore:
    """Users and tokens in `api_users` / `api_tokens`, created on first open."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self.dialect = dialect
        self._db = connection
        self._lock = threading.RLock()

    @classmethod
    def open(cls, url: str) -> AccountStore:
        connection, dialect = connect(url, ConfigError)
        if dialect == "sqlite":
            connection.execute("PRAGMA foreign_keys=ON")
        store = cls(connection, dialect)
        store._create_tables()
        return store

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _create_tables(self) -> None:
        with self._lock:
            if self.dialect == "postgresql":
                # The service's own role may not create (reserve/db_roles.py): once the
                # tables exist (`reserve db init` made them as the owner), run no DDL.
                found = self._db.execute(
                    "SELECT to_regclass('api_users') IS NOT NULL AND "
                    "to_regclass('api_tokens') IS NOT NULL AND "
                    "to_regclass('api_tokens_person') IS NOT NULL").fetchone()
                if found[0]:
                    return
                self._db.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_ID,))
            try:
                for statement in SCHEMA:
                    self._db.execute(statement)
            finally:
                if self.dialect == "postgresql":
                    self._db.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_ID,))

    def _run(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        if self.dialect == "postgresql":
            statement = statement.replace("?", "%s")
        with self._lock:
            cursor = self._db.execute(statement, params)
            return list(cursor.fetchall()) if cursor.description else []

    # ------------------------------------------------------------------ users
    def create_user(self, user: User) -> User:
        with self._lock:
            if self.user(user.person) is not None:
                raise AccountConflict(f"user {user.person!r} already exists")
            self._run(f"INSERT INTO api_users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (user.person, user.name, user.institution, json.dumps(list(user.roles)),
                       json.dumps(list(user.vaults)), user.created_at, user.disabled_at))
        return user

    def update_user(self, user: User) -> User:
        with self._lock:
            if self.user(user.person) is None:
                raise AccountNotFound(f"no user {user.person!r}")
            self._run("UPDATE api_users SET name = ?, institution = ?, roles = ?, vaults = ? "
                      "WHERE person = ?",
                      (user.name, user.institution, json.dumps(list(user.roles)),
                       json.dumps(list(user.vaults)), user.person))
        return self.require_user(user.person)

    def user(self, person: str) -> User | None:
        rows = self._run(f"SELECT {_USER_COLUMNS} FROM api_users WHERE person = ?", (person,))
        return _user(rows[0]) if rows else None

    def require_user(self, person: str) -> User:
        found = self.user(person)
        if found is None:
            raise AccountNotFound(f"no user {person!r}")
        return found

    def users(self) -> list[User]:
        rows = self._run(f"SELECT {_USER_COLUMNS} FROM api_users ORDER BY person LIMIT ?",
                         (LIST_MAX,))
        return [_user(row) for row in rows]

    def disable_user(self, person: str, by: str, now: datetime) -> list[str]:
        """Disable a user and revoke their live tokens; returns the revoked token ids."""
        stamp = format_instant(now)
        with self._lock:
            if self.require_user(person).disabled_at is not None:
                raise AccountConflict(f"user {person!r} is already disabled")
            live = [row[0] for row in self._run(
                "SELECT token_id FROM api_tokens WHERE person = ? AND revoked_at IS NULL "
                "ORDER BY token_id", (person,))]
            self._run("UPDATE api_users SET disabled_at = ? WHERE person = ?", (stamp, person))
            self._run("UPDATE api_tokens SET revoked_at = ?, revoked_by = ? "
                      "WHERE person = ? AND revoked_at IS NULL", (stamp, by, person))
        return live

    # ----------------------------------------------------------------- tokens
    def insert_token(self, record: TokenRecord) -> TokenRecord:
        with self._lock:
            if self.token(record.token_id) is not None:
                raise AccountConflict(f"token {record.token_id} already exists")
            self._run(f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (record.token_id, record.token_hash, record.person, record.role,
                       record.label, record.issued_by, record.created_at, record.expires_at,
                       record.revoked_at, record.revoked_by))
        return record

    def token(self, token_id: str) -> TokenRecord | None:
        rows = self._run(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE token_id = ?",
                         (token_id,))
        return _token(rows[0]) if rows else None

    def tokens(self, person: str | None = None) -> list[TokenRecord]:
        if person is None:
            rows = self._run(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens "
                             "ORDER BY created_at, token_id LIMIT ?", (LIST_MAX,))
        else:
            rows = self._run(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE person = ? "
                             "ORDER BY created_at, token_id LIMIT ?", (person, LIST_MAX))
        return [_token(row) for row in rows]

    def revoke_token(self, token_id: str, by: str, now: datetime) -> TokenRecord:
        with self._lock:
            found = self.token(token_id)
            if found is None:
                raise AccountNotFound(f"no token {token_id!r}")
            if found.revoked_at is not None:
                raise AccountConflict(f"token {token_id} was already revoked at "
                                      f"{found.revoked_at}")
            self._run("UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE token_id = ?",
                      (format_instant(now), by, token_id))
            return self.token(token_id) or found
