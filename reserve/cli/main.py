"""Entry point of the `reserve` command: registers each flow's sub-commands.

Errors from the domain become one clear line on stderr and a non-zero exit code.

Every command and command group is named here with its one-line help (`LAZY`), and
imported, and turned into a click command, only when it runs or shows its own help: `reserve --help` lists them without loading any, and `reserve ledger
show` loads the ledger commands alone (issue 14: a CLI that starts at once).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from reserve.errors import ReserveError


class Lazy:
    """A sub-command that `reserve` imports when it is used: `module.attribute`, a Typer
    (a group) or a command function, with the line `reserve --help` shows for it."""

    def __init__(self, module: str, attribute: str, help_line: str) -> None:
        self.module, self.attribute, self.help_line = module, attribute, help_line

    def load(self, name: str) -> Any:
        """The click command of `name` (its module imported now)."""
        found = getattr(importlib.import_module(self.module), self.attribute)
        if isinstance(found, typer.Typer):
            return typer.main.get_group(found)
        single = typer.Typer()
        single.command(name)(found)
        return typer.main.get_command(single)


WORKFLOW = "reserve.cli.workflow"
# Every sub-command of `reserve`, in the order `reserve --help` lists them.
LAZY: dict[str, Lazy] = {
    "serve": Lazy("reserve.cli.serve", "serve", "Run the API and dashboard on the configured "
                  "database (SQLite or PostgreSQL)."),
    "propose": Lazy(WORKFLOW, "propose", "Propose a transfer to allowlisted destinations."),
    "approve": Lazy(WORKFLOW, "approve", "Upload a custodian's signed approval (or "
                    "rejection); it counts once verified."),
    "freeze": Lazy(WORKFLOW, "freeze", "Freeze a vault at once (any custodian or auditor): "
                   "nothing is released."),
    "unfreeze": Lazy(WORKFLOW, "unfreeze", "Propose to unfreeze a vault; it takes effect "
                     "after a quorum and a delay."),
    "publish": Lazy("reserve.cli.transparency", "publish", "Write the ledger as a C2SP "
                    "tlog-tiles tree: checkpoint, hash tiles, entry bundles."),
    "demo": Lazy("reserve.cli.demo", "demo", "Run the whole story on a local regtest "
                 "bitcoind and anvil (TEST keys only)."),
    "ledger": Lazy("reserve.cli.ledger", "ledger_app", "The append-only ledger."),
    "db": Lazy("reserve.cli.db", "db_app", "The database: schema and roles."),
    "projections": Lazy("reserve.cli.projections", "projections_app", "Read models (vaults, "
                        "proposals, holdings): a cache of the ledger kept in step with every "
                        "append."),
    "token": Lazy("reserve.cli.serve", "token_app", "API tokens: issue, revoke, list."),
    "btc": Lazy("reserve.cli.bitcoin", "bitcoin_app", "National Bitcoin wallet: vaults, "
                "PSBTs, shares, chain sync."),
    "reconcile": Lazy("reserve.cli.reconcile", "reconcile_app", "Reconciliation reports: "
                      "ledger against chain, signed."),
    "evm": Lazy("reserve.cli.evm", "evm_app", "EVM vaults: Safe multisig, guard, deposits."),
    "transfer": Lazy("reserve.cli.transfer", "transfer_app", "Move an approved transfer to "
                     "the chain: release, sign, broadcast, confirm."),
    "licence": Lazy("reserve.cli.supervise", "licence_app", "Licensed counterparties: signed "
                    "licence changes."),
    "supervise": Lazy("reserve.cli.supervise", "supervise_app", "The supervisor's seat: "
                      "alerts, acknowledgements, attestations."),
    "wallet": Lazy("reserve.cli.statement", "wallet_app", "The registry of public-sector "
                   "wallets the statement covers."),
    "flow": Lazy("reserve.cli.statement", "flow_app", "Attribute a flow to a class: an "
                 "operator proposes, an auditor confirms."),
    "statement": Lazy("reserve.cli.statement", "statement_app", "The consolidated "
                      "public-sector statement: build, verify."),
    "mining": Lazy("reserve.cli.mining", "mining_app", "The electricity allocation: sites, "
                   "signed energy readings, the energy report."),
    "proposal": Lazy(WORKFLOW, "proposal_app", "Show, list, cancel and advance proposals."),
    "policy": Lazy(WORKFLOW, "policy_app", "Custody policies: load, show, change."),
    "destination": Lazy(WORKFLOW, "destination_app", "The destination allowlist."),
    "witness": Lazy("reserve.cli.transparency", "witness_app", "An outside witness: cosign "
                    "consistent checkpoints."),
}


class ReserveGroup(TyperGroup):
    """`reserve` itself: the LAZY sub-commands are listed by name and help line, in the
    table's order, and loaded only when looked up to run (or to show their own help)."""

    listing = False  # True while `reserve --help` lists the sub-commands

    def list_commands(self, ctx: Any) -> list[str]:
        return [*LAZY, *(name for name in super().list_commands(ctx) if name not in LAZY)]

    def get_command(self, ctx: Any, name: str) -> Any:
        lazy = LAZY.get(name)
        if lazy is None or name in self.commands:
            return super().get_command(ctx, name)
        if self.listing:
            # short_help given: click wraps it in full instead of cutting it at "...".
            return TyperCommand(name, help=lazy.help_line, short_help=lazy.help_line)
        command = lazy.load(name)
        self.add_command(command, name)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


# The top-level listing is plain click help (rich_markup_mode=None): rendering it with
# rich cost more than everything else `reserve --help` does; each group keeps its own.
app = typer.Typer(cls=ReserveGroup, no_args_is_help=True, add_completion=False,
                  rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="Sovereign Reserve Ledger: custody, ledger, reconciliation.")


@app.callback()
def reserve() -> None:
    """Sovereign Reserve Ledger: custody, ledger, reconciliation."""
    # A group needs a callback when all its commands are lazy; the command does the work.


def run() -> None:
    """Console entry point: domain errors are one line on stderr and exit code 2."""
    # Ledgers, keys, reports and summaries are the reserve's records: whatever this
    # command creates is readable by its owner only (files 0600, folders 0700).
    os.umask(0o077)
    try:
        app()
    except ReserveError as error:
        from reserve.cli.common import error_console

        error_console.print(f"error: {error}", highlight=False, markup=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
