"""Helpers for the policy and transfer workflow tests: policies, votes, a fake chain.

`workflow_service` is the one set-up of a workflow test: a WorkflowService on a ledger whose
vault has the national-btc policy (or a test's own) as v1. The unit tier's `ledger` and
`service` fixtures (tests/unit/conftest.py) and `fresh_workflow` are built on it.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reserve.events.chain_btc import BtcBroadcast, BtcConfirmed, BtcPsbtCreated, BtcShareReceived
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.policy.model import Policy
from reserve.policy.testkeys import private_key_of
from reserve.proposals.approval import Approval, sign
from reserve.proposals.proposal import Proposal, parse_time
from reserve.transfers.chain import (
    BroadcastReport,
    ChainStep,
    ConfirmationReport,
    ReleaseOrder,
)
from reserve.transfers.projection import ProposalStatus
from reserve.transfers.service import WorkflowService

ROOT = Path(__file__).resolve().parents[2]
BTC_POLICY = ROOT / "config" / "policies" / "national-btc.toml"
EVM_POLICY = ROOT / "config" / "policies" / "reserve-evm.toml"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
COLD = "bcrt1qmxjnkhk4s0pw9m6hzstm44rechuy3yar4jgq0m"
SETTLEMENT = "bcrt1qm9rr2m3e7whcch4j6eer0rsr833atel3fstwt7"
CUSTODIANS = ("finance-ministry", "central-bank", "vasp-regulator", "auditor-general",
              "crypto-council")
HOUR = 3600
DAY = 86400
MEMORY_URL = "sqlite:///:memory:"

Clock = Callable[[], datetime]


def btc_policy(vault: str | None = None) -> Policy:
    """config/policies/national-btc.toml; the same rules for `vault` when one is named."""
    if vault is None:
        return loader.load_file(BTC_POLICY)
    return loader.from_mapping(btc_document(vault), source="test policy")


def btc_document(vault: str | None = None) -> dict[str, Any]:
    """national-btc's policy as a document a test may edit; for `vault` when one is named."""
    document = copy.deepcopy(loader.to_document(btc_policy()))
    if vault is not None:
        document["vault"] = vault
    return document


def at_t0() -> datetime:
    """The workflow tests' clock: it stands still at T0."""
    return T0


def workflow_service(ledger: Ledger, policy: Policy | None = None, *,
                     clock: Clock | None = at_t0, actor: str = "lead") -> WorkflowService:
    """A WorkflowService on `ledger`, with `policy` (national-btc's) registered by `actor`.

    The clock stands at T0 unless the test brings its own; None is the wall clock.
    """
    workflow = WorkflowService(ledger, clock=clock)
    workflow.register_policy(btc_policy() if policy is None else policy, actor)
    return workflow


@contextmanager
def fresh_workflow(url: str = MEMORY_URL, policy: Policy | None = None,
                   **options: Any) -> Iterator[tuple[Ledger, WorkflowService]]:
    """A new ledger at `url` and `workflow_service` on it; the ledger is closed after."""
    with Ledger.open(url) as ledger:
        yield ledger, workflow_service(ledger, policy, **options)


def plain_copy(ledger: Ledger) -> Ledger:
    """The same entries in a new in-memory ledger with no read model attached (what an
    export or another tool holds): a forged entry lands there, and only replay objects."""
    replica = Ledger.open(MEMORY_URL)
    for entry in ledger.entries():
        replica.append(entry.kind, entry.actor, entry.payload, now=parse_time(entry.time))
    return replica


def vote(proposal: Proposal | bytes, custodian: str, decision: str = "approve",
         recorded_at: datetime | None = None) -> Approval:
    digest = proposal if isinstance(proposal, bytes) else proposal.digest
    approval = sign(private_key_of(custodian), digest, decision, custodian)
    if recorded_at is None:
        return approval
    return Approval(approval.proposal_digest, approval.custodian, approval.decision,
                    approval.signature, recorded_at)


