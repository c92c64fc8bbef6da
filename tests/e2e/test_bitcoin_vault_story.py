"""The national Bitcoin wallet pays out under its policy, driven only through the command line.

An operator and custodians use nothing but `reserve` (the service) and `reserve-sign` (each
custodian's offline tool), as they would at their desks: the policy is recorded, a deposit
arrives, the operator proposes a payment, two custodians of two institutions approve it
offline, the operator releases it (the service builds the PSBT for exactly the approved
output), three custodians sign their copies from the signing package, the operator
broadcasts, a block confirms it. At every step `reserve transfer status` says what is next
and who must act. Steps out of turn are refused with a reason and write nothing.

The story runs its own regtest node: the config vault's addresses are fixed, and other
stories on a shared node would see its coins.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reserve.cli.main import app as reserve_app
from reserve.ledger import Ledger
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import sats_to_btc
from wallets.signer.cli import app as signer_app

ROOT = Path(__file__).resolve().parents[2]
VAULT_FILE = ROOT / "config" / "vaults" / "reserve-btc-3of5.toml"
POLICY_FILE = ROOT / "config" / "policies" / "national-btc.toml"
SETTLEMENT = "bcrt1qm9rr2m3e7whcch4j6eer0rsr833atel3fstwt7"  # allowlisted in the policy
PASSPHRASE = "e2e-test-passphrase"  # TEST keystores only
TEST_NUMBER = {"finance-ministry": 1, "central-bank": 2, "vasp-regulator": 3,
               "auditor-general": 4, "crypto-council": 5}
runner = CliRunner()


@pytest.fixture(scope="module")
def node() -> Iterator[RegtestNode]:
    with RegtestNode() as started:
        started.miner()
        yield started


def _run(app, args: list[str], env: dict[str, str], code: int = 0) -> str:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, args, env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    output: str = result.output
    return output


def _status(base: list[str], digest: str, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    found: dict = json.loads(_run(reserve_app, ["transfer", "status", digest, *base, "--json"],  # type: ignore[type-arg]
                                  env))
    return found


def test_payment_from_proposal_to_confirmation_through_the_cli(node: RegtestNode,
                                                               tmp_path: Path) -> None:
    database = tmp_path / "ledger.sqlite"
    config = tmp_path / "reserve.toml"
    config.write_text(f'network = "regtest"\n[ledger]\ndatabase_url = "sqlite:///{database}"\n'
                      f'origin = "test.reserve/e2e-cli"\nkey_path = "{tmp_path}/key.json"\n'
                      f'[bitcoin]\nrpc_url = "{node.url}"\nrpc_user = "{node.user}"\n'
                      f'vaults_dir = "{VAULT_FILE.parent}"\n')
    env = {"RESERVE_BTC_RPC_PASSWORD": node.password, "RESERVE_SIGNER_PASSPHRASE": PASSPHRASE,
           "RESERVE_APPROVAL_PASSPHRASE": PASSPHRASE}
    base = ["--config", str(config)]

    # 1. The policy is recorded; the vault is imported watch-only; a deposit arrives.
    _run(reserve_app, ["policy", "load", str(POLICY_FILE), "--by", "treasury-ops", *base], env)
    _run(reserve_app, ["btc", *base, "watch", "--vault", str(VAULT_FILE)], env)
    address = _run(reserve_app, ["btc", *base, "address", "--vault", str(VAULT_FILE)],
                   env).split()[0]
    node.miner().sendtoaddress(address, sats_to_btc(50_000_000))
    node.mine(1)
    assert "1 deposit(s)" in _run(reserve_app, ["btc", *base, "sync", "--vault",
                                                str(VAULT_FILE)], env)

    # 2. The operator proposes 0.05 BTC to the allowlisted settlement address: the small
    #    tier, two approvals from two institutions, no delay.
    proposed = json.loads(_run(reserve_app, [
        "propose", "--vault", "national-btc", "--by", "treasury-ops", "--asset", "BTC",
        "--to", f"{SETTLEMENT}=5000000", "--fee-max", "20000", "--purpose", "settlement",
        *base, "--json"], env))
    digest = proposed["digest"]
    assert _status(base, digest, env)["next"]["step"] == "vote"

    # 3. Releasing before the approvals is refused, and writes nothing.
    with Ledger.open(f"sqlite:///{database}") as ledger:
        size = ledger.size()
    refused = _run(reserve_app, ["transfer", "release", digest, "--by", "treasury-ops", *base],
                   env, code=2)
    assert "is proposed; this step needs releasable" in refused

    # 4. Two custodians approve offline with their own encrypted keys.
    document = tmp_path / "proposal.json"
    document.write_text(json.dumps(proposed["proposal"]))
    for custodian in ("central-bank", "crypto-council"):
        key = tmp_path / f"{custodian}-approval.json"
        _run(signer_app, ["approval", "test-key", "--out", str(key), "--custodian", custodian,
                          "--scrypt-n", "4096"], env)
        vote = tmp_path / f"{custodian}-vote.json"
        _run(signer_app, ["approval", "sign", str(document), "--key", str(key), "--digest",
                          digest, "--out", str(vote), "--quiet"], env)
        _run(reserve_app, ["approve", str(vote), *base], env)
    shown = _status(base, digest, env)
    assert shown["state"] == "releasable"
    assert shown["next"] == {"step": "release", "who": ["<operator>"], "text": shown["next"]
                             ["text"], "command": f"reserve transfer release {digest[:16]} "
                                                  "--by OPERATOR"}

    # 5. Only an operator of the vault's policy may release it; a custodian may not.
    with Ledger.open(f"sqlite:///{database}") as ledger:
        size = ledger.size()
    refused = _run(reserve_app, ["transfer", "release", digest, "--by", "central-bank", *base],
                   env, code=2)
    assert "'central-bank' is not an operator of national-btc" in refused
    with Ledger.open(f"sqlite:///{database}") as ledger:
        assert ledger.size() == size

    # 6. The operator releases: the PSBT pays exactly the approved output.
    _run(reserve_app, ["transfer", "release", digest, "--by", "treasury-ops", *base], env)
    package_file = tmp_path / "package.json"
    _run(reserve_app, ["transfer", "signing-package", digest, "--out", str(package_file),
                       *base], env)
    package = json.loads(package_file.read_text())
    assert package["order"]["outputs"] == [{"destination": SETTLEMENT, "amount": "5000000"}]
    transfer_file = tmp_path / "transfer.json"
    transfer_file.write_text(json.dumps(package["approved_transfer"]))
    assert _status(base, digest, env)["next"]["step"] == "sign"

    # 7. Custodians sign their copies offline; a share handed in under another name is
    #    refused; two shares are not enough to broadcast.
    def sign(custodian: str) -> Path:
        keystore = tmp_path / f"{custodian}-btc.json"
        _run(signer_app, ["keygen", "--name", custodian, "--institution", "test", "--out",
                          str(keystore), "--test-custodian", str(TEST_NUMBER[custodian]),
                          "--scrypt-n", "4096"], env)
        share = tmp_path / f"{custodian}.psbt"
        share.write_text(package["psbt_base64"])
        shown = _run(signer_app, ["btc-sign", "--psbt", str(share), "--vault", str(VAULT_FILE),
                                  "--transfer", str(transfer_file), "--keystore",
                                  str(keystore), "--yes"], env)
        assert "matches the approved transfer" in shown
        return share

    first = sign("finance-ministry")
    refused = _run(reserve_app, ["transfer", "submit-share", digest, str(first), "--by",
                                 "central-bank", *base], env, code=2)
    assert "signed by 'finance-ministry', not by 'central-bank'" in " ".join(refused.split())
    _run(reserve_app, ["transfer", "submit-share", digest, str(first), "--by",
                       "finance-ministry", *base], env)
    _run(reserve_app, ["transfer", "submit-share", digest, str(sign("vasp-regulator")), "--by",
                       "vasp-regulator", *base], env)
    refused = _run(reserve_app, ["transfer", "broadcast", digest, "--by", "treasury-ops",
                                 *base], env, code=2)
    assert "2 of 3" in refused
    _run(reserve_app, ["transfer", "submit-share", digest, str(sign("auditor-general")),
                       "--by", "auditor-general", *base], env)
    assert _status(base, digest, env)["next"]["step"] == "broadcast"

    # 8. The operator broadcasts; a block confirms it; the proposal is confirmed.
    sent = json.loads(_run(reserve_app, ["transfer", "broadcast", digest, "--by",
                                         "treasury-ops", *base, "--json"], env))
    assert sent["txid"] in node.rpc().getrawmempool()
    assert _status(base, digest, env)["next"]["step"] == "confirm"
    node.mine(1)
    confirmed = json.loads(_run(reserve_app, ["transfer", "confirm", digest, *base, "--json"],
                                env))
    assert confirmed["state"] == "confirmed" and confirmed["depth"] == 1
    assert confirmed["next"]["step"] == "none"

    # 9. The ledger tells the story, and nothing can be released twice.
    with Ledger.open(f"sqlite:///{database}") as ledger:
        mine = [e.kind for e in ledger.entries()
                if e.kind.startswith("btc.") and e.kind != "btc.deposit"]
    assert mine == ["btc.psbt_created", *["btc.share_received"] * 3, "btc.finalized",
                    "btc.broadcast", "btc.confirmed"]
    again = _run(reserve_app, ["transfer", "release", digest, "--by", "treasury-ops", *base],
                 env, code=2)
    assert "is confirmed" in again
