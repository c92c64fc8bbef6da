"""The custodian's offline signing tool: keygen, show, btc-sign, and its refusals.

btc-sign signs only from a signing package (its policy refusals are in
test_signing_package.py); here, the key handling around it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from embit import bip32
from typer.testing import CliRunner

from reserve.errors import PSBTError
from reserve.transfers.package import package_json
from tests.support import signing_package as sp
from tests.support.workflow import COLD
from wallets.bitcoin.coins import Utxo, select_coins
from wallets.bitcoin.fees import FeeRate
from wallets.bitcoin.psbt_build import build_psbt
from wallets.bitcoin.psbt_check import parse_psbt
from wallets.bitcoin.transfer import ApprovedTransfer, TransferOutput
from wallets.bitcoin.vault import load_vault
from wallets.signer.bitcoin import sign_psbt
from wallets.signer.cli import app

VAULT_FILE = "config/vaults/national-btc-2of3.toml"
DEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
ENV = {"RESERVE_SIGNER_PASSPHRASE": "unit-test-passphrase"}
runner = CliRunner()


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    vault = load_vault(VAULT_FILE)
    transfer = ApprovedTransfer(hashlib.sha256(b"signer").digest(), 4, vault.vault_id,
                                "regtest", (TransferOutput(DEST, 60_000_000),), 50_000)
    utxos = [Utxo("ab" * 32, 0, 100_000_000, 0, 2, 3)]
    selection = select_coins(utxos, 60_000_000, [22], FeeRate(3000, "floor"), 2, 3)
    psbt = build_psbt(vault, transfer, selection, change_index=1)
    paths = {"psbt": tmp_path / "tx.psbt", "transfer": tmp_path / "transfer.json",
             "key": tmp_path / "key.json"}
    paths["psbt"].write_text(psbt.to_base64())
    paths["transfer"].write_text(transfer.to_json())
    result = runner.invoke(app, ["keygen", "--name", "finance-ministry", "--institution",
                                 "Ministry of Finance", "--out", str(paths["key"]),
                                 "--test-custodian", "1", "--scrypt-n", "4096"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "[4b9a9dfd/48h/1h/0h/2h]tpubDDvF1Kfgb" in result.output
    assert "tprv" not in paths["key"].read_text()  # sealed, never in clear
    return paths


def _sign(files: dict[str, Path], *extra: str, env: dict[str, str] = ENV):  # type: ignore[no-untyped-def]
    """btc-sign of a signing package for a small honest release (its own ledger)."""
    if "package" not in files:
        with sp.open_ledger() as ledger:
            digest = sp.released(sp.workflow(ledger), 5_000_000, COLD,
                                 ("central-bank", "vasp-regulator"))
            files["package"] = files["psbt"].with_name("package.json")
            files["package"].write_text(package_json(sp.package(ledger, digest)))
        files["enrolment"] = files["psbt"].with_name("enrolment.json")
        files["enrolment"].write_text(json.dumps(sp.enrolment().to_json()))
    return runner.invoke(app, ["btc-sign", "--package", str(files["package"]), "--enrolment",
                               str(files["enrolment"]), "--vault", sp.VAULT_FILE,
                               "--keystore", str(files["key"]), "--out", str(files["psbt"]),
                               "--now", "2026-01-05T10:00:00Z", "--yes", *extra], env=env)


def test_show_then_sign(files: dict[str, Path]) -> None:
    shown = runner.invoke(app, ["show", "--psbt", str(files["psbt"]), "--vault", VAULT_FILE])
    assert shown.exit_code == 0, shown.output
    assert f"0.60000000 BTC (60,000,000 sats) to {DEST}" in shown.output
    assert "back to the vault" in shown.output
    result = _sign(files)
    assert result.exit_code == 0, result.output
    signed = parse_psbt(files["psbt"].read_text())
    assert len(signed.inputs[0].partial_sigs) == 1


def test_binary_output(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "signed.bin"
    files["psbt"] = out
    assert _sign(files, "--binary").exit_code == 0
    assert out.read_bytes().startswith(b"psbt\xff")


def test_refuses_wrong_passphrase_and_foreign_key(files: dict[str, Path], tmp_path: Path) -> None:
    before = files["psbt"].read_text()
    result = _sign(files, env={"RESERVE_SIGNER_PASSPHRASE": "wrong-passphrase"})
    assert result.exit_code == 2 and "wrong passphrase" in result.output
    foreign = tmp_path / "foreign.json"
    made = runner.invoke(app, ["keygen", "--name", "x", "--institution", "y", "--out",
                               str(foreign), "--test-custodian", "4", "--scrypt-n", "4096"],
                         env=ENV)
    assert made.exit_code == 0
    files["key"] = foreign
    result = _sign(files)
    assert result.exit_code == 2 and "not a custodian" in result.output
    assert files["psbt"].read_text() == before


def test_refuses_malformed_psbt(files: dict[str, Path]) -> None:
    vault = load_vault(VAULT_FILE)
    with pytest.raises(PSBTError, match="malformed PSBT"):
        sign_psbt(files["psbt"].read_text()[:-30], vault,
                  ApprovedTransfer.from_json(files["transfer"].read_text()),
                  bip32.HDKey.from_seed(b"\x01" * 32))
