"""A licence suspension stops a pending transfer, at release and in the custodian's signer.

On regtest: the vault's policy names its settlement destination as an exchange holding
licence L-042, which the regulator's key has signed active. The transfer is approved, then
the regulator suspends the licence: the release is refused with a decision that says so,
and nothing is written. Reinstated, the transfer is released and its signing package built;
suspended again before the custodian signs, the custodian's own device (`reserve-sign
btc-sign --package`) refuses, saying why, and writes no share.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reserve.errors import WorkflowError
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.transfers.package import build_signing_package, package_json
from tests.nodes.test_signing_package_bitcoin import ENV, _vault_toml
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.bitcoin_workflow import funded_vault
from tests.support.signing_package import LEDGER_KEY
from tests.support.supervision import EXCHANGE, LICENCE, change, licensed_policy
from tests.support.workflow import SETTLEMENT, approve, propose
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.signer.cli import app

runner = CliRunner()


def test_a_suspension_holds_the_release_and_the_signature(
        make_vault: Callable[..., VaultKit], bitcoind: RegtestNode, miner: BitcoinRPC,
        tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite", signer=LEDGER_KEY)
    try:
        kit, policy, workflow, adapter = funded_vault(make_vault, bitcoind, miner, ledger,
                                                      licensed_policy)
        now = datetime.now(UTC).replace(microsecond=0)
        workflow.record_licence_change(change("active", 1, now - timedelta(days=30)),
                                       "regulator")
        status = propose(workflow, 5_000_000, SETTLEMENT, at=now, vault=kit.vault.vault_id)
        approve(workflow, status, "central-bank", "vasp-regulator", at=now)
        assert workflow.status(status.digest).state == "releasable"

        suspended_at = now - timedelta(minutes=5)
        suspension = workflow.record_licence_change(change("suspended", 2, suspended_at),
                                                    "regulator")
        assert suspension.payload["affects"] == [{"vault": kit.vault.vault_id,
                                                  "digest": status.digest,
                                                  "state": "releasable"}]
        before = ledger.size()
        sentence = (f"counterparty {EXCHANGE}'s licence {LICENCE} suspended since "
                    f"{suspended_at.strftime('%Y-%m-%dT%H:%M:%SZ')}")
        with pytest.raises(WorkflowError, match=sentence.replace("'", ".")):
            workflow.release(status.digest, adapter, actor="treasury-ops")
        assert ledger.size() == before
        assert sentence in workflow.decision(status.digest).missing

        workflow.record_licence_change(change("active", 3, now - timedelta(minutes=1)),
                                       "regulator")
        workflow.release(status.digest, adapter, actor="treasury-ops")
        assert workflow.status(status.digest).state == "signing"
        workflow.record_licence_change(change("suspended", 4, now), "regulator")

        package = tmp_path / "package.json"
        package.write_text(package_json(build_signing_package(ledger, status.digest)))
        enrolment = tmp_path / "enrolment.json"
        result = runner.invoke(app, ["enrol", "--ledger-key", LEDGER_KEY.verifier.encode(),
                                     "--vault", kit.vault.vault_id, "--policy-sha256",
                                     loader.policy_sha256(policy), "--out", str(enrolment)],
                               env=ENV)
        assert result.exit_code == 0, result.output
        custodian = kit.vault.custodians[0]
        key, share = tmp_path / "key.json", tmp_path / "share.psbt"
        result = runner.invoke(app, ["keygen", "--name", custodian.name, "--institution",
                                     custodian.institution, "--out", str(key),
                                     "--test-custodian", "1", "--scrypt-n", "4096"], env=ENV)
        assert result.exit_code == 0, result.output
        refused = runner.invoke(app, ["btc-sign", "--package", str(package), "--enrolment",
                                      str(enrolment), "--vault",
                                      str(_vault_toml(kit.vault, tmp_path / "vault.toml")),
                                      "--keystore", str(key), "--out", str(share), "--yes"],
                                env=ENV)
        assert refused.exit_code == 2, refused.output
        assert f"licence {LICENCE} suspended since" in " ".join(refused.output.split())
        assert not share.exists()
    finally:
        ledger.close()
