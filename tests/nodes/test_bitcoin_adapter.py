"""BitcoinAdapter against a real regtest bitcoind: the happy path and every refusal.

Each refusal must be a clear WalletError and leave the ledger exactly as it was: the adapter
checks before the Bitcoin service writes anything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

import pytest
from embit.psbt import PSBT
from embit.transaction import SIGHASH

from reserve.errors import PSBTError, WalletError
from reserve.transfers.chain import ChainAdapter, ReleaseOrder, ReleaseOutput
from tests.support.bitcoin_fixtures import VaultKit
from wallets.bitcoin.adapter import BitcoinAdapter, approved_transfer
from wallets.bitcoin.psbt_check import parse_psbt
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.bitcoin.shares import DuplicateShare, NotACustodian, QuorumNotMet
from wallets.bitcoin.testkeys import demo_custodian_key
from wallets.signer.bitcoin import sign_psbt

REGTEST_CHAIN = "bip122:0f9188f13cb7b2c71f2a335e3a4fc328"
DEPOSIT_SATS = 50_000_000
MakeVault = Callable[..., VaultKit]


def _order(kit: VaultKit, miner: BitcoinRPC, label: str = "order",
           amount: int = 20_000_000) -> ReleaseOrder:
    return ReleaseOrder(
        proposal_digest=hashlib.sha256(f"{kit.vault.vault_id}/{label}".encode()).digest(),
        policy_version=1, vault_id=kit.vault.vault_id, network="regtest", chain=REGTEST_CHAIN,
        asset="BTC", outputs=(ReleaseOutput(miner.getnewaddress("", "bech32"), amount),),
        fee_max=50_000)


def _funded(make_vault: MakeVault, bitcoind: RegtestNode,
            miner: BitcoinRPC) -> tuple[VaultKit, BitcoinAdapter]:
    kit: VaultKit = make_vault(2, 3)
    kit.deposit(bitcoind, miner, [DEPOSIT_SATS])
    adapter = BitcoinAdapter(kit.service, kit.watcher)
    adapter.watcher.sync()
    return kit, adapter


def _share(kit: VaultKit, adapter: BitcoinAdapter, order: ReleaseOrder, psbt_base64: str,
           custodian: int) -> str:
    """What custodian `custodian` (0-based) returns: the PSBT signed by the project's signer."""
    signed = sign_psbt(psbt_base64, kit.vault, adapter.transfer_for(order), kit.roots[custodian])
    base64: str = signed.psbt.to_base64()
    return base64


def test_adapter_drives_a_transfer_from_psbt_to_confirmation(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC) -> None:
    kit, adapter = _funded(make_vault, bitcoind, miner)
    assert isinstance(adapter, ChainAdapter)
    order = _order(kit, miner)
    assert approved_transfer(order).amount_sats == order.amount

    prepared = adapter.prepare(order)
    assert prepared.kind == "btc.psbt_created" and prepared.recorded
    # Preparing again (a retried release) finds the same PSBT and records nothing new.
    size = kit.ledger.size()
    assert adapter.prepare(order).payload["txid"] == prepared.payload["txid"]
    assert kit.ledger.size() == size

    for custodian in (0, 2):
        step = adapter.add_share(order, (), kit.vault.custodians[custodian].name,
                                 _share(kit, adapter, order, prepared.payload["psbt_base64"],
                                        custodian))
        assert step.kind == "btc.share_received" and step.recorded
    assert step.payload["complete"] and step.payload["signers"] == \
        [kit.vault.custodians[0].name, kit.vault.custodians[2].name]

    report = adapter.broadcast(order, ())
    assert report.txid == prepared.payload["txid"] and report.step.recorded
    assert adapter.confirmation(order, (), report.txid).depth == 0
    bitcoind.mine(1)
    confirmed = adapter.confirmation(order, (), report.txid)
    assert confirmed.depth == 1 and confirmed.step is not None and confirmed.step.recorded

    entries = list(kit.ledger.entries())
    assert [e.kind for e in entries] == [
        "btc.deposit", "btc.psbt_created", "btc.share_received", "btc.share_received",
        "btc.finalized", "btc.broadcast", "btc.confirmed"]
    # Every transfer entry names the proposal, so the workflow's projection files it there.
    assert {e.payload["proposal_digest"] for e in entries[1:]} == {order.proposal_digest.hex()}
    assert kit.watcher.ledger_balance_sats() == kit.service.node_balance_sats()


