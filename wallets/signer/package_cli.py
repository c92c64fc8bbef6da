"""`reserve-sign enrol` and `reserve-sign package show`: what a custodian's device trusts,
and what a signing package would have it sign.

`enrol` is run once, when the custodian joins a vault, from values the custodian obtained
out of band (the ledger's verifier key as published, the policy they reviewed): it writes
the enrolment file every later `btc-sign` / `evm-sign` checks packages against. The file
helpers here are shared by those commands; the checks themselves are in package.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from reserve.errors import ReserveError, SignerError
from reserve.ledger.checkpoint import VerifierKey
from reserve.policy import loader
from reserve.proposals.proposal import parse_time
from wallets.signer.package import (
    CHECKPOINT_AGE_MAX_SECONDS_DEFAULT,
    EnrolledCustodian,
    Enrolment,
    VerifiedPackage,
    custodian_set,
    describe_package,
    verify_signing_package,
)

FILE_BYTES_MAX = 16 * 1024 * 1024
package_app = typer.Typer(no_args_is_help=True,
                          help="Signing packages: what the signer checks before it signs.")
NowOption = Annotated[str | None, typer.Option(
    "--now", hidden=True, help="TEST ONLY: this device's time (ISO 8601), for stories on an "
                               "injected clock.")]


def _fail(error: ReserveError) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code=2)


def read_json(path: Path, what: str) -> Any:
    try:
        if path.stat().st_size > FILE_BYTES_MAX:
            raise SignerError(f"{what} {path} is larger than {FILE_BYTES_MAX} bytes")
        return json.loads(path.read_bytes())
    except OSError as error:
        raise SignerError(f"cannot read {what} {path}: {error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SignerError(f"{what} {path} is not JSON: {error}") from None


def device_now(now: str | None) -> datetime:
    """This device's clock (or, in tests, the time given)."""
    return parse_time(now) if now else datetime.now(UTC)


def verified_package(package: Path, enrolment: Path, now: str | None
                     ) -> tuple[VerifiedPackage, Enrolment]:
    """Read both files and run every check that does not depend on the chain."""
    enrolled = Enrolment.from_json(read_json(enrolment, "enrolment"))
    verified = verify_signing_package(read_json(package, "signing package"), enrolled,
                                      now=device_now(now))
    return verified, enrolled


def custodian_set_of(path: Path | None) -> tuple[EnrolledCustodian, ...]:
    return custodian_set(loader.load_file(path)) if path is not None else ()


def enrol(
    ledger_key: Annotated[str, typer.Option(help="The ledger's verifier key "
                                                 "(<name>+<hash>+<key>, as published).")],
    vault: Annotated[str, typer.Option(help="The vault id (as in its policy).")],
    out: Annotated[Path, typer.Option(help="Enrolment file to create (never overwritten).")],
    policy: Annotated[Path | None, typer.Option(help="The policy TOML you reviewed: enrol "
                                                     "its exact hash.")] = None,
    policy_sha256: Annotated[str | None, typer.Option(help="Or the policy hash itself.")] = None,
    custodians_of: Annotated[Path | None, typer.Option(
        help="Or enrol only this policy's custodian set (any policy version with exactly "
             "these custodians is accepted).")] = None,
    safe: Annotated[str, typer.Option(help="EVM vaults: the Safe's address.")] = "",
    token: Annotated[list[str] | None, typer.Option(
        help="EVM vaults: ASSET=0xTOKEN, once per ERC-20 asset.")] = None,
    checkpoint_age_max: Annotated[int, typer.Option(
        help="Refuse packages whose newest entry is older (seconds).")] =
        CHECKPOINT_AGE_MAX_SECONDS_DEFAULT,
) -> None:
    """Record what this device trusts: the ledger key and the vault's policy or custodians."""
    try:
        if sum(x is not None for x in (policy, policy_sha256, custodians_of)) != 1:
            raise SignerError("give exactly one of --policy, --policy-sha256, "
                              "--custodians-of")
        digest, members = "", custodian_set_of(custodians_of)
        if policy is not None:
            digest = loader.policy_sha256(loader.load_file(policy))
        elif policy_sha256 is not None:
            digest = policy_sha256.lower()
        tokens = []
        for item in token or []:
            name, separator, address = item.partition("=")
            if not separator or not name or not address:
                raise SignerError(f"--token wants ASSET=0xADDRESS, not {item!r}")
            tokens.append((name, address))
        enrolment = Enrolment(ledger_key=VerifierKey.parse(ledger_key), vault=vault,
                              policy_sha256=digest, custodians=members,
                              checkpoint_age_max_seconds=checkpoint_age_max,
                              safe_address=safe, tokens=tuple(sorted(tokens)))
        if out.exists():
            raise SignerError(f"{out} exists; not overwriting an enrolment")
        out.write_text(json.dumps(enrolment.to_json(), indent=2, sort_keys=True) + "\n")
    except ReserveError as error:
        raise _fail(error) from None
    typer.echo(f"enrolled for {vault}: ledger key {enrolment.ledger_key.name}, "
               + (f"policy sha256 {digest}" if digest else
                  f"custodian set of {len(members)}"))
    typer.echo(f"wrote {out}")


@package_app.command("show")
def show(
    package: Annotated[Path, typer.Argument(help="The signing package (JSON).")],
    enrolment: Annotated[Path, typer.Option(help="This device's enrolment file.")],
    vault: Annotated[Path | None, typer.Option(help="Bitcoin: the vault config (TOML), to "
                                                    "check the PSBT too.")] = None,
    now: NowOption = None,
) -> None:
    """Check a package and print what would be signed, in asset units, and why it passes."""
    try:
        verified, enrolled = verified_package(package, enrolment, now)
        for line in describe_package(verified):
            typer.echo(line)
        if verified.step.kind == "btc.psbt_created" and vault is not None:
            from wallets.bitcoin.vault import load_vault
            from wallets.signer.bitcoin import render_summary
            from wallets.signer.package import check_bitcoin

            config = load_vault(vault)
            _, summary = check_bitcoin(verified, config)
            typer.echo(render_summary(summary, config))
            typer.echo("  - the PSBT spends only this vault's coins and pays exactly the "
                       "proposal's outputs")
        elif verified.step.kind == "evm.safe_tx_created":
            from wallets.signer.package import check_evm

            for line in check_evm(verified, enrolled).summary():
                typer.echo(line)
            typer.echo("  - the Safe transaction moves exactly the proposal's output")
        else:
            typer.echo("(give --vault to check the PSBT as well)")
    except ReserveError as error:
        raise _fail(error) from None


def register(app: typer.Typer) -> None:
    app.command("enrol")(enrol)
    app.add_typer(package_app, name="package")
