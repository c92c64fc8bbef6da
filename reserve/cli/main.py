"""Entry point of the `reserve` command: registers each flow's sub-commands.

Errors from the domain become one clear line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import os

import typer

from reserve.cli.bitcoin import bitcoin_app
from reserve.cli.common import error_console
from reserve.cli.db import db_app
from reserve.cli.demo import demo
from reserve.cli.evm import evm_app
from reserve.cli.ledger import ledger_app
from reserve.cli.mining import mining_app
from reserve.cli.projections import projections_app
from reserve.cli.reconcile import reconcile_app
from reserve.cli.serve import serve, token_app
from reserve.cli.statement import flow_app, statement_app, wallet_app
from reserve.cli.supervise import licence_app, supervise_app
from reserve.cli.transfer import transfer_app
from reserve.cli.transparency import publish, witness_app
from reserve.cli.workflow import register as register_workflow
from reserve.errors import ReserveError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Sovereign Reserve Ledger: custody, ledger, reconciliation.")

# Sub-command groups register below, one line each.
app.add_typer(ledger_app, name="ledger")
app.add_typer(db_app, name="db")
app.add_typer(projections_app, name="projections")
app.command("serve")(serve)
app.add_typer(token_app, name="token")
app.add_typer(bitcoin_app, name="btc")
app.add_typer(reconcile_app, name="reconcile")
app.add_typer(evm_app, name="evm")
app.add_typer(transfer_app, name="transfer")
app.add_typer(licence_app, name="licence")
app.add_typer(supervise_app, name="supervise")
app.add_typer(wallet_app, name="wallet")
app.add_typer(flow_app, name="flow")
app.add_typer(statement_app, name="statement")
app.add_typer(mining_app, name="mining")
register_workflow(app)  # propose, approve, freeze, unfreeze, proposal, policy, destination
app.command("publish")(publish)
app.add_typer(witness_app, name="witness")
app.command("demo")(demo)


def run() -> None:
    """Console entry point: domain errors are one line on stderr and exit code 2."""
    # Ledgers, keys, reports and summaries are the reserve's records: whatever this
    # command creates is readable by its owner only (files 0600, folders 0700).
    os.umask(0o077)
    try:
        app()
    except ReserveError as error:
        error_console.print(f"error: {error}", highlight=False, markup=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
