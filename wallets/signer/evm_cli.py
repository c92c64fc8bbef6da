"""`reserve-sign evm ...`: the custodian's EVM commands (key generation, review, signing).

Works offline: it reads a signing request file, recomputes the Safe transaction hash and
checks it against the approved transfer, shows what will move, and only then signs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from reserve import keystore
from reserve.errors import ReserveError
from wallets.evm.keys import load_account
from wallets.signer import evm

evm_app = typer.Typer(no_args_is_help=True, help="EVM keys and Safe transaction signatures.")
PASSPHRASE_ENV = "RESERVE_SIGNER_PASSPHRASE"  # noqa: S105 (a variable name)


def _fail(error: ReserveError) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


def _passphrase(confirm: bool = False) -> str:
    value = keystore.passphrase_from_env(PASSPHRASE_ENV, prompt="Keystore passphrase: ")
    if confirm and not os.environ.get(PASSPHRASE_ENV):
        again = keystore.passphrase_from_env(PASSPHRASE_ENV, prompt="Repeat passphrase: ")
        if again != value:
            raise typer.BadParameter("passphrases differ")
    return value


@evm_app.command("keygen")
def keygen(out: Path = typer.Option(..., "--out", help="New keystore file (never overwritten)."),
           label: str = typer.Option(..., "--label", help="Whose key this is."),
           test_custodian: int = typer.Option(None, "--test-custodian", help=(
               "Import the PUBLIC TEST key of demo custodian N instead of a random key."))
           ) -> None:
    """Create an EVM key in the encrypted keystore and print its address."""
    try:
        secret = None
        if test_custodian is not None:
            from wallets.evm import testkeys

            secret = testkeys.custodian_private_key(test_custodian)
            label = f"{label} (TEST KEY: public seed, demo only)"
        address = evm.create_key(out, label=label, passphrase=_passphrase(confirm=True),
                                 secret=secret)
    except ReserveError as error:
        _fail(error)
    typer.echo(address)


@evm_app.command("address")
def address(key: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """The address of a keystore (no passphrase needed)."""
    try:
        typer.echo(evm.key_address(key))
    except ReserveError as error:
        _fail(error)


def _request(path: Path) -> dict[str, object]:
    try:
        loaded: dict[str, object] = json.loads(path.read_text())
        return loaded
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"{path}: not JSON: {error}") from None


@evm_app.command("review")
def review(request: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Recompute and show what a signing request would move, without signing."""
    try:
        for line in evm.review(_request(request)).summary():
            typer.echo(line)
    except ReserveError as error:
        _fail(error)


@evm_app.command("sign")
def sign(request: Path = typer.Argument(..., exists=True, dir_okay=False),
         key: Path = typer.Option(..., "--key", exists=True, dir_okay=False),
         out: Path = typer.Option(None, "--out", help="Write the signature JSON here."),
         yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Check the request against the approved transfer, show it, and sign its Safe hash."""
    try:
        document = _request(request)
        checked = evm.review(document)
        for line in checked.summary():
            typer.echo(line, err=True)
        if not yes and not typer.confirm("Sign this transaction?", err=True):
            raise typer.Exit(1)
        share = evm.sign(document, load_account(key, _passphrase()))
    except ReserveError as error:
        _fail(error)
    text = json.dumps(evm.share_document(share, checked.digest), indent=2) + "\n"
    if out is not None:
        out.write_text(text)
        typer.echo(f"signature written to {out}", err=True)
    else:
        typer.echo(text, nl=False)
