# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""The `reserve evm`, `reserve transfer`, `reserve ledger anchor` and `reserve-sign` on anvil.

One narrated run through the command line, from proposal to confirmation, as an operator
and the custodians would do it,
with a throwaway config (ledger and keys in a temp folder) against the session's anvil.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from reserve.cli.anchor import anchor_command, verify_anchors
from reserve.cli.main import app
from reserve.config import load
from reserve.ledger import Ledger
from tests.support.evm_fixtures import Reserve, anvil, chain, deployed, w3  # noqa: F401
from wallets.evm import testkeys
from wallets.signer.approval_cli import approval_app
from wallets.signer.evm_cli import evm_app as sign_app

PROJECT = Path(__file__).resolve().parents[2]
DESTINATION = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # allowlisted in the demo config
PASSPHRASE = "custodian test passphrase"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config").mkdir()
    shutil.copytree(PROJECT / "config" / "evm", tmp_path / "config" / "evm")
    shutil.copytree(PROJECT / "config" / "policies", tmp_path / "config" / "policies")
    (tmp_path / "config" / "reserve.toml").write_text(
        'network = "regtest"\n[ledger]\ndatabase_url = "sqlite:///var/ledger.sqlite"\n'
        'origin = "reserve.example/cli-test"\nkey_path = "var/keys/ledger.json"\n')
    monkeypatch.setenv("RESERVE_SIGNER_PASSPHRASE", PASSPHRASE)
    return tmp_path


def flat(text: str) -> str:
    """Output with line wrapping undone (the console wraps long error lines)."""
    return " ".join(text.split())


def reserve(runner: CliRunner, workspace: Path, url: str, *args: str) -> str:
    result = runner.invoke(app, ["evm", "--config", str(workspace / "config/reserve.toml"),
                                 "--rpc-url", url, *args])
    assert result.exit_code == 0, result.output
    return result.output


def workflow(runner: CliRunner, config: str, *args: str) -> str:
    """`reserve ARGS --config CONFIG` (the workflow and transfer commands)."""
    result = runner.invoke(app, [*args, "--config", config])
    assert result.exit_code == 0, result.output
    return result.output


