"""A small transfer taken through the workflow on a real regtest node, step by step.

Shared by the reorg and node-fault tests: `sign_small_transfer` stops just before the
broadcast (where a test may stop the node), `confirm_small_transfer` goes to `confirmed`.
`funded_vault` sets up a 3-of-5 vault with 0.6 BTC, its policy and the workflow on it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from reserve.ledger import Ledger
from reserve.policy.model import Policy
from reserve.transfers.service import WorkflowService
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.workflow import SETTLEMENT, approve, propose, workflow_service
from wallets.bitcoin.adapter import BitcoinAdapter
from wallets.bitcoin.regtest import RegtestNode
from wallets.signer.bitcoin import sign_psbt

AMOUNT_SATS = 5_000_000
SIGNERS = (0, 2, 4)  # three of the vault's five TEST custodians


def funded_vault(make_vault: Callable[..., VaultKit], bitcoind: RegtestNode, miner: object,
                 ledger: Ledger, policy_of: Callable[[str], Policy]
                 ) -> tuple[VaultKit, Policy, WorkflowService, BitcoinAdapter]:
    """A 3-of-5 vault holding one 0.6 BTC coin, `policy_of(vault id)` registered on a
    wall-clock workflow, and the Bitcoin adapter synced to it."""
    kit = make_vault(3, 5, ledger=ledger)
    kit.deposit(bitcoind, miner, [60_000_000])
    policy = policy_of(kit.vault.vault_id)
    workflow = workflow_service(ledger, policy, clock=None)
    adapter = BitcoinAdapter(kit.service, kit.watcher)
    adapter.watcher.sync()
    return kit, policy, workflow, adapter


def sign_small_transfer(kit: VaultKit, workflow: WorkflowService,
                        adapter: BitcoinAdapter) -> str:
    """Digest of a 0.05 BTC transfer proposed, approved, released and signed 3-of-5."""
    now = datetime.now(UTC)
    status = propose(workflow, AMOUNT_SATS, SETTLEMENT, at=now, vault=kit.vault.vault_id)
    approve(workflow, status, "central-bank", "vasp-regulator", at=now)
    digest = status.digest
    psbt = workflow.release(digest, adapter, actor="treasury-ops").payload["psbt_base64"]
    transfer = adapter.transfer_for(workflow.order(digest))
    for number in SIGNERS:
        signed = sign_psbt(psbt, kit.vault, transfer, kit.roots[number])
        workflow.add_signature_share(digest, adapter, kit.vault.custodians[number].name,
                                     signed.psbt.to_base64())
    return digest


def confirm_small_transfer(kit: VaultKit, workflow: WorkflowService, adapter: BitcoinAdapter,
                           bitcoind: RegtestNode) -> tuple[str, str, str]:
    """(digest, txid, block) of a 0.05 BTC transfer taken to `confirmed` by the workflow."""
    digest = sign_small_transfer(kit, workflow, adapter)
    txid = workflow.broadcast(digest, adapter, actor="treasury-ops")
    (block,) = bitcoind.mine(1)
    assert workflow.check_confirmation(digest, adapter) == 1
    assert workflow.status(digest).state == "confirmed"
    return digest, txid, block
