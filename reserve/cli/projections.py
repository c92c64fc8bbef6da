"""`reserve projections ...`: the read models kept beside the ledger."""

from __future__ import annotations

import typer

from reserve.cli.common import (
    ConfigOption,
    DatabaseOption,
    JsonOption,
    emit,
    load_settings,
    open_ledger,
    working,
)

projections_app = typer.Typer(no_args_is_help=True, help=(
    "Read models (vaults, proposals, holdings): a cache of the ledger kept in step with "
    "every append."))


@projections_app.command("rebuild")
def rebuild(config: str = ConfigOption, database_url: str = DatabaseOption,
            as_json: bool = JsonOption) -> None:
    """Recreate every read-model row from the ledger, in one transaction."""
    from reserve.transfers import readmodel

    settings = load_settings(config)
    with open_ledger(settings, database_url, with_signer=False) as ledger, \
            working("replaying the ledger into the read models"):
        sizes = readmodel.rebuild(ledger)
        findings = readmodel.check(ledger)
        size = ledger.size()
    emit({"rebuilt": sizes, "entries": size, "findings": findings}, as_json,
         f"rebuilt the read models from {size} entries: " +
         ", ".join(f"{name} at {size}" for name, size in sorted(sizes.items())) +
         ("" if not findings else "\n" + "\n".join(findings)))
    if findings:
        raise typer.Exit(1)
