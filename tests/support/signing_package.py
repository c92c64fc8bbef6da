"""Signing packages for the unit tier: a workflow on the 2-of-3 test vault, real PSBTs
built offline, a ledger whose checkpoints the test ledger key signs, and a forger.

`Forger` plays the strongest attacker the signer must withstand: a coordinator that holds
the ledger key and so can write any entry and sign a checkpoint over it. What it cannot do
is make the policy engine, re-run on the custodian's device, agree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.events import Event
from reserve.events.chain_btc import BtcPsbtCreated
from reserve.events.workflow import ProposalApproved, ProposalCreated, ProposalState
from reserve.ledger import Ledger
from reserve.ledger.checkpoint import CheckpointSigner
from reserve.policy import loader
from reserve.policy.model import Policy
from reserve.proposals.approval import Approval
from reserve.proposals.proposal import Output, Proposal, TransferBody
from reserve.transfers.chain import ChainStep, ReleaseOrder
from reserve.transfers.package import assemble, build_signing_package
from reserve.transfers.readmodel import HOLDINGS, WORKFLOW
from reserve.transfers.service import WorkflowService
from tests.support.workflow import DAY, T0, btc_document
from wallets.bitcoin.adapter import approved_transfer
from wallets.bitcoin.coins import Utxo, select_coins
from wallets.bitcoin.fees import FeeRate
from wallets.bitcoin.psbt_build import build_psbt, psbt_sha256
from wallets.bitcoin.psbt_check import describe
from wallets.bitcoin.vault import Vault, load_vault
from wallets.signer.package import Enrolment

VAULT_FILE = "config/vaults/national-btc-2of3.toml"
VAULT_ID = "national-btc-2of3"
ORIGIN = "reserve.test/ledger"
LEDGER_KEY = CheckpointSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"signing-package test ledger key").digest()))
OTHER_KEY = CheckpointSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"someone else's ledger key").digest()))
SIGN_AT = T0 + timedelta(hours=1)  # the custodian's device clock in these tests


def vault() -> Vault:
    return load_vault(VAULT_FILE)


def policy(**changes: Any) -> Policy:
    """national-btc's rules for the 2-of-3 test vault; `changes` edit custodians by id
    (e.g. central_bank={"institution": "Ministry of Finance"})."""
    document = btc_document(VAULT_ID)
    for custodian in document["custodians"]:
        custodian.update(changes.get(custodian["id"].replace("-", "_"), {}))
    return loader.from_mapping(document, source="test policy")


def enrolment(for_policy: Policy | None = None, **options: Any) -> Enrolment:
    chosen = for_policy or policy()
    return Enrolment(ledger_key=LEDGER_KEY.verifier, vault=VAULT_ID,
                     policy_sha256=loader.policy_sha256(chosen), **options)


@dataclass
class OfflinePsbtChain:
    """Builds the real unsigned PSBT for an order from one made-up 2 BTC vault coin."""

    orders: list[ReleaseOrder] = field(default_factory=list)

    def prepare(self, order: ReleaseOrder) -> ChainStep:
        self.orders.append(order)
        return psbt_step(order)

    def add_share(self, *args: Any) -> ChainStep:  # pragma: no cover (not used)
        raise NotImplementedError

    def broadcast(self, *args: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def confirmation(self, *args: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


def psbt_step(order: ReleaseOrder, outputs: list[tuple[str, int]] | None = None) -> ChainStep:
    """A btc.psbt_created step for `order`, paying `outputs` (default: the order's)."""
    chosen = vault()
    transfer = approved_transfer(order)
    if outputs is not None:
        from wallets.bitcoin.transfer import ApprovedTransfer, TransferOutput

        transfer = ApprovedTransfer(transfer.proposal_digest, transfer.policy_version,
                                    transfer.vault_id, transfer.network,
                                    tuple(TransferOutput(a, s) for a, s in outputs),
                                    transfer.fee_sats_max)
    utxos = [Utxo("ab" * 32, 0, 2_000_000_000, 0, 2, 3)]
    selection = select_coins(utxos, transfer.amount_sats, [22] * len(transfer.outputs),
                             FeeRate(3000, "floor"), 2, 3)
    psbt = build_psbt(chosen, transfer, selection, change_index=1)
    summary = describe(psbt, chosen)
    created = BtcPsbtCreated(
        vault=chosen.vault_id, network=chosen.network, digest=order.proposal_digest.hex(),
        policy_version=transfer.policy_version, txid=summary.txid,
        psbt_sha256=psbt_sha256(psbt.serialize()), psbt_base64=psbt.to_base64(),
        inputs=[{"txid": i.txid, "vout": i.vout, "amount_sats": i.amount_sats}
                for i in summary.inputs],
        outputs=[{"address": o.address, "amount_sats": o.amount_sats,
                  "change": o.change_index is not None} for o in summary.outputs],
        amount_sats=transfer.amount_sats, input_sats=summary.input_sats,
        change_sats=summary.change_sats, fee_sats=summary.fee_sats,
        fee_rate_msat_vb=3000, fee_rate_source="floor")
    return ChainStep(created.KIND, created.to_payload())


def open_ledger() -> Ledger:
    return Ledger.open("sqlite:///:memory:", signer=LEDGER_KEY)


def workflow(ledger: Ledger, chosen: Policy | None = None) -> WorkflowService:
    service = WorkflowService(ledger, clock=lambda: T0)
    service.register_policy(chosen or policy(), "lead", now=T0)
    return service


def propose(service: WorkflowService, amount: int, destination: str,
            at: datetime = T0) -> str:
    status = service.propose_transfer(
        vault=VAULT_ID, proposer="treasury-ops", asset="BTC", outputs=[(destination, amount)],
        fee_max=50_000, purpose="test", reference="R", expires_in_seconds=7 * DAY, now=at)
    return status.digest


def released(service: WorkflowService, amount: int, destination: str, voters: tuple[str, ...],
             at: datetime = T0, release_at: datetime | None = None) -> str:
    """Digest of a transfer proposed, approved by `voters` and released (honestly)."""
    from tests.support.workflow import vote

    digest = propose(service, amount, destination, at)
    proposal = service.status(digest).proposal
    for who in voters:
        service.vote(vote(proposal, who), now=at)
    service.release(digest, OfflinePsbtChain(), "treasury-ops", now=release_at or at)
    return digest


def package(ledger: Ledger, digest: str, at: datetime = T0) -> dict[str, Any]:
    return build_signing_package(ledger, digest, now=at)


@dataclass
class Forger:
    """Writes entries straight into the ledger, as a coordinator holding its key could."""

    ledger: Ledger
    vault_id: str = VAULT_ID

    def __post_init__(self) -> None:
        # A coordinator writing entries itself bypasses the service and its read models
        # (which would refuse most forgeries): the signer must catch them on its own.
        for name in (WORKFLOW, HOLDINGS):
            self.ledger.detach(name)

    def write(self, event: Event, actor: str, at: datetime = T0) -> int:
        return self.ledger.append(event.KIND, actor, event.to_payload(), now=at).seq

    def proposal(self, amount: int, destination: str, *, policy_version: int = 1,
                 at: datetime = T0) -> Proposal:
        body = TransferBody(asset="BTC", fee_max=50_000,
                            outputs=(Output(destination, amount),))
        base = policy()
        proposal = Proposal(vault=self.vault_id, network=base.network,
                            chain=base.chain, policy_version=policy_version,
                            proposer="treasury-ops", purpose="forged", reference="F",
                            created_at=at, expires_at=at + timedelta(days=7), body=body)
        self.write(ProposalCreated(vault=self.vault_id, digest=proposal.digest_hex,
                                   action="transfer", proposal=proposal.document()),
                   "treasury-ops", at)
        return proposal

    def votes(self, digest: str, approvals: list[Approval], at: datetime = T0) -> None:
        for approval in approvals:
            self.write(ProposalApproved(vault=self.vault_id, digest=digest,
                                        custodian=approval.custodian, decision="approve",
                                        signature=approval.signature.hex()),
                       approval.custodian, at)

    def release(self, proposal: Proposal, at: datetime = T0,
                outputs: list[tuple[str, int]] | None = None) -> None:
        """proposed -> approved -> releasable -> signing, and the PSBT."""
        digest = proposal.digest_hex
        for source, target in (("proposed", "approved"), ("approved", "releasable"),
                               ("releasable", "signing")):
            self.write(ProposalState(vault=self.vault_id, digest=digest, source=source,
                                     target=target, reason="forged"), "workflow", at)
        self.psbt(proposal, at, outputs)

    def psbt(self, proposal: Proposal, at: datetime = T0,
             outputs: list[tuple[str, int]] | None = None) -> None:
        step = psbt_step(ReleaseOrder.from_proposal(proposal), outputs)
        self.ledger.append(step.kind, "btc-service", dict(step.payload), now=at)

    def package(self, digest: str, at: datetime = T0) -> dict[str, Any]:
        """A package of every entry naming the vault or `digest`, signed by the ledger key."""
        seqs = [e.seq for e in self.ledger.entries()
                if e.payload.get("vault", e.payload.get("vault_id")) == self.vault_id]
        return assemble(self.ledger, digest, seqs, self.ledger.checkpoint(now=at))