@pytest.mark.parametrize("change", [
    {"vault_id": "another-vault"}, {"network": "signet"}, {"asset": "ETH"},
    {"chain": "bip122:000000000019d6689c085ae165831e93"}, {"chain": "eip155:31337"}])
def test_order_for_another_vault_network_or_chain_is_refused(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC,
        change: dict[str, str]) -> None:
    kit, adapter = _funded(make_vault, bitcoind, miner)
    order = replace(_order(kit, miner), **change)  # type: ignore[arg-type]
    size = kit.ledger.size()
    with pytest.raises(WalletError, match=next(iter(change.values()))):
        adapter.prepare(order)
    assert kit.ledger.size() == size


def test_duplicate_share_is_refused(make_vault: MakeVault, bitcoind: RegtestNode,
                                    miner: BitcoinRPC) -> None:
    kit, adapter = _funded(make_vault, bitcoind, miner)
    order = _order(kit, miner)
    psbt = adapter.prepare(order).payload["psbt_base64"]
    share = _share(kit, adapter, order, psbt, 1)
    name = kit.vault.custodians[1].name
    adapter.add_share(order, (), name, share)
    size = kit.ledger.size()
    with pytest.raises(DuplicateShare, match=f"{name} already signed"):
        adapter.add_share(order, (), name, share)
    assert kit.ledger.size() == size


def _foreign_share(psbt_base64: str) -> str:
    """A PSBT signed on every input by test key 4, who is not a custodian of a 2-of-3 vault."""
    outsider = demo_custodian_key(4).root
    psbt: PSBT = parse_psbt(psbt_base64)
    for i, scope in enumerate(psbt.inputs):
        # Sign at the same path the custodians use, with a key the vault does not know.
        path = next(iter(scope.bip32_derivations.values())).derivation
        key = outsider.derive(path).key
        signature = key.sign(psbt.sighash(i, SIGHASH.ALL)).serialize() + bytes([SIGHASH.ALL])
        scope.partial_sigs[key.get_public_key()] = signature
    encoded: str = psbt.to_base64()
    return encoded


def test_share_from_a_non_custodian_is_refused(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC) -> None:
    kit, adapter = _funded(make_vault, bitcoind, miner)
    order = _order(kit, miner)
    psbt = adapter.prepare(order).payload["psbt_base64"]
    size = kit.ledger.size()
    with pytest.raises(NotACustodian, match="not a custodian key"):
        adapter.add_share(order, (), "crypto-council", _foreign_share(psbt))
    # A custodian's genuine share handed in under someone else's name is refused too.
    with pytest.raises(PSBTError, match=r"signed by .* not by"):
        adapter.add_share(order, (), kit.vault.custodians[0].name,
                          _share(kit, adapter, order, psbt, 1))
    assert kit.ledger.size() == size


def test_broadcast_before_quorum_is_refused(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC) -> None:
    kit, adapter = _funded(make_vault, bitcoind, miner)
    order = _order(kit, miner)
    size = kit.ledger.size()
    with pytest.raises(PSBTError, match="no PSBT was built"):
        adapter.broadcast(order, ())
    assert kit.ledger.size() == size

    psbt = adapter.prepare(order).payload["psbt_base64"]
    adapter.add_share(order, (), kit.vault.custodians[0].name, _share(kit, adapter, order, psbt, 0))
    size = kit.ledger.size()
    mempool = bitcoind.rpc().getrawmempool()
    with pytest.raises(QuorumNotMet, match="1 of 2"):
        adapter.broadcast(order, ())
    assert kit.ledger.size() == size and bitcoind.rpc().getrawmempool() == mempool


def test_confirmation_of_another_transaction_is_refused(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC) -> None:
    kit, adapter = _funded(make_vault, bitcoind, miner)
    order = _order(kit, miner)
    adapter.prepare(order)
    size = kit.ledger.size()
    with pytest.raises(PSBTError, match="not " + "00" * 32):
        adapter.confirmation(order, (), "00" * 32)
    assert kit.ledger.size() == size
