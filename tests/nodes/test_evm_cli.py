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
from reserve.errors import ContractReverted, MismatchError
from reserve.ledger import Ledger
from tests.support.evm_fixtures import Reserve, anvil, chain, deployed, w3  # noqa: F401
from wallets.evm import testkeys
from wallets.evm.demo import execute_with_keys
from wallets.evm.keys import load_account
from wallets.evm.safe_tx import SafeTx
from wallets.evm.vault import read_state
from wallets.signer import evm as signer
from wallets.signer.approval_cli import approval_app
from wallets.signer.cli import app as signer_cli
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
                                   f"{DESTINATION}=1ETH",
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
    # The signing package: the ledger entries that decided the release, proven against a
    # checkpoint. Each custodian's device trusts only its enrolment (the published ledger
    # key, the policy it reviewed, the Safe) and re-checks the release itself.
    package = workspace / "package.json"
    workflow(runner, config, "transfer", "signing-package", digest, "--out", str(package))
    ledger_key = json.loads(workflow(runner, config, "ledger", "public-key", "--json")
                            )["verifier_key"]
    enrolment = workspace / "enrolment.json"
    enrolled = runner.invoke(signer_cli, [
        "enrol", "--ledger-key", ledger_key, "--vault", "reserve-safe", "--policy",
        str(workspace / "config/policies/reserve-evm.toml"), "--safe", shown["safe"],
        "--out", str(enrolment)])
    assert enrolled.exit_code == 0, enrolled.output

    # Three custodians, each with their own keystore, check and sign offline.
    for number, custodian in ((5, "crypto-council"), (1, "finance-ministry"),
                              (3, "vasp-regulator")):
        key = workspace / f"custodian-{number}.json"
        made = runner.invoke(sign_app, ["keygen", "--out", str(key), "--label", f"c{number}",
                                        "--test-custodian", str(number)])
        assert made.exit_code == 0, made.output
        reviewed = runner.invoke(signer_cli, ["package", "show", str(package),
                                              "--enrolment", str(enrolment)])
        assert "send 1.00 ETH (1,000,000,000,000,000,000 wei)" in reviewed.output, reviewed.output
        signature = workspace / f"signature-{number}.json"
        signed = runner.invoke(signer_cli, ["evm-sign", "--package", str(package),
                                            "--enrolment", str(enrolment), "--key", str(key),
                                            "--yes", "--out", str(signature)])
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
    # The library still checks a bare request (as `reserve evm propose-tx` writes one)...
    with pytest.raises(MismatchError, match="amount_wei mismatch"):
        signer.sign(json.loads(path.read_text()), load_account(key, PASSPHRASE))
    # ...but the tool signs only from a signing package.
    old = runner.invoke(sign_app, ["sign", str(path), "--key", str(key), "--yes"])
    assert old.exit_code == 2 and "No such command" in old.output
    assert testkeys.custodian_account(2).address in runner.invoke(
        sign_app, ["address", str(key)]).output


def test_reserve_freeze_freezes_the_guard_in_the_same_step(
        chain: Reserve, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`reserve freeze reserve-safe`: the ledger first, then the guard; a node that is down
    leaves the ledger freeze standing and `reserve evm sync` re-applies it."""
    from wallets.evm.guard import is_frozen

    runner = CliRunner()
    url = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    config = str(workspace / "config/reserve.toml")
    guard = json.loads(reserve(runner, workspace, url, "deploy", "--json"))["guard"]
    loaded = runner.invoke(app, ["policy", "load", str(PROJECT / "config/policies/reserve-evm.toml"),
                                 "--by", "lead", "--config", config])
    assert loaded.exit_code == 0, loaded.output

    monkeypatch.setenv("RESERVE_EVM_RPC_URL", "http://127.0.0.1:9")  # the node is down
    down = runner.invoke(app, ["freeze", "reserve-safe", "--by", "auditor-general",
                               "--reason", "drill", "--config", config])
    assert down.exit_code == 2
    assert "reserve-safe is frozen in the ledger but the chain did not follow" in flat(
        down.output)
    assert not is_frozen(chain.w3, guard)
    shown = runner.invoke(app, ["policy", "show", "reserve-safe", "--json", "--config", config])
    assert json.loads(shown.output)["frozen"] is True  # the ledger freeze stands
    assert "frozen to match the ledger" in reserve(runner, workspace, url, "sync")
    assert is_frozen(chain.w3, guard)
    assert "frozen to match" not in reserve(runner, workspace, url, "sync")  # once only


def test_reserve_freeze_with_the_node_up(chain: Reserve, workspace: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from wallets.evm.guard import is_frozen

    runner = CliRunner()
    url = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    config = str(workspace / "config/reserve.toml")
    guard = json.loads(reserve(runner, workspace, url, "deploy", "--json"))["guard"]
    runner.invoke(app, ["policy", "load", str(PROJECT / "config/policies/reserve-evm.toml"),
                        "--by", "lead", "--config", config])
    monkeypatch.setenv("RESERVE_EVM_RPC_URL", url)
    frozen = runner.invoke(app, ["freeze", "reserve-safe", "--by", "auditor-general",
                                 "--reason", "drill", "--config", config, "--json"])
    assert frozen.exit_code == 0, frozen.output
    assert json.loads(frozen.output)["chain_tx"].startswith("0x")
    assert is_frozen(chain.w3, guard)
    # Issue 12's report: three owners sign a Safe transaction after the freeze. It reverts.
    safe = json.loads(reserve(runner, workspace, url, "vault-show", "--json"))["safe"]
    tx = SafeTx.call(DESTINATION, 10**18, b"", read_state(chain.w3, safe).nonce)
    keys = [testkeys.custodian_private_key(number) for number in (1, 2, 3)]
    with pytest.raises(ContractReverted, match="ReserveGuard refused: vault frozen"):
        execute_with_keys(chain.w3, testkeys.deployer_account(), safe, tx, keys)
