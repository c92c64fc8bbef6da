"""A real release on regtest, signed by three custodians from its signing package.

The workflow releases a 0.05 BTC transfer; the package built from the ledger is all each
custodian's offline tool sees (with its enrolment and the vault config). Three sign through
`reserve-sign btc-sign --package`, the shares go back through the workflow, and bitcoind
accepts the transaction. A package edited on the way is refused and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reserve.errors import WorkflowError
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.transfers.package import build_signing_package, package_json
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.bitcoin_workflow import funded_vault
from tests.support.signing_package import LEDGER_KEY
from tests.support.workflow import SETTLEMENT, approve, btc_policy, propose
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.bitcoin.vault import Vault
from wallets.signer.cli import app

ENV = {"RESERVE_SIGNER_PASSPHRASE": "node-test-passphrase"}
SIGNERS = (1, 3, 5)  # finance-ministry, vasp-regulator, crypto-council
runner = CliRunner()


def _vault_toml(vault: Vault, path: Path) -> Path:
    lines = [f'vault_id = "{vault.vault_id}"', f'network = "{vault.network}"',
             f"threshold = {vault.threshold}"]
    for custodian in vault.custodians:
        lines += ["[[custodians]]", f'name = "{custodian.name}"',
                  f'institution = "{custodian.institution}"',
                  f'key_origin = "{custodian.key_origin}"', f'xpub = "{custodian.xpub}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


def test_three_custodians_sign_a_release_from_its_package(
        make_vault: Callable[..., VaultKit], bitcoind: RegtestNode, miner: BitcoinRPC,
        tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite", signer=LEDGER_KEY)
    try:
        kit, policy, workflow, adapter = funded_vault(make_vault, bitcoind, miner, ledger,
                                                      btc_policy)
        now = datetime.now(UTC)
        status = propose(workflow, 5_000_000, SETTLEMENT, at=now, vault=kit.vault.vault_id)
        approve(workflow, status, "central-bank", "vasp-regulator", at=now)
        workflow.release(status.digest, adapter, actor="treasury-ops")

        package = tmp_path / "package.json"
        package.write_text(package_json(build_signing_package(ledger, status.digest)))
        enrolment = tmp_path / "enrolment.json"
        _ok(["enrol", "--ledger-key", LEDGER_KEY.verifier.encode(), "--vault",
             kit.vault.vault_id, "--policy-sha256", loader.policy_sha256(policy), "--out",
             str(enrolment)])
        vault_file = _vault_toml(kit.vault, tmp_path / "vault.toml")
        shown = _ok(["package", "show", str(package), "--enrolment", str(enrolment),
                     "--vault", str(vault_file)])
        assert f"pays       0.05000000 BTC to {SETTLEMENT}" in shown and "change" in shown

        # Edited on the way (a sat more to the destination): refused, nothing written.
        edited = json.loads(package.read_text())
        for entry in edited["entries"]:
            entry["body"] = entry["body"].replace('"amount_sats":5000000',
                                                  '"amount_sats":5000001')
        tampered = tmp_path / "tampered.json"
        tampered.write_text(json.dumps(edited))

        for number in SIGNERS:
            custodian = kit.vault.custodians[number - 1]
            key, share = tmp_path / f"key-{number}.json", tmp_path / f"share-{number}.psbt"
            _ok(["keygen", "--name", custodian.name, "--institution", custodian.institution,
                 "--out", str(key), "--test-custodian", str(number), "--scrypt-n", "4096"])
            refused = runner.invoke(app, ["btc-sign", "--package", str(tampered),
                                          "--enrolment", str(enrolment), "--vault",
                                          str(vault_file), "--keystore", str(key), "--out",
                                          str(share), "--yes"], env=ENV)
            assert refused.exit_code == 2 and "inclusion proof does not verify" in \
                refused.output and not share.exists()
            signed = _ok(["btc-sign", "--package", str(package), "--enrolment",
                          str(enrolment), "--vault", str(vault_file), "--keystore", str(key),
                          "--out", str(share), "--yes"])
            assert f"as {custodian.name}" in signed
            workflow.add_signature_share(status.digest, adapter, custodian.name,
                                         share.read_text().strip())

        txid = workflow.broadcast(status.digest, adapter, actor="treasury-ops")
        bitcoind.mine(1)
        assert workflow.check_confirmation(status.digest, adapter) == 1
        assert workflow.status(status.digest).state == "confirmed"
        assert workflow.status(status.digest).txid == txid
        # Once broadcast, no package is made for it any more.
        with pytest.raises(WorkflowError, match="confirmed; a signing package is made once"):
            build_signing_package(ledger, status.digest)
    finally:
        ledger.close()
