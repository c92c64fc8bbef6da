"""`reserve db init` and `reserve db check`: the database's schema and roles.

`init` runs as the tables' owner (the migration URL: --owner-url, else
RESERVE_MIGRATION_DATABASE_URL or `ledger.migration_database_url`): it migrates the ledger
and account tables, creates the service's login role named in the service URL
(RESERVE_DATABASE_URL) if missing, and grants it only what `reserve.db_roles` lists. Run it
once before the first `reserve serve` and again after every upgrade. `check` connects with
the service URL and says whether that role could rewrite the ledger.
"""

from __future__ import annotations

from typing import Any

import typer

from reserve.cli.common import ConfigOption, DatabaseOption, JsonOption, emit, fail, load_settings
from reserve.errors import ConfigError, ReserveError

db_app = typer.Typer(no_args_is_help=True, help="The database: schema and roles.")
OwnerOption = typer.Option(None, "--owner-url", help="URL of the role that owns the tables "
                           "(default RESERVE_MIGRATION_DATABASE_URL, else the service URL).")
ServiceRoleOption = typer.Option(None, "--service-role",
                                 help="The service's role (default: the service URL's user).")
SQLITE_NOTE = ("SQLite has no roles: the database file's permissions decide who may write; "
               "its triggers refuse UPDATE and DELETE through SQL")


def _database(connection: Any) -> str:
    return str(connection.execute("SELECT current_database()").fetchone()[0])


def initialise(owner_url: str, service_url: str, service_role: str | None = None
               ) -> dict[str, Any]:
    """Migrate as the owner, then set up the service role; what was done, as JSON."""
    from reserve.db import connect
    from reserve.db_roles import grant_service, is_postgres, role_findings, url_credentials
    from reserve.ledger import Ledger

    if is_postgres(owner_url) != is_postgres(service_url) or (
            not is_postgres(owner_url) and owner_url != service_url):
        raise ConfigError("the owner's and the service's URL must name the same database")
    # One Alembic chain for the database: the ledger tables and the account tables (0002).
    Ledger.open(owner_url).close()
    if not is_postgres(service_url):
        return {"dialect": "sqlite", "database_url": service_url, "service_role": None,
                "created_role": False, "grants": [], "note": SQLITE_NOTE}
    user, password = url_credentials(service_url)
    role = service_role or user
    if role is None:
        raise ConfigError("the service URL names no user: put the service's own role in "
                          "RESERVE_DATABASE_URL (postgresql://reserve_service:...@host/db) "
                          "or pass --service-role")
    import psycopg

    connection, _ = connect(owner_url, ConfigError)
    try:
        owner = str(connection.execute("SELECT current_user").fetchone()[0])
        database = _database(connection)
        created, grants = grant_service(connection, role, password if role == user else None)
    except psycopg.Error as error:
        raise ConfigError(f"setting up role {role!r} as {owner_url.split('@')[-1]}: "
                          f"{error}".strip()) from None
    finally:
        connection.close()
    if role == user:  # the service's own view: it connects to this database and cannot rewrite
        connection, _ = connect(service_url, ConfigError)
        try:
            if _database(connection) != database:
                raise ConfigError(f"the service URL names database {_database(connection)!r}, "
                                  f"the owner's {database!r}")
            left = role_findings(connection)
        finally:
            connection.close()
        if left:
            raise ConfigError("the service role may still change the ledger: " + "; ".join(left))
    return {"dialect": "postgresql", "database": database, "owner_role": owner,
            "service_role": role, "created_role": created,
            "grants": [grant.to_json() for grant in grants]}


@db_app.command("init")
def init(owner_url: str = OwnerOption, service_role: str = ServiceRoleOption,
         config: str = ConfigOption, database_url: str = DatabaseOption,
         as_json: bool = JsonOption) -> None:
    """Migrate the schema as the tables' owner and grant the service role only appends."""
    settings = load_settings(config)
    service_url = database_url or settings.ledger.database_url
    owner = owner_url or settings.ledger.migration_database_url or service_url
    try:
        done = initialise(owner, service_url, service_role)
    except ReserveError as error:
        fail(str(error))
    if done["dialect"] == "sqlite":
        emit(done, as_json, f"schema current at {done['database_url']}\nnote: {SQLITE_NOTE}")
        return
    lines = [f"schema current in {done['database']}, owned by {done['owner_role']}",
             f"service role {done['service_role']} "
             f"({'created' if done['created_role'] else 'existing'}) may:"]
    lines += [f"  {', '.join(g['privileges'])} on {g['table']}" for g in done["grants"]]
    emit(done, as_json, "\n".join(lines))


@db_app.command("check")
def check(config: str = ConfigOption, database_url: str = DatabaseOption,
          as_json: bool = JsonOption) -> None:
    """Whether the service URL's role could rewrite the ledger; exit 1 if it could."""
    from reserve.db import connect
    from reserve.db_roles import is_postgres, role_findings

    settings = load_settings(config)
    service_url = database_url or settings.ledger.database_url
    if not is_postgres(service_url):
        emit({"dialect": "sqlite", "findings": [], "note": SQLITE_NOTE}, as_json,
             f"note: {SQLITE_NOTE}")
        return
    try:
        connection, _ = connect(service_url, ConfigError)
        try:
            role = str(connection.execute("SELECT current_user").fetchone()[0])
            findings = role_findings(connection)
        finally:
            connection.close()
    except ReserveError as error:
        fail(str(error))
    emit({"dialect": "postgresql", "role": role, "findings": findings}, as_json,
         "\n".join([f"{role} may rewrite the ledger:", *[f"  {f}" for f in findings]])
         if findings else f"{role} may only read and append to the ledger tables")
    if findings:
        raise typer.Exit(1)
