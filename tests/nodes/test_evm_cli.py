# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""The `reserve evm`, `reserve ledger anchor` and `reserve-sign evm` commands on anvil.

(`reserve-sign evm-sign` signs only from a workflow signing package; this bare-request
flow has none, so its custodians sign with the signer's library.)

One narrated run through the command line, as an operator and three custodians would do it,
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
from reserve.errors import MismatchError
from reserve.ledger import Ledger
from tests.support.evm_fixtures import Reserve, anvil, chain, deployed, w3  # noqa: F401
from wallets.evm import testkeys
from wallets.evm.keys import load_account
from wallets.signer import evm as signer
from wallets.signer.evm_cli import evm_app as sign_app

PROJECT = Path(__file__).resolve().parents[2]
DESTINATION = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # allowlisted in the demo config
PASSPHRASE = "custodian test passphrase"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "config").mkdir()
    shutil.copytree(PROJECT / "config" / "evm", tmp_path / "config" / "evm")
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


def test_operator_and_custodians_run_a_transfer_from_the_command_line(
        chain: Reserve, workspace: Path) -> None:
    runner = CliRunner()
    url = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    config = str(workspace / "config/reserve.toml")

    # The operator deploys the demo vault and records it; the watcher records its funding.
    deployed_json = json.loads(reserve(runner, workspace, url, "deploy", "--json"))
    assert deployed_json["threshold"] == 3 and len(deployed_json["owners"]) == 5
    assert "2 entries recorded: evm.deposit, evm.deposit" in reserve(runner, workspace, url, "sync")

    # An approved transfer arrives from the workflow (here, written by hand).
    shown = json.loads(reserve(runner, workspace, url, "vault-show", "--json"))
    assert shown["balances_chain"] == shown["balances_ledger"]
    transfer = workspace / "transfer.json"
    transfer.write_text(json.dumps({
        "proposal_digest": "ab" * 32, "policy_version": 1, "vault_id": "reserve-safe",
        "chain_id": 31337, "safe_address": shown["safe"], "asset": "ETH", "to": DESTINATION,
        "amount_wei": str(3 * 10**18), "nonce": shown["nonce"]}))
    request = workspace / "request.json"
    reserve(runner, workspace, url, "propose-tx", str(transfer), "--out", str(request))

    # Three custodians, each with their own keystore, review and sign offline.
    for number in (5, 1, 3):
        key = workspace / f"custodian-{number}.json"
        made = runner.invoke(sign_app, ["keygen", "--out", str(key), "--label", f"c{number}",
                                        "--test-custodian", str(number)])
        assert made.exit_code == 0, made.output
        # No workflow here, so no signing package (all `reserve-sign evm-sign` signs from):
        # the request is reviewed and signed with the signer's library.
        document = json.loads(request.read_text())
        reviewed = signer.review(document)
        assert "send 3000000000000000000 base units of ETH" in " ".join(reviewed.summary())
        signature = workspace / f"signature-{number}.json"
        share = signer.sign(document, load_account(key, PASSPHRASE))
        signature.write_text(json.dumps(signer.share_document(share, reviewed.digest)))
        assert "accepted" in reserve(runner, workspace, url, "submit-signature", str(transfer),
                                     str(signature))

    executed = json.loads(reserve(runner, workspace, url, "execute", str(transfer), "--json"))
    assert executed["success"] is True
    reserve(runner, workspace, url, "sync")
    shown = json.loads(reserve(runner, workspace, url, "vault-show", "--json"))
    assert shown["balances_chain"] == shown["balances_ledger"]
    assert shown["balances_chain"]["ETH"] == str(47 * 10**18)

    # Replaying the same transfer is refused with one clear line.
    again = runner.invoke(app, ["evm", "--config", config, "--rpc-url", url, "execute",
                                str(transfer)])
    assert again.exit_code == 2 and "already executed" in flat(again.output)

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
    with pytest.raises(MismatchError, match="amount_wei mismatch"):
        signer.sign(json.loads(path.read_text()), load_account(key, PASSPHRASE))
    old = runner.invoke(sign_app, ["sign", str(path), "--key", str(key), "--yes"])
    assert old.exit_code == 2 and "No such command" in old.output  # bare requests: gone
    assert testkeys.custodian_account(2).address in runner.invoke(
        sign_app, ["address", str(key)]).output
