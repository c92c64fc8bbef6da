"""A confirmed transfer whose block leaves the best chain is `broadcast` again, on a real node.

The workflow confirms a transfer through BitcoinAdapter; `invalidateblock` takes its block
off the best chain; the watcher's compensating `btc.reorg` names the proposal, and the
projection derives `broadcast` (awaiting re-confirmation) from it, with a readable reason.
Once the transaction is mined again, `check_confirmation` records `confirmed` again. The
ledger keeps every step (nothing edited), verifies, and replays to the live state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.ledger import CheckpointSigner, Ledger
from reserve.ledger.verify import verify_ledger
from reserve.transfers.projection import Projection
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.bitcoin_workflow import confirm_small_transfer
from tests.support.workflow import btc_policy, workflow_service
from wallets.bitcoin.adapter import BitcoinAdapter
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC

MakeVault = Callable[..., VaultKit]
SIGNER = CheckpointSigner("test.reserve/workflow-reorg", Ed25519PrivateKey.generate())


@pytest.fixture()
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite", signer=SIGNER) as opened:
        yield opened


def test_reorged_confirmation_returns_the_transfer_to_broadcast_until_remined(
        make_vault: MakeVault, bitcoind: RegtestNode, miner: BitcoinRPC,
        ledger: Ledger) -> None:
    kit = make_vault(3, 5, ledger=ledger)
    kit.deposit(bitcoind, miner, [60_000_000])
    # The national policy's rules for this test's own vault, on the wall clock.
    workflow = workflow_service(kit.ledger, btc_policy(kit.vault.vault_id), clock=None)
    adapter = BitcoinAdapter(kit.service, kit.watcher)
    adapter.watcher.sync()
    digest, txid, block = confirm_small_transfer(kit, workflow, adapter, bitcoind)
    node = bitcoind.rpc()

    # The block holding the transfer leaves the best chain: the transaction is back in the
    # mempool. The watcher records the compensating entry, naming the proposal.
    node.invalidateblock(block)
    assert adapter.watcher.sync().reorged == (txid,)
    reorg = ledger.entry(ledger.size() - 1)
    assert reorg.kind == "btc.reorg" and reorg.payload["proposal_digest"] == digest
    status = workflow.status(digest)
    assert status.state == "broadcast" and status.txid == txid
    change = status.changes[-1]
    assert change.seq == reorg.seq
    assert f"block {block}" in change.reason and "left the best chain" in change.reason
    assert f"transaction {txid} awaits re-confirmation" in change.reason
    # Not in a block yet: the workflow keeps waiting, and writes nothing.
    size = ledger.size()
    assert workflow.check_confirmation(digest, adapter) == 0
    assert ledger.size() == size and workflow.status(digest).state == "broadcast"

    # Mined again, in another block: confirmed again, with the new block recorded.
    (again,) = bitcoind.mine(1)
    assert again != block
    assert workflow.check_confirmation(digest, adapter) == 1
    final = workflow.status(digest)
    assert final.state == "confirmed"
    assert [c.state for c in final.changes][-3:] == ["confirmed", "broadcast", "confirmed"]
    assert [s.kind for s in final.chain_steps][-3:] == ["btc.confirmed", "btc.reorg",
                                                        "btc.confirmed"]
    assert final.chain_steps[-1].payload["blockhash"] == again
    assert kit.watcher.ledger_balance_sats() == kit.service.node_balance_sats()

    # History kept, not edited: replay gives the live state, and the ledger verifies.
    replayed = Projection()
    replayed.apply_all(ledger.entries())
    assert replayed.snapshot() == workflow.sync().snapshot()
    ledger.checkpoint()
    assert verify_ledger(ledger, SIGNER.verifier).ok
