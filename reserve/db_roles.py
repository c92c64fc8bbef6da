"""Two database roles on PostgreSQL: an owner that migrates, a service that only appends.

The role that owns a table may ALTER it, DISABLE or DROP its triggers, DROP it, and grant
itself anything, so the service must not connect as the owner of the ledger tables. Here
the owner (the migration URL) creates the tables and grants the service's login role (the
service URL, RESERVE_DATABASE_URL) exactly this, by table, computed from the tables that
exist once every migration has run:

- ledger tables (`reserve.ledger.schema.APPEND_ONLY_TABLES`): SELECT and INSERT;
- Alembic version tables (`alembic_version*`): SELECT, so the service sees the schema is
  current and never tries to migrate;
- every other table in the schema (the mutable ones: API users, tokens, ...): SELECT,
  INSERT and UPDATE, and USAGE on the schema's sequences; the read models also DELETE
  (DELETE_TABLES: a rebuild empties and refills them).

Everything is revoked from the service first, so running it again after a migration
leaves exactly these grants. SQLite has no roles: the file's permissions decide who may
write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reserve.db import POSTGRES_PREFIXES
from reserve.errors import ConfigError
from reserve.ledger.schema import APPEND_ONLY_TABLES as LEDGER_TABLES

LEDGER_PRIVILEGES = ("SELECT", "INSERT")
VERSION_PRIVILEGES = ("SELECT",)
MUTABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE")
# The read models (reserve/transfers/readmodel.py): `reserve projections rebuild` empties
# and refills them.
DELETE_TABLES: frozenset[str] = frozenset({"read_model_state", "rm_vaults", "rm_proposals",
                                           "rm_digest_entries", "rm_holdings",
                                           "rm_holding_points"})
VERSION_TABLE_PREFIX = "alembic_version"
# What the service must never hold on a ledger table (ownership aside, which ALTER, DROP
# and DISABLE/DROP TRIGGER need and role_findings checks separately).
FORBIDDEN_PRIVILEGES = ("UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
ROLE_NAME_MAX = 63  # PostgreSQL's NAMEDATALEN - 1


@dataclass(frozen=True)
class Grant:
    table: str
    privileges: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "privileges": list(self.privileges)}


def service_grants(tables: Iterable[str]) -> list[Grant]:
    """What the service role gets on each of `tables` (the tables of one schema)."""
    grants: list[Grant] = []
    for table in sorted(set(tables)):
        privileges: tuple[str, ...]
        if table in LEDGER_TABLES:
            privileges = LEDGER_PRIVILEGES
        elif table.startswith(VERSION_TABLE_PREFIX):
            privileges = VERSION_PRIVILEGES
        elif table in DELETE_TABLES:
            privileges = (*MUTABLE_PRIVILEGES, "DELETE")
        else:
            privileges = MUTABLE_PRIVILEGES
        grants.append(Grant(table, privileges))
    return grants


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_PREFIXES)


def url_credentials(url: str) -> tuple[str | None, str | None]:
    """(user, password) named in a PostgreSQL URL, None where absent."""
    from psycopg.conninfo import conninfo_to_dict

    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        parts = conninfo_to_dict(plain)
    except Exception as error:  # psycopg.ProgrammingError for a malformed URL
        raise ConfigError(f"cannot read the database URL: {error}") from None
    user, password = parts.get("user"), parts.get("password")
    return (str(user) if user else None, str(password) if password else None)


def _scalar(connection: Any, statement: Any, params: tuple[Any, ...] = ()) -> Any:
    row = connection.execute(statement, params).fetchone()
    return row[0] if row else None


def schema_tables(connection: Any) -> list[str]:
    """Tables and partitioned tables of the connection's current schema."""
    return [str(name) for (name,) in connection.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    ).fetchall()]


def _schema_sequences(connection: Any) -> list[str]:
    return [str(name) for (name,) in connection.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind = 'S' ORDER BY c.relname"
    ).fetchall()]


def _ensure_role(connection: Any, role: str, password: str | None) -> bool:
    """Create `role` as a plain login role if missing; True when created."""
    from psycopg import errors, sql

    row = connection.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s",
                             (role,)).fetchone()
    if row is not None:
        if not row[0]:
            raise ConfigError(f"role {role!r} exists but may not log in: "
                              f"ALTER ROLE {role} LOGIN, or name another in the service URL")
        return False
    statement = sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                        "NOREPLICATION NOBYPASSRLS").format(sql.Identifier(role))
    if password:
        statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
    try:
        connection.execute(statement)
    except errors.InsufficientPrivilege:
        raise ConfigError(f"role {role!r} does not exist and the owner role may not create "
                          f"roles: a database administrator runs CREATE ROLE {role} LOGIN "
                          "PASSWORD '...' (or grants the owner CREATEROLE)") from None
    return True


