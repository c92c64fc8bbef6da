"""Opening a database connection by URL, shared by the ledger and the API's account store.

`sqlite:///path` (or `sqlite:///:memory:`) and `postgresql://...` (also `postgres://` and
SQLAlchemy's `postgresql+psycopg://`). Both stores run their own SQL on the raw DB-API
connection in autocommit mode and manage their transactions explicitly.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from reserve.errors import ReserveError

POSTGRES_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def create_private(path: Path) -> None:
    """Create `path` (if new) readable by its owner only, in a folder only its owner may
    list; SQLite gives the -wal and -shm files the database file's permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def connect(url: str, error: type[ReserveError]) -> tuple[Any, str]:
    """(connection, dialect) for `url`; `error` is raised for a bad URL or no server."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path != ":memory:":
            create_private(Path(path))
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                     timeout=60.0)
        connection.execute("PRAGMA busy_timeout=60000")
        return connection, "sqlite"
    if url.startswith(POSTGRES_PREFIXES):
        import psycopg

        plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            return psycopg.connect(plain, autocommit=True), "postgresql"
        except psycopg.OperationalError as problem:
            raise error(f"cannot connect to PostgreSQL: {problem}".strip()) from None
    raise error(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
