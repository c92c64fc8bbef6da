"""The service's own PostgreSQL credentials can append to the ledger and nothing more.

`reserve db init` runs as the tables' owner (RESERVE_MIGRATION_DATABASE_URL), creates the
service's login role named in RESERVE_DATABASE_URL and grants it SELECT and INSERT on the
ledger tables. Then, connected as the service, every way to rewrite history through SQL is
refused by the database itself: UPDATE, DELETE, TRUNCATE, ALTER, DROP, and disabling or
dropping the append-only triggers; appends, checkpoints and verification still work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from reserve.api.store import AccountStore
from reserve.errors import LedgerError
from reserve.ledger import CheckpointSigner, Ledger
from reserve.ledger.migrate import HEAD_REVISION
from reserve.ledger.schema import TABLES
from reserve.ledger.verify import verify_ledger
from tests.support import postgres
from tests.support.legacy_accounts import NOW, database_at_0001, use_accounts

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def roles(postgres_server: str, postgres_url: str) -> Iterator[tuple[str, str]]:
    """(owner URL, service URL) on a fresh database; the service role does not exist yet."""
    with postgres.split_roles(postgres_server, postgres_url) as urls:
        yield urls


def db(command: str, owner_url: str | None, service_url: str,
       *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RESERVE_DATABASE_URL": service_url}
    env.pop("RESERVE_MIGRATION_DATABASE_URL", None)
    if owner_url is not None:
        env["RESERVE_MIGRATION_DATABASE_URL"] = owner_url
    return subprocess.run([sys.executable, "-m", "reserve.cli.main", "db", command, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def refused(connection: psycopg.Connection, statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        connection.execute(statement)


def test_service_credentials_append_and_cannot_rewrite(roles: tuple[str, str],
                                                       signer: CheckpointSigner) -> None:
    owner_url, service_url = roles
    init = db("init", owner_url, service_url, "--json")
    assert init.returncode == 0, init.stderr
    done = json.loads(init.stdout)
    assert done["created_role"] and done["service_role"].startswith("reserve_service_")
    grants = {g["table"]: g["privileges"] for g in done["grants"]}
    assert {table: grants[table] for table in TABLES} == {t: ["SELECT", "INSERT"] for t in TABLES}
    assert grants["alembic_version"] == ["SELECT"]
    assert grants["api_tokens"] == grants["api_users"] == grants["api_token_grants"] == [
        "SELECT", "INSERT", "UPDATE"]

    # Appends, checkpoints and verification as the service.
    with Ledger.open(service_url, signer=signer, checkpoint_every=8) as ledger:
        for i in range(20):
            ledger.append("ledger.note", "service", {"i": i})
        ledger.checkpoint()
        assert ledger.size() == 20 and len(ledger.checkpoints()) == 3
        assert verify_ledger(ledger, signer.verifier).ok

    with psycopg.connect(service_url, autocommit=True) as connection:
        assert connection.execute("SELECT count(*) FROM ledger_entries").fetchone() == (20,)
        for table in TABLES:
            refused(connection, f"UPDATE {table} SET {_column(table)} = {_column(table)}")
            refused(connection, f"DELETE FROM {table}")
            refused(connection, f"TRUNCATE {table}")
            refused(connection, f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            refused(connection, f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_change")
            refused(connection, f"DROP TRIGGER {table}_no_change ON {table}")
            refused(connection, f"ALTER TABLE {table} ADD COLUMN planted TEXT")
            refused(connection, f"ALTER TABLE {table} OWNER TO CURRENT_USER")
            refused(connection, f"DROP TABLE {table}")
            refused(connection, f"CREATE TRIGGER planted BEFORE INSERT ON {table} FOR EACH "
                                "ROW EXECUTE FUNCTION ledger_refuse_change()")
        refused(connection, "CREATE TABLE ledger_entries_copy (seq BIGINT)")
        refused(connection, "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS "
                            "trigger AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql")
        refused(connection, f"SET ROLE {done['owner_role']}")
        refused(connection, "UPDATE alembic_version SET version_num = version_num")
    check = db("check", None, service_url)
    assert check.returncode == 0 and "may only read and append" in check.stdout

    # The owner's own credentials are what the service must not hold.
    as_owner = db("check", None, owner_url)
    assert as_owner.returncode == 1 and "may ALTER or DROP them" in as_owner.stdout


def _column(table: str) -> str:
    return {"ledger_entries": "seq", "ledger_nodes": "node_id", "ledger_checkpoints": "note",
            "ledger_meta": "value"}[table]


def test_init_refuses_a_service_role_that_could_rewrite(roles: tuple[str, str],
                                                        postgres_url: str) -> None:
    owner_url, _ = roles
    same = db("init", owner_url, owner_url)
    assert same.returncode == 2 and "the role that owns the tables" in same.stderr
    superuser = db("init", owner_url, postgres_url)  # the test server's superuser
    assert superuser.returncode == 2 and "is a superuser" in superuser.stderr


def test_service_role_never_migrates(roles: tuple[str, str], postgres_server: str) -> None:
    # Before `reserve db init` the service role has no tables to read: opening the ledger
    # names the command to run instead of failing half-way through a migration.
    owner_url, service_url = roles
    user, password = postgres.role_of(service_url)
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            psycopg.sql.Identifier(user), psycopg.sql.Literal(password)))
    with pytest.raises(LedgerError, match="run `reserve db init` with the owner's URL"):
        Ledger.open(service_url)
    assert db("init", owner_url, service_url).returncode == 0  # the existing role is used
    Ledger.open(service_url).close()


def test_init_again_grants_tables_added_since(roles: tuple[str, str]) -> None:
    # Grants are computed from the tables that exist: a table a later migration adds (the
    # mutable kind) is granted on the next run, and the ledger's grants stay as they were.
    owner_url, service_url = roles
    assert db("init", owner_url, service_url).returncode == 0
    with psycopg.connect(owner_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE api_sessions (id BIGSERIAL PRIMARY KEY, person TEXT)")
    again = db("init", None, service_url, "--owner-url", owner_url, "--json")
    assert again.returncode == 0, again.stderr
    grants = {g["table"]: g["privileges"] for g in json.loads(again.stdout)["grants"]}
    assert grants["api_sessions"] == ["SELECT", "INSERT", "UPDATE"]
    assert grants["ledger_entries"] == ["SELECT", "INSERT"]
    with psycopg.connect(service_url, autocommit=True) as connection:
        connection.execute("INSERT INTO api_sessions (person) VALUES ('vic')")  # its sequence
        connection.execute("UPDATE api_sessions SET person = 'vic-viewer'")
        refused(connection, "DELETE FROM api_sessions")


def test_superuser_edits_are_detected_not_prevented(roles: tuple[str, str], postgres_url: str,
                                                    signer: CheckpointSigner) -> None:
    # A superuser (or the owner) may disable the triggers and rewrite a row: the database
    # cannot stop that. The verifier, reading as the service, names the edited entry.
    owner_url, service_url = roles
    assert db("init", owner_url, service_url).returncode == 0
    with Ledger.open(service_url, signer=signer, checkpoint_every=8) as ledger:
        for i in range(20):
            ledger.append("ledger.note", "service", {"i": i, "memo": f"payment {i}"})
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_change")
        connection.execute("UPDATE ledger_entries SET body = convert_to(replace(convert_from("
                           "body, 'UTF8'), 'payment 13', 'payment 93'), 'UTF8') WHERE seq = 13")
        connection.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_change")
    with Ledger.open(service_url) as ledger:
        report = verify_ledger(ledger, signer.verifier)
    assert not report.ok and report.first_bad_seq == 13


def test_an_old_database_upgrades_under_init_and_the_service_needs_no_ddl(
        roles: tuple[str, str], postgres_server: str) -> None:
    # A database as the code before revision 0002 left it: ledger at 0001, account tables
    # made by the store's start-up DDL, with a user and a token. The service role may not
    # migrate it and says so; `reserve db init` (the owner) upgrades it in place, and the
    # service then reads the old rows and changes accounts through SQLModel sessions with
    # SELECT, INSERT and UPDATE only.
    owner_url, service_url = roles
    user, password = postgres.role_of(service_url)
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            psycopg.sql.Identifier(user), psycopg.sql.Literal(password)))
    database_at_0001(owner_url, legacy=True)
    with pytest.raises(LedgerError, match="run `reserve db init` with the owner's URL"):
        AccountStore.open(service_url)
    init = db("init", owner_url, service_url, "--json")
    assert init.returncode == 0, init.stderr
    grants = {g["table"]: g["privileges"] for g in json.loads(init.stdout)["grants"]}
    assert grants["api_tokens"] == grants["api_users"] == grants["api_token_grants"] == [
        "SELECT", "INSERT", "UPDATE"]
    with psycopg.connect(service_url, autocommit=True) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (
            HEAD_REVISION,)
        assert connection.execute(
            "SELECT has_schema_privilege(current_schema(), 'CREATE')").fetchone() == (False,)
    store = AccountStore.open(service_url)
    try:
        assert store.require_user("ana").vaults == ("v1",)
        use_accounts(store)
        assert store.disable_user("ana", "root", NOW) == ["0123456789abcdef"]
        assert store.user("ana").disabled_at is not None  # type: ignore[union-attr]
    finally:
        store.close()
    with psycopg.connect(service_url, autocommit=True) as connection:
        refused(connection, "DELETE FROM api_tokens")
        refused(connection, "DROP TABLE api_tokens")
