"""The national Bitcoin wallet, told end to end on a local regtest node.

Two vaults from config/vaults/ (a 2-of-3 national wallet and a 3-of-5 reserve vault) receive
deposits. For each, the service builds a PSBT for an approved transfer; exactly a quorum of
custodians, each with their own encrypted key made by the offline tool `reserve-sign`, check
the PSBT against the approval and sign (with the tool's library: its `btc-sign` command signs
only from a workflow signing package); the service collects the shares, broadcasts, and the
chain watcher records the confirmation. At the end the ledger's balance of each vault equals
what bitcoind reports. Every service step goes through the `reserve btc` command line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reserve.cli.main import app as reserve_app
from reserve.ledger import Ledger
from tests.support.bitcoin_fixtures import bitcoind, miner  # noqa: F401 (fixtures)
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC, sats_to_btc
from wallets.bitcoin.service import BitcoinVaultService
from wallets.bitcoin.transfer import ApprovedTransfer, TransferOutput
from wallets.bitcoin.vault import load_vault
from wallets.bitcoin.watcher import ChainWatcher
from wallets.signer.bitcoin import load_root, sign_psbt
from wallets.signer.cli import app as signer_app

PASSPHRASE = "e2e-test-passphrase"
runner = CliRunner()


def _ok(app, args: list[str], env: dict[str, str] | None = None) -> str:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    output: str = result.output
    return output


@pytest.fixture()
def story(bitcoind: RegtestNode, tmp_path: Path):  # type: ignore[no-untyped-def] # noqa: F811
    config = tmp_path / "reserve.toml"
    database = tmp_path / "ledger.sqlite"
    config.write_text(f'network = "regtest"\n[ledger]\ndatabase_url = "sqlite:///{database}"\n'
                      f'origin = "test.reserve/e2e"\nkey_path = "{tmp_path}/key.json"\n'
                      f'[bitcoin]\nrpc_url = "{bitcoind.url}"\nrpc_user = "{bitcoind.user}"\n')
    env = {"RESERVE_BTC_RPC_PASSWORD": bitcoind.password,
           "RESERVE_SIGNER_PASSPHRASE": PASSPHRASE}
    return config, database, env


def _keystores(tmp_path: Path, count: int, env: dict[str, str]) -> list[Path]:
    paths = []
    for number in range(1, count + 1):
        path = tmp_path / f"custodian-{number}.json"
        if not path.exists():
            output = _ok(signer_app, ["keygen", "--name", f"custodian-{number}",
                                      "--institution", "test", "--out", str(path),
                                      "--test-custodian", str(number), "--scrypt-n", "4096"],
                         env)
            assert "[" in output and "/48h/1h/0h/2h]tpub" in output
        paths.append(path)
    return paths


@pytest.mark.parametrize("vault_file,signers", [("national-btc-2of3.toml", [1, 3]),
                                                ("reserve-btc-3of5.toml", [2, 4, 5])])
def test_vault_story(story: tuple[Path, Path, dict[str, str]],
                     bitcoind: RegtestNode, miner: BitcoinRPC,  # noqa: F811
                     tmp_path: Path, vault_file: str, signers: list[int]) -> None:
    config, database, env = story
    vault_path = Path("config/vaults") / vault_file
    vault = load_vault(vault_path)
    base = ["btc", "--config", str(config)]

    # 1. The vault is imported watch-only; its addresses derive the same locally and on node.
    _ok(reserve_app, [*base, "watch", "--vault", str(vault_path)], env)

    # 2. Two deposits arrive and are recorded once confirmed.
    sent = []
    for amount in (2 * 100_000_000, 35_000_000):
        address = _ok(reserve_app, [*base, "address", "--vault", str(vault_path)], env).split()[0]
        sent.append(miner.sendtoaddress(address, sats_to_btc(amount)))
    # A wallet keeps a transaction the mempool refused without an error: check both are in.
    assert set(sent) <= set(bitcoind.rpc().getrawmempool()), bitcoind.rpc().getmempoolinfo()
    bitcoind.mine(1)
    assert "2 deposit(s)" in _ok(reserve_app, [*base, "sync", "--vault", str(vault_path)], env)

    # 3. The policy engine approved a transfer; the service builds the PSBT for it.
    transfer = ApprovedTransfer(
        proposal_digest=hashlib.sha256(f"e2e/{vault.vault_id}".encode()).digest(),
        policy_version=3, vault_id=vault.vault_id, network="regtest",
        outputs=(TransferOutput(miner.getnewaddress("", "bech32"), 120_000_000),),
        fee_sats_max=20_000)
    transfer_file = tmp_path / f"{vault.vault_id}-transfer.json"
    transfer_file.write_text(transfer.to_json())
    unsigned = tmp_path / f"{vault.vault_id}.psbt"
    _ok(reserve_app, [*base, "build-psbt", "--vault", str(vault_path), "--transfer",
                      str(transfer_file), "--out", str(unsigned)], env)

    # 4. Exactly a quorum of custodians sign, each on their own copy, with their own key.
    keystores = _keystores(tmp_path, len(vault.custodians), env)
    for number in signers:
        share = tmp_path / f"{vault.vault_id}-share-{number}.psbt"
        share.write_bytes(unsigned.read_bytes())
        # Without the policy workflow there is no signing package, which is all the
        # `reserve-sign btc-sign` tool signs from (see test_workflow_bitcoin_story.py); the
        # same checks and key handling are called here as a library.
        root = load_root(keystores[number - 1], env["RESERVE_SIGNER_PASSPHRASE"])
        signed = sign_psbt(share.read_bytes(), vault, transfer, root)
        assert signed.summary.change_sats > 0
        share.write_text(signed.psbt.to_base64() + "\n")
        submitted = _ok(reserve_app, [*base, "submit-share", "--vault", str(vault_path),
                                      "--transfer", str(transfer_file), "--share", str(share)],
                        env)
    assert "ready to broadcast" in submitted

    # 5. The service broadcasts; a block confirms it; the watcher records it.
    txid = _ok(reserve_app, [*base, "broadcast", "--vault", str(vault_path), "--transfer",
                             str(transfer_file)], env).split()[-1]
    bitcoind.mine(1)
    assert "1 confirmation(s)" in _ok(reserve_app, [*base, "sync", "--vault", str(vault_path)],
                                      env)

    # 6. The ledger tells the whole story, and its balance equals bitcoind's.
    with Ledger.open(f"sqlite:///{database}") as ledger:
        kinds = [e.kind for e in ledger.entries() if e.payload.get("vault_id") == vault.vault_id]
        assert kinds == ["btc.deposit", "btc.deposit", "btc.psbt_created",
                         *["btc.share_received"] * len(signers), "btc.finalized",
                         "btc.broadcast", "btc.confirmed"]
        confirmed = list(ledger.entries(kinds=["btc.confirmed"]))[-1]
        assert confirmed.payload["txid"] == txid
        watcher = ChainWatcher(vault, ledger, bitcoind.rpc())
        service = BitcoinVaultService(vault, ledger, bitcoind.rpc())
        fee = confirmed.payload["fee_sats"]
        assert watcher.ledger_balance_sats() == service.node_balance_sats() \
            == 235_000_000 - 120_000_000 - fee
