"""The workflow service on a real (in-memory SQLite) ledger: every rule, every bad input.

Each refusal must raise a clear error and leave the ledger exactly as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from reserve.errors import ApprovalError, ReserveError, WorkflowError
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.policy.testkeys import private_key_of
from reserve.proposals.approval import sign
from reserve.transfers.chain import BroadcastReport, ChainStep
from reserve.transfers.projection import ProposalStatus
from reserve.transfers.service import WorkflowService
from tests.support.batches import BatchLedger
from tests.support.workflow import (
    COLD,
    DAY,
    HOUR,
    SETTLEMENT,
    STRANGER,
    T0,
    FakeChain,
    approve,
    btc_document,
    btc_policy,
    kinds,
    propose,
    vote,
)


def test_large_transfer_waits_for_its_delay_then_goes_to_the_chain(
        service: WorkflowService, ledger: Ledger) -> None:
    status = propose(service)
    approve(service, status, "finance-ministry", "central-bank")
    assert service.status(status.digest).state == "proposed"
    approve(service, status, "crypto-council", at=T0 + timedelta(hours=1))
    assert service.status(status.digest).state == "approved"
    chain = FakeChain()
    with pytest.raises(WorkflowError, match="needs releasable"):
        service.release(status.digest, chain, "treasury-ops", now=T0 + timedelta(hours=24))
    assert service.decision(status.digest, T0 + timedelta(hours=2)).explain() == \
        "23 h of time delay left (ends 2026-01-06T10:00:00Z)"
    service.release(status.digest, chain, "treasury-ops", now=T0 + timedelta(hours=25))
    assert chain.orders[0].outputs[0].destination == COLD
    assert chain.orders[0].proposal_digest == status.proposal.digest
    later = T0 + timedelta(hours=26)
    for signer in ("finance-ministry", "central-bank"):
        service.add_signature_share(status.digest, chain, signer, "share", now=later)
    with pytest.raises(ReserveError, match="only 2 of 3"):
        service.broadcast(status.digest, chain, "treasury-ops", now=later)
    service.add_signature_share(status.digest, chain, "crypto-council", "share", now=later)
    txid = service.broadcast(status.digest, chain, "treasury-ops", now=later)
    assert service.check_confirmation(status.digest, chain, now=later) == 0
    chain.depth = 1
    assert service.check_confirmation(status.digest, chain, now=later) == 1
    final = service.status(status.digest)
    assert final.state == "confirmed" and final.txid == txid
    assert [c.state for c in final.changes] == ["proposed", "approved", "releasable", "signing",
                                                "broadcast", "confirmed"]
    assert kinds(ledger) == [
        "policy.version", "proposal.created", "proposal.approved", "proposal.approved",
        "proposal.approved", "proposal.state", "proposal.state", "proposal.state",
        "btc.psbt_created", "btc.share_received", "btc.share_received", "btc.share_received",
        "btc.broadcast", "proposal.state", "btc.confirmed", "proposal.state"]
    assert len(final.chain_steps) == 6


def test_small_transfer_is_releasable_at_once(service: WorkflowService) -> None:
    status = propose(service, 5_000_000)
    approve(service, status, "central-bank", "vasp-regulator")
    assert service.status(status.digest).state == "releasable"


# -- bad votes: clear error, nothing recorded ---------------------------------------------
def _forged(status: ProposalStatus) -> object:
    return replace(vote(status.proposal, "vasp-regulator"), custodian="central-bank")


def _other_proposal(status: ProposalStatus, service: WorkflowService) -> object:
    other = propose(service, 5_000_000, reference="other")
    signed = vote(other.proposal, "central-bank")
    return replace(signed, proposal_digest=status.proposal.digest)


BAD_VOTES = [
    ("forged (wrong key)", lambda s, w: _forged(s), "does not verify with central-bank"),
    ("replayed from another proposal", _other_proposal, "does not verify"),
    ("not a custodian", lambda s, w: sign(private_key_of("treasury-ops"), s.proposal.digest,
                                          "approve", "treasury-ops"), "is not a custodian"),
    ("unknown proposal", lambda s, w: vote(bytes(32), "central-bank"), "no proposal"),
]


@pytest.mark.parametrize(("name", "make", "message"), BAD_VOTES, ids=[c[0] for c in BAD_VOTES])
def test_bad_votes_are_refused_and_nothing_is_recorded(
        service: WorkflowService, ledger: Ledger, name: str, make: object,
        message: str) -> None:
    status = propose(service)
    bad = make(status, service)  # type: ignore[operator]
    size = ledger.size()
    with pytest.raises(ApprovalError, match=message):
        service.vote(bad, now=T0)
    assert ledger.size() == size
    assert service.status(status.digest).votes == ()


def test_replayed_vote_counts_once(service: WorkflowService, ledger: Ledger) -> None:
    status = propose(service)
    ballot = vote(status.proposal, "central-bank")
    service.vote(ballot, now=T0)
    size = ledger.size()
    with pytest.raises(ApprovalError, match="central-bank already voted"):
        service.vote(ballot, now=T0)
    with pytest.raises(ApprovalError, match="already voted"):
        service.vote(vote(status.proposal, "central-bank", "reject"), now=T0)
    assert ledger.size() == size
    assert service.decision(status.digest, T0).approvers == ("central-bank",)


def test_vote_after_expiry_is_refused(service: WorkflowService, ledger: Ledger) -> None:
    status = propose(service, 5_000_000, expires_in_seconds=HOUR)
    size = ledger.size()
    with pytest.raises(ApprovalError, match="expired at 2026-01-05T10:00:00Z"):
        service.vote(vote(status.proposal, "central-bank"), now=T0 + timedelta(hours=2))
    assert ledger.size() == size
    service.refresh(now=T0 + timedelta(hours=2))
    assert service.status(status.digest).state == "expired"
    assert kinds(ledger)[-1] == "proposal.expired"


def test_proposer_may_not_vote(service: WorkflowService, ledger: Ledger) -> None:
    status = service.propose_destination(vault="national-btc", proposer="central-bank",
                                         asset="BTC", address=STRANGER, label="new bank",
                                         purpose="new custodian bank", now=T0)
    size = ledger.size()
    with pytest.raises(ApprovalError, match=r"central-bank proposed .* may not vote"):
        service.vote(vote(status.proposal, "central-bank"), now=T0)
    assert ledger.size() == size


def test_votes_close_once_approved(service: WorkflowService) -> None:
    status = propose(service, 5_000_000)
    approve(service, status, "central-bank", "vasp-regulator")
    with pytest.raises(ApprovalError, match="votes are closed"):
        approve(service, status, "crypto-council")


def test_tampered_proposal_does_not_inherit_approvals(service: WorkflowService) -> None:
    status = propose(service)
    approve(service, status, "finance-ministry", "central-bank", "crypto-council")
    tampered = propose(service, destination=SETTLEMENT)
    assert tampered.digest != status.digest
    decision = service.decision(tampered.digest, T0)
    assert decision.approvers == () and not decision.quorum_met
    for custodian in ("finance-ministry", "central-bank"):
        moved = replace(vote(status.proposal, custodian), proposal_digest=tampered.proposal.digest)
        with pytest.raises(ApprovalError, match="does not verify"):
            service.vote(moved, now=T0)


def test_rejections_reject(service: WorkflowService) -> None:
    status = propose(service, 600_000_000)  # 4 of 5 needed
    service.vote(vote(status.proposal, "central-bank", "reject"), now=T0)
    assert service.status(status.digest).state == "proposed"
    service.vote(vote(status.proposal, "auditor-general", "reject"), now=T0)
    assert service.status(status.digest).state == "rejected"


# -- bad proposals ------------------------------------------------------------------------
BAD_PROPOSALS = [
    ("not allowlisted", {"outputs": [(STRANGER, 5)]}, "is not on the allowlist"),
    ("not a proposer", {"proposer": "central-bank"}, "may not propose transfers"),
    ("unknown vault", {"vault": "nowhere"}, "unknown vault 'nowhere'"),
    ("lifetime too long", {"expires_in_seconds": 30 * DAY}, "exceeds the policy's maximum"),
    ("expires before its delay", {"expires_in_seconds": HOUR}, "before its 86400 s time delay"),
    ("over the velocity limit alone", {"outputs": [(COLD, 2_000_000_000)]},
     "exceeds the 24 h velocity limit"),
    ("unknown asset", {"asset": "ETH"}, "asset 'ETH' is not governed"),
]


@pytest.mark.parametrize(("name", "changes", "message"), BAD_PROPOSALS,
                         ids=[c[0] for c in BAD_PROPOSALS])
def test_bad_proposals_are_refused_and_nothing_is_recorded(
        service: WorkflowService, ledger: Ledger, name: str, changes: dict[str, object],
        message: str) -> None:
    size = ledger.size()
    with pytest.raises(ReserveError, match=message):
        propose(service, **changes)  # type: ignore[arg-type]
    assert ledger.size() == size


def test_policy_is_registered_once(service: WorkflowService, ledger: Ledger) -> None:
    assert service.register_policy(btc_policy(), "lead") == []  # same policy: no-op
    document = btc_document()
    document["description"] = "changed"
    with pytest.raises(WorkflowError, match="already has policy v1"):
        service.register_policy(loader.from_mapping(document), "lead")
    assert ledger.size() == 1


class SelfRecordingChain(FakeChain):
    """Like the Bitcoin layer: writes its own btc.* entries, keyed by proposal_digest."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(threshold=0, txid="cd" * 32)
        self.ledger = ledger

    def _recorded(self, step: ChainStep) -> ChainStep:
        self.ledger.append(step.kind, "btc", dict(step.payload), now=T0)
        return ChainStep(step.kind, step.payload, recorded=True)

    def prepare(self, order):  # type: ignore[no-untyped-def]
        return self._recorded(super().prepare(order))

    def broadcast(self, order, steps):  # type: ignore[no-untyped-def]
        report = super().broadcast(order, steps)
        return BroadcastReport(report.txid, self._recorded(report.step))


