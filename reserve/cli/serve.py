"""`reserve serve` (the HTTP service under uvicorn) and `reserve token ...` (API tokens).

The first admin token can only come from here: whoever can run this command on the
service's database is trusted to bootstrap access. `token issue` creates the user when it
does not exist yet. As in the API, a token of a privileged role (operator, custodian,
auditor, or an admin once one exists) for someone else is not issued by one admin: it
becomes a grant that a second admin approves (`token grants|approve|reject`). Issuing and revoking are recorded in the ledger like their API
counterparts; the token text is printed once and stored nowhere.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from reserve.api.auth import PERSON_PATTERN, Role
from reserve.cli.common import (
    ConfigOption,
    DatabaseOption,
    JsonOption,
    emit,
    fail,
    load_settings,
    open_ledger,
)
from reserve.config import Settings
from reserve.errors import AccountError, ConfigError

# FastAPI and the account store load in the commands that use them.
if TYPE_CHECKING:
    from reserve.api import accounts
    from reserve.api.deps import ApiOptions
    from reserve.api.store import AccountStore

token_app = typer.Typer(no_args_is_help=True, help="API tokens: issue, revoke, list.")
_DURATION = re.compile(r"^([1-9][0-9]{0,8})([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """`90`, `90s`, `15m`, `12h`, `30d` -> seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ConfigError(f"duration {text!r}: use a number with s, m, h or d (e.g. 30d)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def options_from(settings: Settings) -> ApiOptions:
    """The `[api]` table of the config file, if any, over the defaults."""
    from reserve.api.deps import ApiOptions

    table = settings.raw.get("api", {})
    if not isinstance(table, dict):
        raise ConfigError("config.api must be a table")
    defaults = ApiOptions()
    known = {name for name in defaults.__dataclass_fields__ if name != "title"}
    unknown = sorted(set(table) - known - {"host", "port", "workers"})
    if unknown:
        raise ConfigError(f"config.api: unknown keys {unknown}")
    chosen = {key: value for key, value in table.items() if key in known}
    for key, value in chosen.items():
        expected = type(getattr(defaults, key))
        if type(value) is not expected:
            raise ConfigError(f"config.api.{key}: expected {expected.__name__}, got {value!r}")
    return ApiOptions(**{**defaults.__dict__, **chosen})


WORKERS_DEFAULT = 2
WORKERS_MAX = 64


def serve(host: str = typer.Option(None, "--host", help="Default 127.0.0.1 (config api.host)."),
          port: int = typer.Option(None, "--port", min=1, max=65535,
                                   help="Default 8000 (config api.port)."),
          workers: int = typer.Option(None, "--workers", min=1, max=WORKERS_MAX,
                                      help=f"Worker processes, default {WORKERS_DEFAULT} "
                                           "(config api.workers)."),
          log_level: str = typer.Option("info", "--log-level"),
          config: str = ConfigOption, database_url: str = DatabaseOption) -> None:
    """Run the API and dashboard on the configured database (SQLite or PostgreSQL).

    A supervising parent process holds the socket and runs `--workers` worker processes;
    a worker that dies (even by SIGKILL or a crash) is replaced and the others keep
    answering meanwhile.
    """
    from uvicorn.supervisors import Multiprocess

    settings = load_settings(config)
    api_table: dict[str, Any] = settings.raw.get("api", {})
    chosen_host = host or str(api_table.get("host", "127.0.0.1"))
    chosen_port = port or int(api_table.get("port", 8000))
    chosen_workers = workers or api_table.get("workers", WORKERS_DEFAULT)
    if type(chosen_workers) is not int or not 1 <= chosen_workers <= WORKERS_MAX:
        raise ConfigError(f"config.api.workers: expected 1..{WORKERS_MAX}, got {chosen_workers}")
    options_from(settings)  # refuse a bad [api] table here, not in every worker
    # Create the schema and the checkpoint key once, before the workers race to.
    url = database_url or settings.ledger.database_url
    if url.endswith(":memory:") and chosen_workers > 1:
        raise ConfigError("an in-memory ledger is private to one process: use --workers 1 "
                          "or a database file")
    with open_ledger(settings, url) as ledger:
        shown = ledger.url
    # Workers are fresh interpreters (spawned): they find their config in the environment.
    os.environ["RESERVE_CONFIG"] = str(settings.path.resolve())
    os.environ["RESERVE_DATABASE_URL"] = url
    typer.echo(f"serving {shown} on http://{chosen_host}:{chosen_port} with {chosen_workers} "
               f"workers (dashboard at /dashboard, API schema at /openapi.json)", err=True)
    server_config = uvicorn_config(chosen_host, chosen_port, chosen_workers, log_level)
    Multiprocess(server_config, sockets=[server_config.bind_socket()]).run()


def uvicorn_config(host: str, port: int, workers: int, log_level: str) -> Any:
    """The workers' uvicorn configuration: HTTP parsed by httptools (C, llhttp) and the
    event loop of uvloop (libuv), not uvicorn's pure-Python h11 and asyncio's loop."""
    import uvicorn

    return uvicorn.Config("reserve.cli.serve:worker_app", factory=True, host=host, port=port,
                          log_level=log_level, workers=workers, http="httptools",
                          loop="uvloop")


def worker_app() -> Any:
    """The application of one worker process, from $RESERVE_CONFIG and $RESERVE_DATABASE_URL
    as `serve` set them; the app opens its own ledger and closes it on shutdown."""
    from reserve.api.app import create_app

    settings = load_settings(None)
    return create_app(settings, options=options_from(settings))


def _cli_actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


@contextmanager
def _accounts(config: str | None, database_url: str | None, by: str
              ) -> Iterator[tuple[Any, Callable[[list[tuple[str, dict[str, Any]]]], None],
                                  datetime]]:
    """(account store, ledger recorder acting as `by`, now), closed after."""
    from reserve.api.store import AccountStore

    settings = load_settings(config)
    now = datetime.now(UTC)
    with open_ledger(settings, database_url) as ledger:
        store = AccountStore.open(ledger.url)
        try:
            def record(items: list[tuple[str, dict[str, Any]]]) -> None:
                ledger.append_many([(kind, by, payload) for kind, payload in items], now=now)

            yield store, record, now
        finally:
            store.close()


BOOTSTRAP_ADMINS = 2  # the two-person rule needs two admins before it can work


def _bootstrapping(store: Any, person: str, role: str) -> bool:
    """The first two admins are made here alone: until two exist, nobody can approve."""
    others = [user for user in store.users() if Role.ADMIN.value in user.roles
              and user.person != person and user.disabled_at is None]
    return role == Role.ADMIN.value and len(others) < BOOTSTRAP_ADMINS


@token_app.command("issue")
def issue(person: str = typer.Option(..., "--person", help="Who the token acts for."),
          role: Role = typer.Option(..., "--role"),
          vault: list[str] = typer.Option([], "--vault", help="A vault (custodians; repeat)."),
          name: str = typer.Option("", "--name"),
          institution: str = typer.Option("", "--institution"),
          expires_in: str = typer.Option("30d", "--expires-in", help="e.g. 12h, 30d."),
          label: str = typer.Option("", "--label"),
          actor: str = typer.Option(None, "--actor", help="The admin asking (recorded)."),
          config: str = ConfigOption, database_url: str = DatabaseOption,
          as_json: bool = JsonOption) -> None:
    """Issue a token, or ask a second admin to approve one (creating the user if new).

    A viewer token, an admin's own token, and the very first admin's are issued at once
    and printed once. Any other token for someone else becomes a pending grant that a
    different admin approves: `reserve token approve GRANT --actor ADMIN` (or the API).
    """
    if not re.match(PERSON_PATTERN, person):
        fail(f"person {person!r} must match {PERSON_PATTERN}")
    seconds = parse_duration(expires_in)
    by = _cli_actor(actor)
    from reserve.api import accounts

    with _accounts(config, database_url, by) as (store, record, now):
        _ensure_user(store, record, person, role.value, vault, name, institution, now)
        if accounts.needs_approval(person=person, role=role.value, by=by) \
                and not _bootstrapping(store, person, role.value):
            grant = accounts.request_token(store, record, person=person, role=role.value,
                                           expires_in_seconds=seconds, label=label,
                                           requested_by=by, now=now)
            emit(grant.to_json(now), as_json,
                 f"grant {grant.grant_id}: a {role.value} token for {person} waits for a "
                 f"second admin (not {by}): reserve token approve {grant.grant_id} "
                 f"--actor ADMIN; expires {grant.expires_at}")
            return
        issued, token = accounts.issue_token(
            store, record, person=person, role=role.value, expires_in_seconds=seconds,
            label=label, issued_by=by, now=now)
    emit({"token": issued.token, **token.to_json(now)}, as_json,
         f"token for {person} as {role.value}, expires {token.expires_at} "
         f"(id {token.token_id}); shown once, keep it safe:\n{issued.token}")


@token_app.command("grants")
def grants(config: str = ConfigOption, database_url: str = DatabaseOption,
           as_json: bool = JsonOption) -> None:
    """Token grants waiting for a second admin."""
    with _accounts(config, database_url, "cli") as (store, _record, now):
        pending = [grant.to_json(now) for grant in store.pending_grants()]
    lines = [f"{g['grant_id']}  {g['person']:<20} {g['role']:<10} asked by "
             f"{g['requested_by']}, expires {g['expires_at']}" for g in pending]
    emit({"grants": pending}, as_json, "\n".join(lines) if lines else "no pending grants")


@token_app.command("approve")
def approve_grant(grant_id: str,
                  actor: str = typer.Option(..., "--actor", help="The second admin."),
                  config: str = ConfigOption, database_url: str = DatabaseOption,
                  as_json: bool = JsonOption) -> None:
    """Approve another admin's grant: the token is issued and printed once."""
    from reserve.api import accounts

    with _grant_admin(grant_id, actor, config, database_url) as (store, record, now):
        issued, token = accounts.approve_grant(store, record, grant_id=grant_id, by=actor,
                                               now=now)
    emit({"token": issued.token, "grant_id": grant_id, **token.to_json(now)}, as_json,
         f"token for {token.person} as {token.role}, approved by {actor}, expires "
         f"{token.expires_at} (id {token.token_id}); shown once:\n{issued.token}")


@token_app.command("reject")
def reject_grant(grant_id: str,
                 actor: str = typer.Option(..., "--actor", help="The admin rejecting."),
                 config: str = ConfigOption, database_url: str = DatabaseOption,
                 as_json: bool = JsonOption) -> None:
    """Reject a pending grant (any admin, its requester included)."""
    from reserve.api import accounts

    with _grant_admin(grant_id, actor, config, database_url) as (store, record, now):
        closed = accounts.reject_grant(store, record, grant_id=grant_id, by=actor, now=now)
    emit(closed.to_json(now), as_json, f"grant {grant_id} rejected by {actor}")


@contextmanager
def _grant_admin(grant_id: str, actor: str, config: str | None, database_url: str | None
                 ) -> Iterator[tuple[Any, Callable[[list[tuple[str, dict[str, Any]]]], None],
                                     datetime]]:
    """The account store for an admin `actor` acting on grant `grant_id` (both checked)."""
    if not re.match(r"^[0-9a-f]{16}$", grant_id):
        fail("a grant id is 16 hex digits (see `reserve token grants`)")
    with _accounts(config, database_url, actor) as (store, record, now):
        _require_admin(store, actor)
        yield store, record, now


def _require_admin(store: Any, person: str) -> None:
    user = store.user(person)
    if user is None or Role.ADMIN.value not in user.roles or user.disabled_at is not None:
        raise AccountError(f"{person!r} is not an admin of this service")


def _ensure_user(store: AccountStore, record: accounts.Record, person: str, role: str,
                 vaults: list[str], name: str, institution: str, now: datetime) -> None:
    from reserve.api import accounts

    user = store.user(person)
    if user is None:
        accounts.create_user(store, record, person=person, name=name or person,
                             institution=institution, roles=[role], vaults=vaults, now=now)
        typer.echo(f"created user {person} ({role})", err=True)
    elif role not in user.roles or not set(vaults) <= set(user.vaults):
        accounts.update_user(store, record, person=person, name=name or user.name,
                             institution=institution or user.institution,
                             roles=[*user.roles, role], vaults=[*user.vaults, *vaults])
        typer.echo(f"added role {role} / vaults {vaults} to user {person}", err=True)


@token_app.command("revoke")
def revoke(token_id: str, actor: str = typer.Option(None, "--actor"),
           config: str = ConfigOption, database_url: str = DatabaseOption,
           as_json: bool = JsonOption) -> None:
    """Revoke a token by its id (takes effect at once)."""
    if not re.match(r"^[0-9a-f]{16}$", token_id):
        fail("a token id is 16 hex digits (see `reserve token list`)")
    by = _cli_actor(actor)
    from reserve.api import accounts

    with _accounts(config, database_url, by) as (store, record, now):
        revoked = accounts.revoke_token(store, record, token_id=token_id, by=by, now=now)
    emit(revoked.to_json(now), as_json, f"revoked token {token_id} of {revoked.person}")


@token_app.command("list")
def list_tokens(person: str = typer.Option(None, "--person"), config: str = ConfigOption,
                database_url: str = DatabaseOption, as_json: bool = JsonOption) -> None:
    """List tokens: id, person, role, status, expiry (never the token or its hash)."""
    from reserve.api.store import AccountStore

    settings = load_settings(config)
    store = AccountStore.open(database_url or settings.ledger.database_url)
    try:
        now = datetime.now(UTC)
        tokens = [token.to_json(now) for token in store.tokens(person)]
    finally:
        store.close()
    lines = [f"{t['token_id']}  {t['person']:<20} {t['role']:<10} {t['status']:<8} "
             f"expires {t['expires_at']}  {t['label']}" for t in tokens]
    emit({"tokens": tokens}, as_json, "\n".join(lines) if lines else "no tokens")
