"""`next_step`: at each state of a transfer, what happens next and who must act.

The same answer reaches the CLI (`reserve transfer status`), the API and the dashboard, so
it is checked here once, through a whole transfer on a fake chain. Only the vault's
operators may release or broadcast: the service refuses anyone else, writing nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from reserve.errors import WorkflowError
from reserve.proposals.state import OPEN
from reserve.transfers.next_step import NextStep, next_step
from reserve.transfers.service import WorkflowService
from tests.support.workflow import (
    CUSTODIANS,
    DAY,
    T0,
    FakeChain,
    approve,
    fresh_workflow,
    propose,
)


def _next(service: WorkflowService, digest: str, at=T0) -> NextStep:  # type: ignore[no-untyped-def]
    status = service.status(digest)
    decision = service.decision(digest, at) if status.state in OPEN else None
    return next_step(status, service.policy("national-btc"), decision, at)


def test_each_state_names_its_next_step_and_who_acts() -> None:
    with fresh_workflow() as (_ledger, service):
        status = propose(service)  # 1.5 BTC: large tier, 3 approvals from 3 institutions + 24 h
        step = _next(service, status.digest)
        assert step.step == "vote"
        assert step.who == CUSTODIANS  # the proposer is an operator, not a custodian
        assert "needs 3 more approvals from different institutions" in step.text

        approve(service, status, "central-bank")
        assert "central-bank" not in _next(service, status.digest).who

        approve(service, status, "vasp-regulator", "auditor-general")
        waiting = _next(service, status.digest)
        assert waiting.step == "wait" and waiting.who == ()
        assert "until" in waiting.text

        later = T0 + timedelta(days=1, minutes=1)
        service.refresh(later)
        release = _next(service, status.digest, later)
        assert release.step == "release" and release.who == ("<operator>",)
        assert release.command == f"reserve transfer release {status.digest[:16]} --by OPERATOR"

        chain = FakeChain(threshold=2)
        service.release(status.digest, chain, "treasury-ops", now=later)
        signing = _next(service, status.digest, later)
        assert signing.step == "sign" and "no shares yet" in signing.text
        assert signing.who == tuple(CUSTODIANS)

        service.add_signature_share(status.digest, chain, "central-bank", "s1", now=later)
        one = _next(service, status.digest, later)
        assert one.step == "sign" and "central-bank" not in one.who
        assert "1 share(s) so far (central-bank)" in one.text

        service.add_signature_share(status.digest, chain, "crypto-council", "s2", now=later)
        assert _next(service, status.digest, later).step == "broadcast"

        service.broadcast(status.digest, chain, "treasury-ops", now=later)
        confirm = _next(service, status.digest, later)
        assert confirm.step == "confirm" and chain.txid in confirm.text

        chain.depth = 1
        service.check_confirmation(status.digest, chain, now=later)
        done = _next(service, status.digest, later)
        assert done == NextStep("none", (), "nothing: the proposal is confirmed on chain")
        assert done.to_json() == {"step": "none", "who": [], "text": done.text,
                                  "command": None}


def test_a_cancelled_proposal_has_no_next_step() -> None:
    with fresh_workflow() as (_ledger, service):
        status = propose(service)
        service.cancel(status.digest, "treasury-ops", "not needed", now=T0)
        assert _next(service, status.digest).step == "none"


@pytest.mark.parametrize("actor", ["central-bank", "auditor-general", "lead", ""])
def test_only_an_operator_releases_or_broadcasts(actor: str) -> None:
    with fresh_workflow() as (ledger, service):
        status = propose(service, amount=5_000_000)  # small tier: 2 approvals, no delay
        approve(service, status, "central-bank", "crypto-council")
        assert service.status(status.digest).state == "releasable"
        size = ledger.size()
        chain = FakeChain(threshold=1)
        with pytest.raises(WorkflowError, match="not an operator of national-btc"):
            service.release(status.digest, chain, actor, now=T0)
        assert ledger.size() == size and chain.orders == []

        service.release(status.digest, chain, "treasury-ops", now=T0)
        service.add_signature_share(status.digest, chain, "central-bank", "s", now=T0)
        size = ledger.size()
        with pytest.raises(WorkflowError, match="only its operators may broadcast"):
            service.broadcast(status.digest, chain, actor, now=T0 + timedelta(seconds=DAY))
        assert ledger.size() == size
        assert service.status(status.digest).state == "signing"
