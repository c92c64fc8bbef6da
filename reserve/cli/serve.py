"""`reserve serve` (the HTTP service under uvicorn) and `reserve token ...` (API tokens).

The first admin token can only come from here: whoever can run this command on the
service's database is trusted to bootstrap access. `token issue` creates the user when it
does not exist yet. Issuing and revoking are recorded in the ledger like their API
counterparts; the token text is printed once and stored nowhere.
"""

from __future__ import annotations

import getpass
import os
import re
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
)
from reserve.config import Settings
from reserve.errors import ConfigError
from reserve.ledger.configured import open_ledger

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
    import uvicorn
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
    server_config = uvicorn.Config("reserve.cli.serve:worker_app", factory=True,
                                   host=chosen_host, port=chosen_port, log_level=log_level,
                                   workers=chosen_workers)
    Multiprocess(server_config, sockets=[server_config.bind_socket()]).run()


def worker_app() -> Any:
    """The application of one worker process, from $RESERVE_CONFIG and $RESERVE_DATABASE_URL
    as `serve` set them; the app opens its own ledger and closes it on shutdown."""
    from reserve.api.app import create_app

    settings = load_settings(None)
    return create_app(settings, options=options_from(settings))


def _cli_actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


@token_app.command("issue")
def issue(person: str = typer.Option(..., "--person", help="Who the token acts for."),
          role: Role = typer.Option(..., "--role"),
          vault: list[str] = typer.Option([], "--vault", help="A vault (custodians; repeat)."),
          name: str = typer.Option("", "--name"),
          institution: str = typer.Option("", "--institution"),
          expires_in: str = typer.Option("30d", "--expires-in", help="e.g. 12h, 30d."),
          label: str = typer.Option("", "--label"),
          actor: str = typer.Option(None, "--actor", help="Recorded as the issuer."),
          config: str = ConfigOption, database_url: str = DatabaseOption,
          as_json: bool = JsonOption) -> None:
    """Issue a token (creating the user if new); the token is printed once."""
    if not re.match(PERSON_PATTERN, person):
        fail(f"person {person!r} must match {PERSON_PATTERN}")
    seconds = parse_duration(expires_in)
    settings = load_settings(config)
    by = _cli_actor(actor)
    now = datetime.now(UTC)
    from reserve.api import accounts
    from reserve.api.store import AccountStore

    with open_ledger(settings, database_url) as ledger:
        store = AccountStore.open(ledger.url)
        try:
            def record(items: list[tuple[str, dict[str, Any]]]) -> None:
                ledger.append_many([(kind, by, payload) for kind, payload in items], now=now)

            _ensure_user(store, record, person, role.value, vault, name, institution, now)
            issued, token = accounts.issue_token(
                store, record, person=person, role=role.value, expires_in_seconds=seconds,
                label=label, issued_by=by, now=now)
        finally:
            store.close()
    emit({"token": issued.token, **token.to_json(now)}, as_json,
         f"token for {person} as {role.value}, expires {token.expires_at} "
         f"(id {token.token_id}); shown once, keep it safe:\n{issued.token}")


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
    settings = load_settings(config)
    by = _cli_actor(actor)
    now = datetime.now(UTC)
    from reserve.api import accounts
    from reserve.api.store import AccountStore

    with open_ledger(settings, database_url) as ledger:
        store = AccountStore.open(ledger.url)
        try:
            def record(items: list[tuple[str, dict[str, Any]]]) -> None:
                ledger.append_many([(kind, by, payload) for kind, payload in items], now=now)

            revoked = accounts.revoke_token(store, record, token_id=token_id, by=by, now=now)
        finally:
            store.close()
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