@dataclass
class FakeChain:
    """A chain adapter for workflow logic tests: records calls, needs `threshold` shares.

    Its steps are well-formed Bitcoin events (as BitcoinVaultService would write them)
    that the workflow records itself; they name the order's vault and proposal.
    """

    threshold: int = 3
    orders: list[ReleaseOrder] = field(default_factory=list)
    depth: int = 0
    txid: str = "ab" * 32

    def _names(self, order: ReleaseOrder) -> dict[str, str]:
        return {"vault": order.vault_id, "digest": order.proposal_digest.hex(),
                "txid": self.txid}

    def prepare(self, order: ReleaseOrder) -> ChainStep:
        self.orders.append(order)
        event = BtcPsbtCreated(
            **self._names(order), network=order.network, policy_version=order.policy_version,
            psbt_sha256="11" * 32, psbt_base64="cHNidP8=", inputs=[],
            outputs=[{"address": o.destination, "amount_sats": o.amount, "change": False}
                     for o in order.outputs],
            amount_sats=order.amount, input_sats=order.amount, change_sats=0, fee_sats=0,
            fee_rate_msat_vb=1000, fee_rate_source="test")
        return ChainStep(event.KIND, event.to_payload())

    def add_share(self, order: ReleaseOrder, steps: tuple[ChainStep, ...], signer: str,
                  share: str) -> ChainStep:
        signed = sum(1 for s in steps if s.kind == BtcShareReceived.KIND)
        event = BtcShareReceived(
            **self._names(order), custodian=signer, institution="test", fingerprint="00" * 4,
            share_sha256=hashlib.sha256(share.encode()).hexdigest(), signatures=[],
            signers_count=signed + 1, threshold=self.threshold)
        return ChainStep(event.KIND, event.to_payload())

    def broadcast(self, order: ReleaseOrder, steps: tuple[ChainStep, ...]) -> BroadcastReport:
        shares = [s for s in steps if s.kind == BtcShareReceived.KIND]
        if len(shares) < self.threshold:
            from reserve.errors import PSBTError

            raise PSBTError(f"only {len(shares)} of {self.threshold} signature shares")
        event = BtcBroadcast(**self._names(order), amount_sats=order.amount, fee_sats=0,
                             psbt_sha256="11" * 32)
        return BroadcastReport(self.txid, ChainStep(event.KIND, event.to_payload()))

    def confirmation(self, order: ReleaseOrder, steps: tuple[ChainStep, ...],
                     txid: str) -> ConfirmationReport:
        if not self.depth:
            return ConfirmationReport(0, None)
        names = self._names(order)
        event = BtcConfirmed(vault=names["vault"], txid=txid, blockhash="cd" * 32,
                             height=101, confirmations=self.depth, delta_sats=-order.amount,
                             outputs=[], amount_sats=order.amount, fee_sats=0,
                             digest=names["digest"])
        return ConfirmationReport(self.depth, ChainStep(event.KIND, event.to_payload()))


STRANGER = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def propose(service: WorkflowService, amount: int = 150_000_000, destination: str = COLD,
            at: datetime = T0, **kw: object) -> ProposalStatus:
    fields: dict[str, object] = dict(vault="national-btc", proposer="treasury-ops",
                                     asset="BTC", outputs=[(destination, amount)],
                                     fee_max=20_000, purpose="test", reference="R",
                                     expires_in_seconds=7 * DAY, now=at)
    fields.update(kw)
    return service.propose_transfer(**fields)  # type: ignore[arg-type]


def approve(service: WorkflowService, status: ProposalStatus, *who: str,
            at: datetime = T0) -> None:
    for custodian in who:
        service.vote(vote(status.proposal, custodian), now=at)


def kinds(ledger: Ledger, start: int = 0) -> list[str]:
    return [e.kind for e in ledger.entries(start)]
