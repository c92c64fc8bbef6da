"""The transfer flow against a real bitcoind, and every way it must refuse bad input.

Each refusal leaves the ledger as it was (same size) and moves no funds (the vault's node
balance is unchanged).
"""

from __future__ import annotations

import pytest

from reserve.errors import NetworkSafetyError, NodeUnavailable, PSBTError
from tests.support.bitcoin_fixtures import VaultKit
from wallets.bitcoin.coins import InsufficientFunds
from wallets.bitcoin.psbt_build import DustOutput, FeeAboveCap
from wallets.bitcoin.psbt_check import parse_psbt
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.shares import DuplicateShare, NotACustodian, QuorumNotMet
from wallets.bitcoin.transfer import ApprovedTransfer, TransferOutput


def _funded(bitcoind, miner, make_vault, threshold=2, count=3) -> VaultKit:  # type: ignore[no-untyped-def]
    kit: VaultKit = make_vault(threshold, count)
    kit.deposit(bitcoind, miner, [100_000_000, 50_000_000])
    kit.watcher.sync()
    return kit


def _sign(kit: VaultKit, psbt_b64: str, signer: int) -> str:
    psbt = parse_psbt(psbt_b64)
    assert psbt.sign_with(kit.roots[signer]) == len(psbt.inputs)
    encoded: str = psbt.to_base64()
    return encoded


def _refused(kit: VaultKit, error: type[Exception], action, match: str = "") -> None:  # type: ignore[no-untyped-def]
    size, balance = kit.ledger.size(), kit.service.node_balance_sats(0)
    with pytest.raises(error, match=match or None):
        action()
    assert kit.ledger.size() == size, "a refused input must write nothing"
    assert kit.service.node_balance_sats(0) == balance, "a refused input must move nothing"


def test_bad_transfers_are_refused_before_anything_is_recorded(bitcoind, miner, make_vault) -> None:  # type: ignore[no-untyped-def]
    kit = _funded(bitcoind, miner, make_vault)
    dest = miner.getnewaddress("", "bech32")
    service = kit.service
    _refused(kit, InsufficientFunds, lambda: service.build_psbt(
        kit.transfer([(dest, 10 * 100_000_000)], "too much")), "insufficient funds")
    _refused(kit, DustOutput, lambda: service.build_psbt(
        kit.transfer([(dest, 100)], "dust")), "dust")
    _refused(kit, FeeAboveCap, lambda: service.build_psbt(
        kit.transfer([(dest, 1_000_000)], "cap", fee_sats_max=50)), "above the cap")
    mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    _refused(kit, NetworkSafetyError, lambda: service.build_psbt(
        kit.transfer([(mainnet, 1_000_000)], "mainnet")), "not for regtest")
    other_vault = ApprovedTransfer(b"\x01" * 32, 1, "another-vault", "regtest",
                                   (TransferOutput(dest, 1_000_000),), 10_000)
    _refused(kit, PSBTError, lambda: service.build_psbt(other_vault), "another-vault")


def test_shares_checked_duplicates_and_strangers_refused(bitcoind, miner, make_vault) -> None:  # type: ignore[no-untyped-def]
    kit = _funded(bitcoind, miner, make_vault)
    stranger = make_vault(2, 3)  # same custodians' seeds, another account: not this vault
    transfer = kit.transfer([(miner.getnewaddress("", "bech32"), 30_000_000)])
    base = kit.service.build_psbt(transfer).to_base64()
    assert kit.service.build_psbt(transfer).to_base64() == base  # built once
    progress = kit.service.add_share(transfer, _sign(kit, base, 0))
    assert progress.signers == ("finance-ministry",) and not progress.complete
    _refused(kit, DuplicateShare, lambda: kit.service.add_share(transfer, _sign(kit, base, 0)))
    _refused(kit, NotACustodian, lambda: kit.service.add_share(
        transfer, _sign_foreign(stranger, base)))
    _refused(kit, PSBTError, lambda: kit.service.add_share(transfer, base[:-20]), "malformed")
    _refused(kit, QuorumNotMet, lambda: kit.service.finalize_and_broadcast(transfer))
    other = kit.transfer([(miner.getnewaddress("", "bech32"), 1_000_000)], "other")
    _refused(kit, PSBTError, lambda: kit.service.add_share(other, _sign(kit, base, 1)))


