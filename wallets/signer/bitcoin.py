"""Bitcoin commands of the custodian's signing tool: keygen, show, btc-sign.

Works with no network access. `btc-sign` signs only from a signing package
(reserve/transfers/package.py), checked against this device's enrolment
(wallets/signer/package.py): the release is re-decided here, never taken on the
coordinator's word. Then the tool re-derives every input and the change output from the
vault's config (so it knows the coins and the change are the vault's), shows destinations,
amounts, fee and change, and refuses unless the outputs, proposal digest, policy version
and fee cap match the proposal the package proves. The custodian's BIP 32 key is read from
the encrypted keystore (passphrase from the environment or a prompt).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from bitcoinlib.mnemonic import Mnemonic
from embit import bip32, bip39
from embit.psbt import PSBT

from reserve import keystore, present
from reserve.errors import KeystoreError, PSBTError, ReserveError
from wallets.bitcoin.adapter import approved_transfer
from wallets.bitcoin.networks import params
from wallets.bitcoin.psbt_check import (
    PsbtSummary,
    check_against_transfer,
    describe,
    parse_psbt,
    psbt_bytes,
)
from wallets.bitcoin.shares import verify_share
from wallets.bitcoin.testkeys import custodian_from_root, demo_custodian_key
from wallets.bitcoin.transfer import ApprovedTransfer
from wallets.bitcoin.vault import Custodian, Vault, load_vault
from wallets.signer import package_cli
from wallets.signer.package import check_bitcoin, describe_package

PASSPHRASE_ENV = "RESERVE_SIGNER_PASSPHRASE"  # noqa: S105 (a variable name)
FILE_BYTES_MAX = 4 * 1024 * 1024


@dataclass(frozen=True)
class Signed:
    psbt: PSBT
    summary: PsbtSummary
    custodian: Custodian
    signatures: int


def _btc(sats: int) -> str:
    """'0.05000000 BTC (5,000,000 sats)': what people read, then what is signed."""
    return present.amount_words(sats, present.BTC)


def render_summary(summary: PsbtSummary, vault: Vault) -> str:
    """What the PSBT does, in words a custodian can check against the approval."""
    meta = summary.metadata
    lines = [f"vault      {vault.vault_id} ({vault.threshold}-of-{len(vault.custodians)}, "
             f"{vault.network})",
             f"proposal   {meta.proposal_digest.hex()} (policy version {meta.policy_version})",
             f"txid       {summary.txid}",
             f"spends     {len(summary.inputs)} vault coin(s), {_btc(summary.input_sats)}"]
    for output in summary.payments:
        lines.append(f"pays       {_btc(output.amount_sats)} to {output.address}")
    for output in summary.outputs:
        if output.change_index is not None:
            lines.append(f"change     {_btc(output.amount_sats)} back to the vault "
                         f"(change/{output.change_index}, {output.address})")
    lines.append(f"fee        {_btc(summary.fee_sats)}")
    return "\n".join(lines)


def custodian_for_root(root: bip32.HDKey, vault: Vault) -> Custodian:
    """The vault custodian whose xpub this root key derives; refuses foreign keys."""
    for custodian in vault.custodians:
        if custodian.fingerprint != root.my_fingerprint:
            continue
        account = root.derive(custodian.origin_path).to_public()
        if account.key.sec() == custodian.hdkey.key.sec() and \
                account.chain_code == custodian.hdkey.chain_code:
            return custodian
    raise PSBTError(f"this key ({root.my_fingerprint.hex()}) is not a custodian of vault "
                    f"{vault.vault_id}")


def sign_psbt(data: bytes | str, vault: Vault, transfer: ApprovedTransfer,
              root: bip32.HDKey) -> Signed:
    """Check the PSBT against the vault and the approved transfer, then sign every input."""
    base = parse_psbt(data)
    summary = describe(base, vault)
    check_against_transfer(summary, vault, transfer)
    custodian = custodian_for_root(root, vault)
    signed = parse_psbt(base.serialize())
    count = signed.sign_with(root)
    if count < len(signed.inputs):
        raise PSBTError(f"signed {count} of {len(signed.inputs)} inputs: key does not match")
    # Check our own share exactly as the service will, before handing it over.
    share = verify_share(base, summary, vault, signed)
    if share.custodian.name != custodian.name:
        raise PSBTError("signature check failed after signing")
    return Signed(signed, summary, custodian, count)


def load_root(path: Path, passphrase: str) -> bip32.HDKey:
    document = keystore.read(path)
    if document["kind"] != "bip32-xprv":
        raise KeystoreError(f"{path} holds a {document['kind']} key, not a BIP 32 key")
    secret = keystore.unseal(document, passphrase)
    try:
        return bip32.HDKey.from_string(secret.decode())
    except Exception:
        raise KeystoreError(f"{path}: sealed secret is not an extended private key") from None


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > FILE_BYTES_MAX:
            raise PSBTError(f"{path} is larger than {FILE_BYTES_MAX} bytes")
        return path.read_bytes()
    except OSError as error:
        raise PSBTError(f"cannot read {path}: {error}") from None


def _fail(error: ReserveError) -> typer.Exit:
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(code=2)


def keygen(
    name: Annotated[str, typer.Option(help="Custodian name (as in the vault config).")],
    institution: Annotated[str, typer.Option(help="The custodian's institution.")],
    out: Annotated[Path, typer.Option(help="Keystore file to create (never overwritten).")],
    network: Annotated[str, typer.Option(help="regtest/signet/testnet4/mainnet.")] = "regtest",
    test_custodian: Annotated[int, typer.Option(help="TEST ONLY: public seed N.")] = 0,
    scrypt_n: Annotated[int, typer.Option(hidden=True)] = keystore.SCRYPT_N_DEFAULT,
    show_mnemonic: Annotated[bool, typer.Option(help="Print backup words.")] = False,
) -> None:
    """Create a custodian's BIP 32 key, store it encrypted, print the xpub with key origin."""
    try:
        chain = params(network)
        if test_custodian:
            mnemonic = demo_custodian_key(test_custodian, network).mnemonic
        else:
            mnemonic = Mnemonic().generate(256)
        root = bip32.HDKey.from_seed(bip39.mnemonic_to_seed(mnemonic),
                                     version=chain.embit["xprv"])
        custodian = custodian_from_root(root, name, institution, network)
        public = f"{custodian.key_origin}{custodian.xpub}"
        passphrase = keystore.passphrase_from_env(PASSPHRASE_ENV, prompt="New passphrase: ")
        document = keystore.seal(root.to_base58().encode(), kind="bip32-xprv", label=name,
                                 public=public, passphrase=passphrase, scrypt_n=scrypt_n)
        keystore.write(out, document)
    except ReserveError as error:
        raise _fail(error) from None
    if test_custodian:
        typer.echo("WARNING: test key from a public seed; for regtest/signet demos only.")
    if show_mnemonic:
        typer.echo(f"backup words (write down, never type into an online machine): {mnemonic}")
    typer.echo(f"keystore  {out}")
    typer.echo(f"xpub      {public}")
    typer.echo("\n[[custodians]]")
    typer.echo(f'name = "{name}"\ninstitution = "{institution}"')
    typer.echo(f'key_origin = "{custodian.key_origin}"\nxpub = "{custodian.xpub}"')