def test_chain_layers_that_record_their_own_steps(service: WorkflowService,
                                                  ledger: Ledger) -> None:
    status = propose(service, 5_000_000)
    approve(service, status, "central-bank", "vasp-regulator")
    chain = SelfRecordingChain(ledger)
    service.release(status.digest, chain, "treasury-ops")
    assert service.broadcast(status.digest, chain, "treasury-ops") == "cd" * 32
    final = service.status(status.digest)
    assert final.state == "broadcast"
    assert [s.kind for s in final.chain_steps] == ["btc.psbt_created", "btc.broadcast"]
    assert kinds(ledger)[-4:] == ["btc.psbt_created", "proposal.state", "btc.broadcast",
                                  "proposal.state"]


class MisnamingChain(FakeChain):
    """A chain layer whose step names another vault or proposal, or is malformed."""

    def __init__(self, **changes: object) -> None:
        super().__init__()
        self.changes = changes

    def prepare(self, order):  # type: ignore[no-untyped-def]
        step = super().prepare(order)
        payload = {key: value for key, value in {**step.payload, **self.changes}.items()
                   if value is not None}
        return ChainStep(step.kind, payload)


@pytest.mark.parametrize(("changes", "words"), [
    ({"vault_id": "other-vault"}, "names vault 'other-vault', not this proposal's"),
    ({"proposal_digest": "ee" * 32}, "names digest 'eeee"),
    ({"network": None}, "malformed step: btc.psbt_created: missing field 'network'"),
    ({"fee_sats": "0"}, "malformed step: btc.psbt_created: field 'fee_sats' must be an"),
])
def test_a_chain_step_about_another_vault_or_proposal_is_refused_and_nothing_written(
        service: WorkflowService, ledger: Ledger, changes: dict[str, object],
        words: str) -> None:
    status = propose(service, 5_000_000)
    approve(service, status, "central-bank", "vasp-regulator")
    size = ledger.size()
    with pytest.raises(WorkflowError, match=re.escape(words)):
        service.release(status.digest, MisnamingChain(**changes), "treasury-ops")
    assert ledger.size() == size
    assert service.status(status.digest).state == "releasable"


