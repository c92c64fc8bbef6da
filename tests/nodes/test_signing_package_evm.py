# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""A real release from the Safe on anvil, signed by three owners from its signing package.

The workflow releases 1 ETH to cold storage; each custodian's `reserve-sign evm-sign
--package` re-checks the release against its enrolment (ledger key, policy hash, Safe
address), recomputes the Safe transaction hash and signs it; the Safe executes with those
signatures. A device enrolled for another Safe refuses the same package.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.transfers.package import build_signing_package, package_json
from reserve.transfers.service import WorkflowService
from tests.support.evm_fixtures import (  # noqa: F401
    COLD_STORAGE,
    ETHER,
    Reserve,
    anvil,
    chain,
    deployed,
    w3,
)
from tests.support.signing_package import LEDGER_KEY
from tests.support.workflow import EVM_POLICY, approve
from wallets.evm.adapter import EVMAdapter
from wallets.signer.cli import app

PASSPHRASE = "node-test-passphrase"
runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_three_owners_sign_a_release_from_its_package(chain: Reserve, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESERVE_SIGNER_PASSPHRASE", PASSPHRASE)
    document = loader.to_document(loader.load_file(EVM_POLICY))
    document["destinations"].append({"asset": "ETH", "address": COLD_STORAGE,
                                     "label": "cold storage (TEST)"})
    policy = loader.from_mapping(document, source="test policy")
    safe = chain.deployment.safe
    with Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite", signer=LEDGER_KEY) as ledger:
        workflow = WorkflowService(ledger)
        workflow.register_policy(policy, "lead")
        status = workflow.propose_transfer(
            vault="reserve-safe", proposer="treasury-ops", asset="ETH",
            outputs=[(COLD_STORAGE, ETHER)], fee_max=0, purpose="to cold storage",
            reference="E-1", expires_in_seconds=86_400)
        approve(workflow, status, "central-bank", "vasp-regulator", at=workflow.clock())
        adapter = EVMAdapter(w3=chain.w3, vault_id="reserve-safe", safe_address=safe,
                             account=chain.deployer)
        workflow.release(status.digest, adapter, actor="treasury-ops")
        package = tmp_path / "package.json"
        package.write_text(package_json(build_signing_package(ledger, status.digest)))

        enrolment, elsewhere = tmp_path / "enrolment.json", tmp_path / "elsewhere.json"
        for path, address in ((enrolment, safe), (elsewhere, "0x" + "5a" * 20)):
            _ok(["enrol", "--ledger-key", LEDGER_KEY.verifier.encode(), "--vault",
                 "reserve-safe", "--policy-sha256", loader.policy_sha256(policy), "--safe",
                 address, "--out", str(path)])
        shown = _ok(["package", "show", str(package), "--enrolment", str(enrolment)])
        assert f"pays       1.000000000000000000 ETH to {COLD_STORAGE}" in shown
        assert "tier small" in shown and "Safe transaction hash 0x" in shown

        before = chain.w3.eth.get_balance(COLD_STORAGE)
        for number in (1, 2, 3):
            key, signature = tmp_path / f"key-{number}.json", tmp_path / f"sig-{number}.json"
            _ok(["evm", "keygen", "--out", str(key), "--label", f"owner {number}",
                 "--test-custodian", str(number)])
            refused = runner.invoke(app, ["evm-sign", "--package", str(package),
                                          "--enrolment", str(elsewhere), "--key", str(key),
                                          "--out", str(signature), "--yes"])
            assert refused.exit_code == 2 and "approved transfer mismatch" in \
                " ".join(refused.output.split())
            assert not signature.exists()
            _ok(["evm-sign", "--package", str(package), "--enrolment", str(enrolment),
                 "--key", str(key), "--out", str(signature), "--yes"])
            share = json.loads(signature.read_text())
            workflow.add_signature_share(status.digest, adapter, share["signer"],
                                         share["signature"])
        workflow.broadcast(status.digest, adapter, actor="treasury-ops")
        assert chain.w3.eth.get_balance(COLD_STORAGE) - before == ETHER
