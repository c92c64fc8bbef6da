"""Helpers for the public-sector statement tests on the session regtest bitcoind: node
wallets standing for the state's other institutions, and a transfer through the workflow
that declares its flow class."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.transfers.service import WorkflowService
from tests.support.bitcoin_fixtures import VaultKit
from tests.support.workflow import approve, btc_document, propose, workflow_service
from wallets.bitcoin.adapter import BitcoinAdapter
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.signer.bitcoin import sign_psbt

SIGNERS = (0, 2, 4)  # three of the vault's five TEST custodians


def keyed_wallet(bitcoind: RegtestNode, name: str) -> BitcoinRPC:
    """A node wallet with its own keys: an institution's wallet this service only watches."""
    node = bitcoind.rpc()
    if name not in node.listwallets():
        node.createwallet(name)
    return bitcoind.rpc(name)


def public_descriptors(wallet: BitcoinRPC, kind: str = "") -> list[str]:
    """The wallet's active receive and change descriptors (of `kind`, e.g. "wpkh", when
    given: the node picks the change's type itself), public keys only."""
    listed = wallet.listdescriptors(False)["descriptors"]
    found = sorted((d["internal"], d["desc"]) for d in listed
                   if d["desc"].startswith(f"{kind}(" if kind else "") and d.get("active"))
    return [desc for _internal, desc in found]


def workflow_to(kit: VaultKit, ledger: Ledger, destination: str) -> WorkflowService:
    """The national policy for the kit's vault, its first destination `destination`."""
    document = btc_document(kit.vault.vault_id)
    document["destinations"][0]["address"] = destination
    return workflow_service(ledger, loader.from_mapping(document, source="statement test"),
                            clock=None)


def declared_transfer(kit: VaultKit, workflow: WorkflowService, bitcoind: RegtestNode,
                      destination: str, amount_sats: int, flow_class: str) -> dict[str, Any]:
    """A transfer proposed with `flow_class`, approved, signed 3-of-5, broadcast, mined."""
    adapter = BitcoinAdapter(kit.service, kit.watcher)
    adapter.watcher.sync()
    now = datetime.now(UTC)
    status = propose(workflow, amount_sats, destination, at=now, vault=kit.vault.vault_id,
                     flow_class=flow_class)
    approve(workflow, status, "central-bank", "vasp-regulator", at=now)
    digest = status.digest
    psbt = workflow.release(digest, adapter, actor="treasury-ops").payload["psbt_base64"]
    transfer = adapter.transfer_for(workflow.order(digest))
    for number in SIGNERS:
        signed = sign_psbt(psbt, kit.vault, transfer, kit.roots[number])
        workflow.add_signature_share(digest, adapter, kit.vault.custodians[number].name,
                                     signed.psbt.to_base64())
    txid = workflow.broadcast(digest, adapter, actor="treasury-ops")
    bitcoind.mine(1)
    return {"digest": digest, "txid": txid}