def test_operator_and_custodians_run_a_transfer_from_the_command_line(
        chain: Reserve, workspace: Path) -> None:
    runner = CliRunner()
    url = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    config = str(workspace / "config/reserve.toml")

    # The operator deploys the demo vault and records it; the watcher records its funding.
    deployed_json = json.loads(reserve(runner, workspace, url, "deploy", "--json"))
    assert deployed_json["threshold"] == 3 and len(deployed_json["owners"]) == 5
    assert "2 entries recorded: evm.deposit, evm.deposit" in reserve(runner, workspace, url, "sync")

    # The policy is recorded; the operator proposes 1 ETH to an allowlisted destination
    # (the small tier: two approvals from two institutions, no delay).
    shown = json.loads(reserve(runner, workspace, url, "vault-show", "--json"))
    assert shown["balances_chain"] == shown["balances_ledger"]
    workflow(runner, config, "policy", "load", str(workspace / "config/policies/reserve-evm.toml"),
             "--by", "treasury-ops")
    proposed = json.loads(workflow(runner, config, "propose", "--vault", "reserve-safe", "--by",
                                   "treasury-ops", "--asset", "ETH", "--to",
                                   f"{DESTINATION}={10**18}", "--fee-max", "0",
                                   "--purpose", "settlement", "--json"))
    digest = proposed["digest"]
    document = workspace / "proposal.json"
    document.write_text(json.dumps(proposed["proposal"]))
    for custodian in ("central-bank", "crypto-council"):
        key = workspace / f"{custodian}-approval.json"
        vote = workspace / f"{custodian}-vote.json"
        for args in (["test-key", "--out", str(key), "--custodian", custodian,
                      "--scrypt-n", "4096"],
                     ["sign", str(document), "--key", str(key), "--out", str(vote), "--quiet"]):
            made = runner.invoke(approval_app, args, env={"RESERVE_APPROVAL_PASSPHRASE": PASSPHRASE})
            assert made.exit_code == 0, made.output
        workflow(runner, config, "approve", str(vote))

    # The operator releases it: the service builds the Safe transaction for exactly it.
    transfer = ["--evm-rpc-url", url]
    workflow(runner, config, "transfer", "release", digest, "--by", "treasury-ops", *transfer)
    package = json.loads(workflow(runner, config, "transfer", "signing-package", digest))
    request = workspace / "request.json"
    request.write_text(json.dumps(package["signing_request"]))

    # Three custodians, each with their own keystore, review and sign offline.
    for number, custodian in ((5, "crypto-council"), (1, "finance-ministry"),
                              (3, "vasp-regulator")):
        key = workspace / f"custodian-{number}.json"
        made = runner.invoke(sign_app, ["keygen", "--out", str(key), "--label", f"c{number}",
                                        "--test-custodian", str(number)])
        assert made.exit_code == 0, made.output
        reviewed = runner.invoke(sign_app, ["review", str(request)])
        assert "send 1000000000000000000 base units of ETH" in reviewed.output
        signature = workspace / f"signature-{number}.json"
        signed = runner.invoke(sign_app, ["sign", str(request), "--key", str(key), "--yes",
                                          "--out", str(signature)])
        assert signed.exit_code == 0, signed.output
        if number == 5:  # handed in under another custodian's name: refused
            wrong = runner.invoke(app, ["transfer", "submit-share", digest, str(signature),
                                        "--by", "central-bank", "--config", config, *transfer])
            assert wrong.exit_code == 2 and "central-bank's owner address" in flat(wrong.output)
        workflow(runner, config, "transfer", "submit-share", digest, str(signature), "--by",
                 custodian, *transfer)

    executed = json.loads(workflow(runner, config, "transfer", "broadcast", digest, "--by",
                                   "treasury-ops", "--json", *transfer))
    assert executed["state"] == "broadcast" and executed["txid"].startswith("0x")
    confirmed = json.loads(workflow(runner, config, "transfer", "confirm", digest, "--json",
                                    *transfer))
    assert confirmed["state"] == "confirmed" and confirmed["next"]["step"] == "none"
    reserve(runner, workspace, url, "sync")
    shown = json.loads(reserve(runner, workspace, url, "vault-show", "--json"))
    assert shown["balances_chain"] == shown["balances_ledger"]
    assert shown["balances_chain"]["ETH"] == str(49 * 10**18)

    # Broadcasting the same transfer again is refused with one clear line.
    again = runner.invoke(app, ["transfer", "broadcast", digest, "--by", "treasury-ops",
                                "--config", config, *transfer])
    assert again.exit_code == 2 and "is confirmed" in flat(again.output)

    # Anchor the ledger and verify the anchor.
    anchor_app = typer.Typer()
    anchor_app.command()(anchor_command)
    anchored = runner.invoke(anchor_app, ["--rpc-url", url, "--config", config,
                                          "--tree-size", "3", "--json"])
    assert anchored.exit_code == 0, anchored.output
    assert json.loads(anchored.output)["tree_size"] == 3
    smaller = runner.invoke(anchor_app, ["--rpc-url", url, "--config", config,
                                         "--tree-size", "2"])
    assert smaller.exit_code == 2 and "strictly increase" in flat(smaller.output)
    settings = load(config)
    with Ledger.open(settings.ledger.database_url) as ledger:
        assert verify_anchors(ledger, url, settings=settings) == []


def test_sign_refuses_a_tampered_request(chain: Reserve, workspace: Path) -> None:
    runner = CliRunner()
    key = workspace / "k.json"
    assert runner.invoke(sign_app, ["keygen", "--out", str(key), "--label", "x",
                                    "--test-custodian", "2"]).exit_code == 0
    from wallets.evm.transfer import ApprovedEVMTransfer, to_safe_tx
    from wallets.signer.evm import signing_request

    transfer = ApprovedEVMTransfer(b"\x01" * 32, 1, "reserve-safe", 31337,
                                   "0x" + "5a" * 20, "ETH", DESTINATION, 10**18, 0)
    request = signing_request(transfer, to_safe_tx(transfer))
    request["transfer"]["amount_wei"] = str(10**17)  # the approval says less than the tx
    path = workspace / "request.json"
    path.write_text(json.dumps(request))
    result = runner.invoke(sign_app, ["sign", str(path), "--key", str(key), "--yes"])
    assert result.exit_code == 2 and "amount_wei mismatch" in flat(result.output)
    assert testkeys.custodian_account(2).address in runner.invoke(
        sign_app, ["address", str(key)]).output
