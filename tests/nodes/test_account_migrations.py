"""The account tables come from Alembic revision 0002 and match their SQLModel models, on
SQLite and PostgreSQL, whether the database is new or was made by the code before it.

Until 0002 the account store created `api_users` and `api_tokens` itself at start-up with
the DDL kept in tests/support/legacy_accounts.py, so a database at revision 0001 may already hold them,
rows and all. Upgrading such a database keeps the rows and ends with the same catalog as a
new one; a same-named table with other columns is refused, not adopted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect
from sqlmodel import SQLModel

from reserve.api.models import ACCOUNT_TABLES
from reserve.api.store import AccountStore
from reserve.db import connect
from reserve.errors import AccountConflict, ConfigError
from reserve.ledger import Ledger
from reserve.ledger.migrate import HEAD_REVISION, alembic_config, current_revision
from tests.support.legacy_accounts import NOW, database_at_0001, engine_url, use_accounts


def _revision(url: str) -> str | None:
    connection, dialect = connect(url, ConfigError)
    try:
        return current_revision(connection, dialect)
    finally:
        connection.close()


def _catalog(url: str) -> dict[str, Any]:
    """What the database says about the account tables, in comparable form."""
    engine = create_engine(engine_url(url))
    try:
        inspector = inspect(engine)
        found: dict[str, Any] = {}
        for table in ACCOUNT_TABLES:
            if not inspector.has_table(table):  # api_token_grants before 0003
                continue
            found[table] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"])
                            for c in inspector.get_columns(table)],
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "unique": sorted(tuple(u["column_names"])
                                 for u in inspector.get_unique_constraints(table)),
                "foreign_keys": [(tuple(f["constrained_columns"]), f["referred_table"],
                                  tuple(f["referred_columns"]))
                                 for f in inspector.get_foreign_keys(table)],
                "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                  for i in inspector.get_indexes(table)),
            }
        return found
    finally:
        engine.dispose()


def _model_differences(url: str) -> list[Any]:
    """Alembic's autogenerate diff between the database and the SQLModel models, limited
    to the account tables (the ledger's are raw SQL and have no models)."""
    engine = create_engine(engine_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "include_name": lambda name, kind, _: kind != "table" or name in ACCOUNT_TABLES})
            models = MetaData()
            for table in ACCOUNT_TABLES:
                SQLModel.metadata.tables[table].to_metadata(models)
            return list(compare_metadata(context, models))
    finally:
        engine.dispose()


def test_a_new_database_gets_the_models_tables(ledger_url: str) -> None:
    AccountStore.open(ledger_url).close()
    assert _revision(ledger_url) == HEAD_REVISION
    assert _model_differences(ledger_url) == []
    store = AccountStore.open(ledger_url)  # again: one query, no migration
    try:
        use_accounts(store)
    finally:
        store.close()


def test_the_ledger_opening_first_also_creates_them(ledger_url: str) -> None:
    Ledger.open(ledger_url).close()
    assert _revision(ledger_url) == HEAD_REVISION
    assert _model_differences(ledger_url) == []


def test_a_database_with_the_old_tables_upgrades_in_place(ledger_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    database_at_0001(ledger_url, legacy=True)
    before = _catalog(ledger_url)
    assert _revision(ledger_url) == "0001_ledger"
    store = AccountStore.open(ledger_url)
    try:
        assert _revision(ledger_url) == HEAD_REVISION
        ana = store.require_user("ana")
        assert (ana.roles, ana.vaults, ana.created_at) == (("custodian",), ("v1",),
                                                           "2026-02-01T10:00:00Z")
        assert [t.token_id for t in store.tokens("ana")] == ["0123456789abcdef"]
        use_accounts(store)
        assert store.disable_user("ana", "root", NOW) == ["0123456789abcdef"]
    finally:
        store.close()
    after = _catalog(ledger_url)
    assert set(before) == {"api_users", "api_tokens"}
    assert {table: after[table] for table in before} == before  # kept, rows and all
    # ... and the same as a new database's (api_token_grants made by 0003 in both).
    if ledger_url.startswith("sqlite"):
        fresh = f"sqlite:///{tmp_path}/fresh.sqlite"
        AccountStore.open(fresh).close()
        assert _catalog(fresh) == _pk_not_null(after)
        assert sorted(change[0][3] for change in _model_differences(ledger_url)) == [
            "person", "token_id"]
    else:
        assert _model_differences(ledger_url) == []


def _pk_not_null(catalog: dict[str, Any]) -> dict[str, Any]:
    """SQLite's one quirk: a `TEXT PRIMARY KEY` column of the old DDL allows NULL (SQLite
    keeps that old bug for compatibility), while the migration's and the models' primary
    keys are NOT NULL. Nothing ever stored NULL there; every other detail is equal."""
    fixed: dict[str, Any] = {}
    for table, facts in catalog.items():
        keys = set(facts["primary_key"])
        fixed[table] = {**facts, "columns": [(name, kind, nullable and name not in keys)
                                             for name, kind, nullable in facts["columns"]]}
    return fixed


def test_a_same_named_table_of_another_shape_is_refused(ledger_url: str) -> None:
    command.upgrade(alembic_config(ledger_url), "0001_ledger")
    connection, _ = connect(ledger_url, ConfigError)
    try:
        connection.execute("CREATE TABLE api_users (person TEXT PRIMARY KEY, secret TEXT)")
    finally:
        connection.close()
    with pytest.raises(RuntimeError, match="exists with columns"):
        AccountStore.open(ledger_url)
    assert _revision(ledger_url) == "0001_ledger"


def test_the_tables_constraints_hold_under_the_sessions(ledger_url: str) -> None:
    # What no check in Python covers, the database refuses: a token for no user (SQLite
    # enforces foreign keys only when each connection asks) and a second token with the
    # same hash under another id. Either is a conflict that quotes no row.
    first, second = AccountStore.open(ledger_url), AccountStore.open(ledger_url)
    try:
        use_accounts(first)
        token = first.tokens("vic")[0]
        orphan = dataclasses.replace(token, token_id="f" * 16, token_hash="0" * 64,
                                     person="nobody")
        with pytest.raises(AccountConflict, match="another process") as refused:
            second.insert_token(orphan)
        twin = dataclasses.replace(token, token_id="e" * 16)
        with pytest.raises(AccountConflict, match="another process") as refused:
            second.insert_token(twin)
        assert token.token_hash not in str(refused.value)
        assert [t.token_id for t in second.tokens()] == [token.token_id]
    finally:
        first.close()
        second.close()
