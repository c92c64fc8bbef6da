"""The Bitcoin flow under chain faults, on a private regtest node: a 10-block reorg, and
bitcoind stopped in the middle of the flow.

The node is this module's own (not the session's), since the tests stop it and reorganise
its chain. After a 10-block reorg the confirmed transfer goes back to `broadcast` and is
confirmed again on the longer chain; with the node stopped, broadcasting and checking
confirmations fail with `NodeUnavailable` and write nothing, and once the node is back the
same calls carry the flow on. Each time the vault's ledger balance equals the node's.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator

import pytest

from reserve.errors import NodeUnavailable
from reserve.ledger.store import Ledger
from reserve.ledger.verify import verify_ledger
from reserve.transfers.projection import Projection
from reserve.transfers.service import WorkflowService
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.bitcoin_workflow import confirm_small_transfer, sign_small_transfer
from tests.support.workflow import btc_policy, workflow_service
from wallets.bitcoin.adapter import BitcoinAdapter
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.bitcoin.service import BitcoinVaultService
from wallets.bitcoin.watcher import ChainWatcher

MakeVault = Callable[..., VaultKit]
REORG_BLOCKS = 10
KILLED = 9


@pytest.fixture(scope="module")
def bitcoind() -> Iterator[RegtestNode]:
    with RegtestNode() as node:
        node.miner()
        yield node


@pytest.fixture(scope="module")
def miner(bitcoind: RegtestNode) -> BitcoinRPC:
    return bitcoind.miner()


def _funded_flow(make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC
                 ) -> tuple[VaultKit, WorkflowService, BitcoinAdapter]:
    kit = make_vault(3, 5)
    kit.deposit(bitcoind, miner, [60_000_000])
    workflow = workflow_service(kit.ledger, btc_policy(kit.vault.vault_id), clock=None)
    adapter = BitcoinAdapter(kit.service, kit.watcher)
    adapter.watcher.sync()
    return kit, workflow, adapter


def _balances_agree_and_ledger_holds(kit: VaultKit, workflow: WorkflowService) -> None:
    assert kit.watcher.ledger_balance_sats() == kit.service.node_balance_sats()
    replayed = Projection()
    replayed.apply_all(kit.ledger.entries())
    assert replayed.snapshot() == workflow.sync().snapshot()
    assert verify_ledger(kit.ledger).ok


def test_a_ten_block_reorg_returns_the_transfer_to_broadcast_and_it_confirms_again(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC) -> None:
    kit, workflow, adapter = _funded_flow(make_vault, bitcoind, miner)
    digest, txid, block = confirm_small_transfer(kit, workflow, adapter, bitcoind)
    bitcoind.mine(REORG_BLOCKS - 1)  # the transfer's block is now ten deep
    node = bitcoind.rpc()
    tip = node.getblockcount()

    node.invalidateblock(block)  # ten blocks leave the best chain at once
    assert node.getblockcount() == tip - REORG_BLOCKS
    assert adapter.watcher.sync().reorged == (txid,)
    assert workflow.status(digest).state == "broadcast"

    bitcoind.mine(REORG_BLOCKS + 1)  # a longer chain without the old blocks
    assert node.getblockcount() == tip + 1
    assert workflow.check_confirmation(digest, adapter) >= 1
    final = workflow.status(digest)
    assert final.state == "confirmed"
    assert final.chain_steps[-1].payload["blockhash"] != block
    _balances_agree_and_ledger_holds(kit, workflow)


def _broadcast_then_die(url: str, kit: VaultKit, rpc: BitcoinRPC, digest: str) -> None:
    """In a child process: the workflow's broadcast, killed (os._exit, no clean-up) right
    after the node accepted the transaction and before the ledger recorded the broadcast."""
    ledger = Ledger.open(url)
    service = BitcoinVaultService(kit.vault, ledger, rpc)
    send = service._send

    def send_then_die(raw_hex: str) -> None:
        send(raw_hex)
        os._exit(KILLED)

    service._send = send_then_die  # type: ignore[method-assign]
    adapter = BitcoinAdapter(service, ChainWatcher(kit.vault, ledger, rpc))
    WorkflowService(ledger, clock=None).broadcast(digest, adapter, actor="treasury-ops")
    os._exit(0)  # not reached when the kill point is


def test_a_crash_between_the_node_accepting_and_the_ledger_recording_loses_no_link(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC) -> None:
    kit, workflow, adapter = _funded_flow(make_vault, bitcoind, miner)
    digest = sign_small_transfer(kit, workflow, adapter)
    size = kit.ledger.size()
    child = multiprocessing.get_context("fork").Process(
        target=_broadcast_then_die, args=(kit.ledger.url, kit, bitcoind.rpc(retries=0), digest))
    child.start()
    child.join(60)
    assert child.exitcode == KILLED
    # The node has the transaction; the ledger has the intent and no broadcast.
    (intent,) = [e for e in kit.ledger.entries(size)]
    assert intent.kind == "btc.finalized" and intent.payload["proposal_digest"] == digest
    assert intent.payload["txid"] in miner.getrawmempool()
    assert workflow.status(digest).state == "signing"
    # A block later the watcher files the confirmation under its proposal, not under null,
    bitcoind.mine(1)
    adapter.watcher.sync()
    (confirmed,) = [e for e in kit.ledger.entries(size, kinds=["btc.confirmed"])]
    assert confirmed.payload["proposal_digest"] == digest
    # and the restarted flow records the broadcast (the node says "already") and confirms.
    assert workflow.broadcast(digest, adapter, actor="treasury-ops") == intent.payload["txid"]
    assert workflow.check_confirmation(digest, adapter) >= 1
    assert workflow.status(digest).state == "confirmed"
    _balances_agree_and_ledger_holds(kit, workflow)


def test_a_stopped_node_fails_the_step_cleanly_and_the_flow_resumes(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC) -> None:
    kit, workflow, adapter = _funded_flow(make_vault, bitcoind, miner)
    digest = sign_small_transfer(kit, workflow, adapter)

    # Stopped before the broadcast: it fails with only the intent recorded (this txid for
    # this proposal, written before sending); back, it broadcasts.
    bitcoind.stop()
    size = kit.ledger.size()
    with pytest.raises(NodeUnavailable):
        workflow.broadcast(digest, adapter, actor="treasury-ops")
    assert [e.kind for e in kit.ledger.entries(size)] == ["btc.finalized"]
    assert workflow.status(digest).state == "signing"
    bitcoind.start()
    txid = workflow.broadcast(digest, adapter, actor="treasury-ops")
    assert workflow.status(digest).state == "broadcast"

    # Stopped while waiting for the confirmation: the same; the mempool survives it.
    bitcoind.stop()
    size = kit.ledger.size()
    with pytest.raises(NodeUnavailable):
        workflow.check_confirmation(digest, adapter)
    assert kit.ledger.size() == size and workflow.status(digest).state == "broadcast"
    bitcoind.start()
    bitcoind.mine(1)
    assert workflow.check_confirmation(digest, adapter) == 1
    final = workflow.status(digest)
    assert final.state == "confirmed" and final.txid == txid
    _balances_agree_and_ledger_holds(kit, workflow)