def grant_service(connection: Any, role: str, password: str | None = None
                  ) -> tuple[bool, list[Grant]]:
    """As the owner on `connection`: create the service's login role if missing, and leave
    it exactly the grants of `service_grants` on the current schema's tables.

    Returns (whether the role was created, the grants). Raises ConfigError when `role` is
    the connection's own role, a superuser, or a member of the owner role, since each of
    those may rewrite the ledger whatever is granted.
    """
    from psycopg import sql

    if not role or len(role) > ROLE_NAME_MAX:
        raise ConfigError(f"service role name {role!r} must be 1 to {ROLE_NAME_MAX} characters")
    owner = str(_scalar(connection, "SELECT current_user"))
    if role == owner:
        raise ConfigError(f"the service URL connects as {owner!r}, the role that owns the "
                          "tables: give the service its own role in RESERVE_DATABASE_URL "
                          "and the owner's URL with --owner-url or "
                          "RESERVE_MIGRATION_DATABASE_URL")
    created = _ensure_role(connection, role, password)
    problems = _standing_findings(connection, role)  # what no REVOKE below can undo
    if problems:
        raise ConfigError(f"role {role!r} cannot be the service role: " + "; ".join(problems))
    identifier = sql.Identifier(role)
    schema = str(_scalar(connection, "SELECT current_schema()"))
    if not _scalar(connection, "SELECT has_schema_privilege(%s, current_schema(), 'USAGE')",
                   (role,)):
        connection.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.Identifier(schema), identifier))
    grants = service_grants(schema_tables(connection))
    connection.execute("BEGIN")
    try:
        for grant in grants:
            table = sql.Identifier(grant.table)
            connection.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(table, identifier))
            connection.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in grant.privileges), table, identifier))
        for sequence in _schema_sequences(connection):
            name = sql.Identifier(sequence)
            connection.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(name, identifier))
            connection.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(
                name, identifier))
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    left = role_findings(connection, role)  # e.g. a privilege granted to PUBLIC
    if left:
        raise ConfigError(f"role {role!r} may still change the ledger: " + "; ".join(left))
    return created, grants


def role_findings(connection: Any, role: str | None = None) -> list[str]:
    """What `role` (default: the connection's own) could do to rewrite the ledger tables of
    the current schema, in words; empty when it can only read and append.

    A superuser bypasses every grant and trigger; the owner of a table, or a member of the
    owner's role, may ALTER or DROP it and DISABLE or DROP its triggers; UPDATE, DELETE,
    TRUNCATE, TRIGGER or REFERENCES (held directly, through a role or through PUBLIC) are
    privileges the service never needs.
    """
    chosen = role or str(_scalar(connection, "SELECT current_user"))
    findings = _standing_findings(connection, chosen)
    if findings:
        return findings
    for table, _ in _ledger_tables(connection):
        held = [privilege for privilege in FORBIDDEN_PRIVILEGES
                if _scalar(connection, "SELECT has_table_privilege(%s, %s, %s)",
                           (chosen, table, privilege))]
        if held:
            findings.append(f"{chosen} holds {', '.join(held)} on {table}")
    return findings


def _ledger_tables(connection: Any) -> list[tuple[str, str]]:
    """(table, owner) of the ledger tables in the current schema."""
    return [(str(table), str(owner)) for table, owner in connection.execute(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relname = ANY(%s) ORDER BY c.relname",
        (list(LEDGER_TABLES),)).fetchall()]


def _standing_findings(connection: Any, role: str) -> list[str]:
    """The role's attributes and memberships that let it rewrite the ledger tables."""
    attributes = connection.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s",
                                    (role,)).fetchone()
    if attributes is None:
        return [f"role {role!r} does not exist"]
    if attributes[0]:
        return [f"{role} is a superuser (bypasses every grant and trigger)"]
    owned: dict[str, list[str]] = {}
    for table, owner in _ledger_tables(connection):
        if _scalar(connection, "SELECT pg_has_role(%s, %s, 'MEMBER')", (role, owner)):
            owned.setdefault(owner, []).append(table)
    return [f"{role} is {owner} or a member of it, the owner of {', '.join(tables)} (may "
            "ALTER or DROP them and disable or drop their triggers)"
            for owner, tables in sorted(owned.items())]
