"""Concurrent approvals on real databases (SQLite file, PostgreSQL): no double count, no
lost vote, and velocity limits hold when several transfers reach quorum at once.

Each worker thread has its own Ledger connection and its own WorkflowService, as separate
API workers would; a barrier releases them together. Runs on both backends through the
`ledger_url` fixture (tests/conftest.py), which creates a throwaway PostgreSQL database per
test and drops it afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from reserve.errors import ApprovalError, ReserveError
from reserve.ledger import Ledger
from reserve.proposals.approval import Approval
from reserve.transfers.projection import Projection
from reserve.transfers.service import WorkflowService
from tests.support.workflow import CUSTODIANS, DAY, T0, fresh_workflow, kinds, propose, vote

WAIT_SECONDS = 60


def _in_parallel(url: str, jobs: list[Callable[[WorkflowService], Any]]) -> list[Any]:
    """Run each job on its own connection, all released at once; returns results/errors."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def worker(index: int) -> None:
        with Ledger.open(url) as ledger:
            service = WorkflowService(ledger, clock=lambda: T0)
            service.sync()
            barrier.wait(timeout=WAIT_SECONDS)
            try:
                results[index] = jobs[index](service)
            except ReserveError as error:
                results[index] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT_SECONDS)
        assert not thread.is_alive(), "a worker hung"
    return results


def _submit(approval: Approval) -> Callable[[WorkflowService], Any]:
    return lambda service: service.vote(approval, now=T0)


def test_concurrent_approvals_all_count_once(ledger_url: str) -> None:
    with fresh_workflow(ledger_url) as (ledger, service):
        status = propose(service, 600_000_000)  # very large: 4 of 5
        votes = [vote(status.proposal, c) for c in CUSTODIANS]
        results = _in_parallel(ledger_url, [_submit(v) for v in votes])
        accepted = [r for r in results if not isinstance(r, Exception)]
        refused = [r for r in results if isinstance(r, Exception)]
        final = service.status(status.digest)
        # Every vote that was accepted is recorded exactly once; the quorum moved it once.
        assert len(final.votes) == len(accepted) >= 4
        assert len({v.custodian for v in final.votes}) == len(final.votes)
        assert all(isinstance(e, ApprovalError) and "votes are closed" in str(e)
                   for e in refused)
        assert final.state == "approved"
        assert kinds(ledger).count("proposal.state") == 1
        rebuilt = Projection()
        rebuilt.catch_up(ledger)
        assert rebuilt.snapshot() == service.sync().snapshot()


def test_the_same_approval_sent_many_times_counts_once(ledger_url: str) -> None:
    with fresh_workflow(ledger_url) as (_ledger, service):
        status = propose(service, 150_000_000)
        approval = vote(status.proposal, "central-bank")
        results = _in_parallel(ledger_url, [_submit(approval)] * 6)
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 5
        assert all("central-bank already voted" in str(e) for e in errors)
        assert [v.custodian for v in service.status(status.digest).votes] == ["central-bank"]


def test_velocity_limit_holds_under_concurrent_quorums(ledger_url: str) -> None:
    with fresh_workflow(ledger_url) as (_ledger, service):
        # Three 6 BTC transfers against a 10 BTC / 24 h limit: at most one may be approved.
        pending = [propose(service, 600_000_000, reference=f"V-{i}",
                           expires_in_seconds=14 * DAY) for i in range(3)]
        for status in pending:
            for custodian in CUSTODIANS[:3]:
                service.vote(vote(status.proposal, custodian), now=T0)
        last = [vote(s.proposal, CUSTODIANS[3]) for s in pending]
        results = _in_parallel(ledger_url, [_submit(v) for v in last])
        assert not [r for r in results if isinstance(r, Exception)]
        states = sorted(service.status(s.digest).state for s in pending)
        assert states == ["approved", "proposed", "proposed"]
        service.refresh(now=T0 + timedelta(days=1, seconds=1))
        states = sorted(service.status(s.digest).state for s in pending)
        assert states.count("approved") == 2  # one more fits once the window moved