def show(
    psbt: Annotated[Path, typer.Option(help="PSBT file (binary or base64).")],
    vault: Annotated[Path, typer.Option(help="Vault config (TOML).")],
) -> None:
    """Show what a PSBT would do (to check a release, use `package show`)."""
    try:
        vault_config = load_vault(vault)
        summary = describe(parse_psbt(_read(psbt)), vault_config)
        typer.echo(render_summary(summary, vault_config))
    except ReserveError as error:
        raise _fail(error) from None


def btc_sign(
    package: Annotated[Path, typer.Option(help="The signing package (JSON) of the release.")],
    enrolment: Annotated[Path, typer.Option(help="This device's enrolment file.")],
    vault: Annotated[Path, typer.Option(help="Vault config (TOML).")],
    keystore_path: Annotated[Path, typer.Option("--keystore", help="Encrypted key file.")],
    out: Annotated[Path, typer.Option(help="Where to write the signed PSBT.")],
    binary: Annotated[bool, typer.Option(help="Write raw bytes, not base64.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
    now: package_cli.NowOption = None,
) -> None:
    """Sign the PSBT of a signing package, after checking the release itself, offline.

    The package's checkpoint must be signed by the enrolled ledger key, its entries proven,
    the policy the enrolled one, the policy evaluation re-run here must pass, and the PSBT
    must pay exactly the proposal's outputs from this vault's coins.
    """
    try:
        vault_config = load_vault(vault)
        verified, _ = package_cli.verified_package(package, enrolment, now)
        psbt, summary = check_bitcoin(verified, vault_config)
        for line in describe_package(verified):
            typer.echo(line)
        typer.echo(render_summary(summary, vault_config))
        typer.echo("the package verifies and the PSBT matches the proposal")
        if not yes and not typer.confirm("Sign this transaction?"):
            raise typer.Exit(code=1)
        passphrase = keystore.passphrase_from_env(PASSPHRASE_ENV, prompt="Passphrase: ")
        signed = sign_psbt(psbt.serialize(), vault_config, approved_transfer(verified.order),
                           load_root(keystore_path, passphrase))
    except ReserveError as error:
        raise _fail(error) from None
    payload = signed.psbt.serialize() if binary else (signed.psbt.to_base64() + "\n").encode()
    temporary = out.with_name(out.name + ".tmp")
    temporary.write_bytes(payload)
    os.replace(temporary, out)
    typer.echo(f"signed {signed.signatures} input(s) as {signed.custodian.name} "
               f"({signed.custodian.institution}); wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("keygen")(keygen)
    app.command("show")(show)
    app.command("btc-sign")(btc_sign)


__all__ = ["psbt_bytes", "register", "render_summary", "sign_psbt"]
