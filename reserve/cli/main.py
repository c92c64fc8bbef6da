"""Entry point of the `reserve` command: registers each flow's sub-commands.

Errors from the domain become one clear line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import typer

from reserve.cli.common import error_console
from reserve.cli.ledger import ledger_app
from reserve.errors import ReserveError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Sovereign Reserve Ledger: custody, ledger, reconciliation.")

# Sub-command groups register below, one line each.
app.add_typer(ledger_app, name="ledger")


def run() -> None:
    """Console entry point: domain errors are one line on stderr and exit code 2."""
    try:
        app()
    except ReserveError as error:
        error_console.print(f"error: {error}", highlight=False, markup=False)
        raise SystemExit(2) from None
