"""Shared pieces of the command line: settings, output, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from reserve import config
from reserve.errors import ReserveError

if TYPE_CHECKING:
    from reserve.ledger.store import Ledger

console = Console()
error_console = Console(stderr=True, soft_wrap=True)

ConfigOption = typer.Option(None, "--config", help="Config file (default config/reserve.toml).")
DatabaseOption = typer.Option(None, "--database-url", help="Override the ledger database URL.")
JsonOption = typer.Option(False, "--json", help="Machine-readable JSON output.")


def load_settings(config_path: str | None) -> config.Settings:
    return config.load(config_path)


def open_ledger(settings: config.Settings, database_url: str | None = None, *,
                with_signer: bool = True, read_models: bool = True) -> Ledger:
    """reserve.ledger.configured.open_ledger, loaded when a command first opens the ledger
    (the ledger store and its key handling are not needed for `reserve --help`).

    With `read_models` (the default) the read models are attached, so whatever the command
    appends keeps them in step; a command that only reads entries (`reserve ledger show`)
    opens without them and does not load the workflow to start."""
    from reserve.ledger.configured import open_ledger as configured

    ledger = configured(settings, database_url, with_signer=with_signer)
    if read_models:
        from reserve.transfers import readmodel

        readmodel.attach(ledger)
    return ledger


def progress_rows(label: str, enabled: bool) -> Any:
    """A row wrapper drawing a rich progress bar on stderr, for long passes such as
    verification; None where no bar is drawn (not a terminal, or --json), so the pass
    takes its quickest path (the verifier's chunks read ahead)."""
    if not enabled or not error_console.is_terminal:
        return None

    def wrap(rows: Any, total: int) -> Any:
        from rich.progress import track

        return track(rows, total=total, description=label, console=error_console,
                     transient=True)

    return wrap


@contextmanager
def working(label: str) -> Iterator[None]:
    """A rich spinner on stderr while a long step runs (only on a terminal)."""
    if not error_console.is_terminal:
        yield
        return
    with error_console.status(label):
        yield


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(f"{human if human is not None else data}\n")


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit."""
    error_console.print(f"error: {message}", highlight=False, markup=False)
    raise typer.Exit(code)


def guarded(function: Any) -> Any:
    """Turn domain errors into one line and exit code 2."""
    try:
        return function()
    except ReserveError as error:
        fail(str(error))


def verdict(check: Any, as_json: bool, rejected: tuple[type[ReserveError], ...]) -> Any:
    """Run a verification (`reserve ... verify`): a rejection (an error with a `reason`)
    prints DOES NOT HOLD and exits 1; any other domain error means it could not be checked
    here: CANNOT VERIFY, exit 2."""
    try:
        return check()
    except rejected as error:
        reason = getattr(error, "reason", "rejected")
        emit({"holds": False, "reason": reason, "message": str(error)}, as_json,
             f"DOES NOT HOLD ({reason}): {error}")
        raise typer.Exit(1) from None
    except ReserveError as error:  # no verdict: wrong node, node unreachable, no history
        emit({"holds": None, "reason": "cannot_verify", "message": str(error)}, as_json,
             f"CANNOT VERIFY: {error}")
        raise typer.Exit(2) from None
