"""`reserve-sign approval ...`: the custodian's offline approval commands.

keygen   create an encrypted approval key and print its public key for the policy file
show     recompute a proposal's digest and show what it says
sign     sign an approval (or --decision reject) into a file for `reserve approve`
test-key seal one of the TEST-ONLY demo keys (fixed public seeds) into a keystore file
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from reserve import keystore
from reserve.errors import ReserveError
from reserve.policy.testkeys import private_key_of
from wallets.signer import approval

approval_app = typer.Typer(no_args_is_help=True, add_completion=False,
                           help="Approval keys and signed approvals (offline).")
ScryptN = Annotated[int, typer.Option("--scrypt-n",
                                      help="scrypt cost (power of two; tests may use 4096).")]
Custodian = Annotated[str, typer.Option("--custodian", help="Your custodian id.")]
ProposalFile = Annotated[Path, typer.Argument(help="Proposal JSON file (`reserve proposal "
                                                   "show --json` output works).")]


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(2)


def _passphrase(confirm: bool = False) -> str:
    value = keystore.passphrase_from_env(approval.PASSPHRASE_ENV,
                                         prompt="Approval key passphrase: ")
    if confirm and not os.environ.get(approval.PASSPHRASE_ENV):
        if getpass.getpass("Repeat passphrase: ") != value:
            _fail("passphrases differ")
    return value


def _write(path: Path | None, text: str) -> None:
    if path is None:
        sys.stdout.write(text + "\n")
        return
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text + "\n")
    except FileExistsError:
        _fail(f"refusing to overwrite {path}")


@approval_app.command("keygen")
def keygen(out: Annotated[Path, typer.Option("--out", help="Keystore file to create.")],
           custodian: Custodian, scrypt_n: ScryptN = keystore.SCRYPT_N_DEFAULT,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Create an approval key; its public key goes in the vault's policy file."""
    try:
        public = approval.create_key(out, custodian=custodian, passphrase=_passphrase(True),
                                     scrypt_n=scrypt_n)
    except ReserveError as error:
        _fail(str(error))
    if as_json:
        _write(None, json.dumps({"custodian": custodian, "approval_public_key": public,
                                 "file": str(out)}))
    else:
        _write(None, f"approval key for {custodian} written to {out}\n"
                     f'approval_public_key = "{public}"')


@approval_app.command("test-key")
def test_key(out: Annotated[Path, typer.Option("--out")], custodian: Custodian,
             scrypt_n: ScryptN = keystore.SCRYPT_N_DEFAULT) -> None:
    """Seal a TEST-ONLY approval key (fixed public seed) for the regtest demo."""
    try:
        document = approval.seal_key(private_key_of(custodian), custodian=custodian,
                                     passphrase=_passphrase(), scrypt_n=scrypt_n)
        keystore.write(out, document)
    except ReserveError as error:
        _fail(str(error))
    _write(None, f"TEST-ONLY approval key for {custodian} written to {out} "
                 f"(public {document['public']}); never use it for real value")


@approval_app.command("show")
def show(proposal_file: ProposalFile) -> None:
    """Recompute the digest of a proposal and show what it says."""
    try:
        _write(None, approval.describe(approval.read_proposal(proposal_file)))
    except ReserveError as error:
        _fail(str(error))


@approval_app.command("sign")
def sign(proposal_file: ProposalFile,
         key: Annotated[Path, typer.Option("--key", help="Your encrypted approval key.")],
         decision: Annotated[str, typer.Option(help="approve or reject.")] = "approve",
         digest: Annotated[str | None, typer.Option(
             help="Digest you were given; must match the file.")] = None,
         out: Annotated[Path | None, typer.Option(help="Write the approval here.")] = None,
         quiet: Annotated[bool, typer.Option(help="Do not print the summary.")] = False,
         ) -> None:
    """Sign an approval or rejection of a proposal, offline."""
    try:
        proposal = approval.read_proposal(proposal_file)
        private_key, custodian = approval.load_key(key, _passphrase())
        signed = approval.sign_proposal(proposal, private_key, custodian, decision=decision,
                                        expected_digest=digest)
    except ReserveError as error:
        _fail(str(error))
    if not quiet:
        sys.stderr.write(approval.describe(proposal) + f"\nsigned by   {custodian}: "
                         f"{decision}\n")
    _write(out, json.dumps(signed.document(), indent=2, sort_keys=True))
