"""Bring a ledger database's schema to the current Alembic revision.

One Alembic chain covers the whole database: the append-only ledger tables (0001, and the
kind index 0004, folded into the entry rows by 0007), the mutable account tables beside
them (0002 and 0003, modelled in reserve/api/models.py) and the read models (0005 and 0006,
reserve/transfers/readmodel.py). Whichever
store opens first, the ledger or the account store, migrates the database to the head.

Opening a ledger checks the recorded revision with one query and runs Alembic only when
the database is behind, so start-up stays fast. Concurrent first opens are serialised (a
file lock beside a SQLite database, a session advisory lock on PostgreSQL) so two
processes never race to create the tables. An in-memory SQLite ledger (unit tests) gets
the ledger's DDL directly, since Alembic's own connection would see a different, empty
database; an in-memory account store runs the migrations on its own connection
(`upgrade_connection`).

On PostgreSQL a role that may not create tables (the service's own role) never migrates:
it gets a clear error telling it to run `reserve db init` as the owner.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reserve.errors import LedgerError
from reserve.ledger import schema

HEAD_REVISION = "0007_kind_in_entries"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK_ID = 0x5245534551


def current_revision(connection: Any, dialect: str) -> str | None:
    try:
        if dialect == "sqlite":
            exists = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
            ).fetchall()
        else:
            exists = connection.execute("SELECT to_regclass('alembic_version')").fetchall()
            exists = [row for row in exists if row[0] is not None]
        if not exists:
            return None
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        return str(rows[0][0]) if rows else None
    except Exception:
        return None


@contextmanager
def _serialised(url: str, connection: Any, dialect: str) -> Iterator[None]:
    if dialect == "postgresql":
        connection.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            yield
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
        return
    path = Path(url[len("sqlite:///"):])
    with open(path.with_name(path.name + ".migrate-lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alembic_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", _alembic_url(url))
    return config


def upgrade_connection(connection: Any) -> None:
    """Run every migration on an SQLAlchemy `connection` and commit: for an in-memory
    SQLite database, which only the connection that made it can see."""
    from alembic import command

    config = alembic_config("sqlite://")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    connection.commit()


def upgrade(url: str, connection: Any, dialect: str) -> None:
    """Migrate the database behind `connection` (opened on `url`) to HEAD_REVISION."""
    if current_revision(connection, dialect) == HEAD_REVISION:
        return
    if dialect == "sqlite" and url.endswith(":memory:"):
        for statement in (*schema.SQLITE, *schema.KINDS_SQLITE, *schema.KIND_COLUMN_SQLITE):
            connection.execute(statement)
        return
    with _serialised(url, connection, dialect):
        found = current_revision(connection, dialect)
        if found == HEAD_REVISION:
            return
        if dialect == "postgresql" and not connection.execute(
                "SELECT has_schema_privilege(current_schema(), 'CREATE')").fetchone()[0]:
            # The service's own role (see reserve/db_roles.py) may not create tables.
            raise LedgerError(f"the database schema is at revision {found or 'none'} and this "
                              f"code needs {HEAD_REVISION}, but this role may not migrate it: "
                              "run `reserve db init` with the owner's URL "
                              "(RESERVE_MIGRATION_DATABASE_URL or --owner-url)")
        from alembic import command

        command.upgrade(alembic_config(url), "head")
