"""The Bitcoin flow under chain faults, on a private regtest node: a 10-block reorg, and
bitcoind stopped in the middle of the flow.

The node is this module's own (not the session's), since the tests stop it and reorganise
its chain. After a 10-block reorg the confirmed transfer goes back to `broadcast` and is
confirmed again on the longer chain; with the node stopped, broadcasting and checking
confirmations fail with `NodeUnavailable` and write nothing, and once the node is back the
same calls carry the flow on. Each time the vault's ledger balance equals the node's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from reserve.errors import NodeUnavailable
from reserve.ledger.verify import verify_ledger
from reserve.transfers.projection import Projection
from reserve.transfers.service import WorkflowService
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.bitcoin_workflow import confirm_small_transfer, sign_small_transfer
from tests.support.workflow import btc_policy, workflow_service
from wallets.bitcoin.adapter import BitcoinAdapter
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC

MakeVault = Callable[..., VaultKit]
REORG_BLOCKS = 10


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


def test_a_stopped_node_fails_the_step_cleanly_and_the_flow_resumes(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC) -> None:
    kit, workflow, adapter = _funded_flow(make_vault, bitcoind, miner)
    digest = sign_small_transfer(kit, workflow, adapter)

    # Stopped before the broadcast: it fails, nothing is recorded; back, it broadcasts.
    bitcoind.stop()
    size = kit.ledger.size()
    with pytest.raises(NodeUnavailable):
        workflow.broadcast(digest, adapter, actor="treasury-ops")
    assert kit.ledger.size() == size and workflow.status(digest).state == "signing"
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