# -- a caller's prelude (the API's api.request entry) shares the action's commit ----------
REQUEST = ("api.request", "olga", {"method": "POST", "path": "/api/x", "request_id": "r1"})


@pytest.fixture()
def batched() -> Iterator[tuple[WorkflowService, BatchLedger]]:
    with BatchLedger.open("sqlite:///:memory:") as opened:
        assert isinstance(opened, BatchLedger)
        workflow = WorkflowService(opened, clock=lambda: T0)
        workflow.register_policy(btc_policy(), "lead", now=T0)
        yield workflow, opened


def test_the_prelude_opens_the_actions_own_batch(
        batched: tuple[WorkflowService, BatchLedger]) -> None:
    service, ledger = batched
    status = propose(service, 5_000_000, prelude=[REQUEST])
    assert ledger.batches[-1] == ["api.request", "proposal.created"]
    service.vote(vote(status.proposal, "central-bank"), now=T0, prelude=[REQUEST])
    assert ledger.batches[-1] == ["api.request", "proposal.approved"]
    service.vote(vote(status.proposal, "vasp-regulator"), now=T0, prelude=[REQUEST])
    assert ledger.batches[-1] == ["api.request", "proposal.approved", "proposal.state",
                                  "proposal.state"]
    frozen = service.freeze("national-btc", "central-bank", "drill", prelude=[REQUEST])
    assert ledger.batches[-1] == ["api.request", "vault.frozen"]
    assert [e.kind for e in frozen] == ["vault.frozen"]  # the action's own entries only
    request = ledger.entry(frozen[0].seq - 1)
    assert (request.kind, request.actor, request.payload) == REQUEST
    assert request.time == frozen[0].time


def test_a_prelude_alone_when_the_action_has_nothing_to_write(
        batched: tuple[WorkflowService, BatchLedger]) -> None:
    service, ledger = batched
    assert service.register_policy(btc_policy(), "lead", prelude=[REQUEST]) == []
    assert ledger.batches[-1] == ["api.request"]
    assert service.refresh(prelude=[REQUEST]) == []
    assert ledger.batches[-1] == ["api.request"]
    assert service.refresh() == [] and len(ledger.batches) == 3  # no prelude: no batch


def test_a_refused_action_writes_no_prelude(
        batched: tuple[WorkflowService, BatchLedger]) -> None:
    service, ledger = batched
    size = ledger.size()
    with pytest.raises(ReserveError, match="may not freeze"):
        service.freeze("national-btc", "treasury-ops", "no", prelude=[REQUEST])
    with pytest.raises(ReserveError, match="proposal refused"):
        propose(service, destination=STRANGER, prelude=[REQUEST])
    assert ledger.size() == size and len(ledger.batches) == 1
