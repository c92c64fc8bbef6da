"""`reserve-sign evm ...` and `reserve-sign evm-sign`: the custodian's EVM commands.

Works offline. `evm keygen` and `evm address` manage the key; `evm-sign` signs only from a
signing package checked against this device's enrolment (wallets/signer/package.py): it
re-decides the release, recomputes the Safe transaction hash, shows what will move, and
only then signs. (The former `evm review` / `evm sign` of a bare signing request, which
trusted the coordinator's approved transfer, are gone.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from reserve import keystore
from reserve.errors import ReserveError
from wallets.evm.keys import load_account
from wallets.signer import evm, package_cli
from wallets.signer.package import check_evm, describe_package

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


def evm_sign(
        package: Path = typer.Option(..., "--package", exists=True, dir_okay=False,
                                     help="The signing package (JSON) of the release."),
        enrolment: Path = typer.Option(..., "--enrolment", exists=True, dir_okay=False,
                                       help="This device's enrolment file."),
        key: Path = typer.Option(..., "--key", exists=True, dir_okay=False),
        out: Path = typer.Option(None, "--out", help="Write the signature JSON here."),
        yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
        now: package_cli.NowOption = None) -> None:
    """Sign the Safe transaction of a signing package, after checking the release itself.

    The package must verify against the enrolment (ledger key, policy, the policy
    evaluation re-run here) and its Safe transaction must move exactly the proposal's
    output from the enrolled Safe; only then is its EIP-712 hash, computed here, signed.
    """
    try:
        verified, enrolled = package_cli.verified_package(package, enrolment, now)
        checked = check_evm(verified, enrolled)
        for line in [*describe_package(verified), *checked.summary()]:
            typer.echo(line, err=True)
        if not yes and not typer.confirm("Sign this transaction?", err=True):
            raise typer.Exit(1)
        share = evm.sign_reviewed(checked, load_account(key, _passphrase()))
    except ReserveError as error:
        _fail(error)
    text = json.dumps(evm.share_document(share, checked.digest), indent=2) + "\n"
    if out is not None:
        out.write_text(text)
        typer.echo(f"signature written to {out}", err=True)
    else:
        typer.echo(text, nl=False)