def _sign_foreign(stranger: VaultKit, base: str) -> str:
    # Sign with the stranger's key at the paths the PSBT names (their fingerprints match
    # the vault's custodians, but their account keys are different).
    psbt = parse_psbt(base)
    for scope in psbt.inputs:
        for public_key, derivation in list(scope.bip32_derivations.items())[:1]:
            path = list(derivation.derivation)
            path[2] = 2**31 + stranger.account
            key = stranger.roots[0].derive(path)
            scope.partial_sigs[key.get_public_key()] = key.key.sign(
                psbt.sighash(0)).serialize() + b"\x01"
            del public_key
    encoded: str = psbt.to_base64()
    return encoded


def test_broadcast_twice_is_idempotent(bitcoind, miner, make_vault) -> None:  # type: ignore[no-untyped-def]
    kit = _funded(bitcoind, miner, make_vault)
    transfer = kit.transfer([(miner.getnewaddress("", "bech32"), 25_000_000)])
    base = kit.service.build_psbt(transfer).to_base64()
    for signer in (0, 2):
        kit.service.add_share(transfer, _sign(kit, base, signer))
    txid = kit.service.finalize_and_broadcast(transfer)
    size = kit.ledger.size()
    assert kit.service.finalize_and_broadcast(transfer) == txid
    assert kit.ledger.size() == size
    assert len([e for e in kit.ledger.entries(kinds=["btc.broadcast"])]) == 1
    bitcoind.mine(1)
    assert kit.watcher.sync().confirmed == (txid,)
    assert kit.watcher.ledger_balance_sats() == kit.service.node_balance_sats()


def test_node_down_mid_flow_then_resumes(miner, make_vault, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A node of its own: this test stops and restarts it.
    with RegtestNode(datadir=tmp_path / "node") as node:
        own_miner = node.miner()
        kit = _kit_on(node, tmp_path)
        kit.deposit(node, own_miner, [80_000_000])
        kit.watcher.sync()
        transfer = kit.transfer([(own_miner.getnewaddress("", "bech32"), 10_000_000)])
        base = kit.service.build_psbt(transfer).to_base64()
        kit.service.add_share(transfer, _sign(kit, base, 0))
        node.stop()
        size = kit.ledger.size()
        with pytest.raises(NodeUnavailable):
            kit.service.build_psbt(kit.transfer([(kit.vault.address(0, 9), 5_000_000)], "x"))
        kit.service.add_share(transfer, _sign(kit, base, 1))  # shares need no node
        with pytest.raises(NodeUnavailable):
            kit.service.finalize_and_broadcast(transfer)
        with pytest.raises(NodeUnavailable):
            kit.watcher.sync()
        # Only the share, and the broadcast's intent (written before sending), were recorded.
        assert [e.kind for e in kit.ledger.entries(size)] == ["btc.share_received",
                                                             "btc.finalized"]
        node.start()
        kit.service.ensure_watch_only()
        txid = kit.service.finalize_and_broadcast(transfer)
        node.mine(1)
        assert kit.watcher.sync().confirmed == (txid,)
        assert kit.watcher.ledger_balance_sats() == kit.service.node_balance_sats()


def _kit_on(node: RegtestNode, tmp_path) -> VaultKit:  # type: ignore[no-untyped-def]
    from reserve.ledger import Ledger
    from wallets.bitcoin.service import BitcoinVaultService
    from wallets.bitcoin.testkeys import demo_custodian_keys, demo_vault
    from wallets.bitcoin.watcher import ChainWatcher

    vault = demo_vault(2, 3, account=7)
    ledger = Ledger.open(f"sqlite:///{tmp_path}/restart.sqlite")
    service = BitcoinVaultService(vault, ledger, node.rpc())
    service.ensure_watch_only()
    roots = tuple(k.root for k in demo_custodian_keys(3, account=7))
    return VaultKit(vault, ledger, service, ChainWatcher(vault, ledger, node.rpc()), roots, 7)
