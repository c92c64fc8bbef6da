"""State is derivable from the ledger alone, and the invariants hold whatever the order.

Hypothesis drives random interleavings of proposals, votes, clock jumps, freezes,
unfreezes and release attempts against a real in-memory ledger; afterwards the ledger is
replayed from scratch and checked: no transfer reached signing without a quorum of distinct
custodians from enough institutions recorded before it was approved, rolling velocity sums
never exceed their limits, nothing was released while frozen, and the rebuilt state equals
the live one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reserve.errors import ReserveError, WorkflowError
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.proposals.proposal import TransferBody, parse_time
from reserve.proposals.state import COUNTED
from reserve.transfers.projection import Projection
from reserve.transfers.service import WorkflowService
from tests.support.workflow import (
    COLD,
    CUSTODIANS,
    SETTLEMENT,
    T0,
    FakeChain,
    approve,
    btc_policy,
    fresh_workflow,
    plain_copy,
    propose,
    vote,
)

POLICY = btc_policy()

_propose = st.tuples(st.just("propose"),
                     st.sampled_from((5_000_000, 150_000_000, 450_000_000, 600_000_000,
                                      900_000_000)), st.sampled_from((COLD, SETTLEMENT)))
_vote = st.tuples(st.just("vote"), st.integers(0, 20), st.sampled_from(CUSTODIANS),
                  st.sampled_from(("approve", "approve", "approve", "reject")))
_quorum = st.tuples(st.just("quorum"), st.integers(0, 20), st.integers(0, 4))
_wait = st.tuples(st.just("wait"), st.integers(1, 80))
_release = st.tuples(st.just("release"), st.integers(0, 20))
_freeze = st.tuples(st.just("freeze"), st.sampled_from(("external-auditor", "central-bank")),
                    st.integers(0, 20))
# Freezes are rarer than the rest, so that most runs also see releases happen.
operations = st.lists(st.one_of(
    _propose, _propose, _vote, _quorum, _quorum, _wait, _wait, _release, _release, _freeze,
    st.tuples(st.just("unfreeze"), st.integers(0, 4)),
), min_size=5, max_size=40)


def _run(service: WorkflowService, ops: list[tuple[Any, ...]]) -> None:
    now = T0
    for op in ops:
        digests = [s.digest for s in service.proposals()
                   if s.proposal.action == "transfer"]
        try:
            if op[0] == "propose":
                propose(service, op[1], op[2], at=now, reference=str(now),
                        expires_in_seconds=14 * 86400)
            elif op[0] == "vote" and digests:
                status = service.status(digests[op[1] % len(digests)])
                service.vote(vote(status.proposal, op[2], op[3]), now=now)
            elif op[0] == "quorum" and digests:
                status = service.status(digests[op[1] % len(digests)])
                for custodian in (CUSTODIANS * 2)[op[2]:op[2] + 4]:
                    service.vote(vote(status.proposal, custodian), now=now)
            elif op[0] == "wait":
                now += timedelta(hours=op[1])
                service.refresh(now=now)
            elif op[0] == "freeze":
                service.freeze("national-btc", op[1], "drill", now=now)
                # The interleaving that matters most: a release attempted right after.
                ready = [s.digest for s in service.proposals(states=["releasable"])]
                if ready:
                    service.release(ready[op[2] % len(ready)], FakeChain(), "treasury-ops", now=now)
            elif op[0] == "unfreeze":
                status = service.propose_unfreeze(vault="national-btc", proposer="treasury-ops",
                                                  purpose=f"unfreeze {now}", now=now)
                approve(service, status, *CUSTODIANS[op[1]:op[1] + 3], at=now)
            elif op[0] == "release":
                # Mostly aim at releasable transfers, so releases really happen.
                ready = [s.digest for s in service.proposals(states=["releasable"])]
                pool = ready if ready and op[1] % 4 else digests
                if pool:
                    service.release(pool[op[1] % len(pool)], FakeChain(), "treasury-ops", now=now)
        except ReserveError:
            pass  # refusals are part of the game; invariants are checked on the ledger


def _check_invariants(ledger: Ledger) -> None:
    frozen = False
    approvals: dict[str, dict[str, str]] = {}
    approved_at: dict[str, tuple[Any, int]] = {}
    amounts: dict[str, int] = {}
    replay = Projection()
    for entry in ledger.entries():
        replay.apply(entry)
        payload = entry.payload
        if entry.kind == "vault.frozen":
            frozen = True
        elif entry.kind == "vault.unfrozen":
            frozen = False
        elif entry.kind == "proposal.approved":
            approvals.setdefault(payload["digest"], {})[payload["custodian"]] = "approve"
        elif entry.kind == "proposal.state" and payload["to"] == "approved":
            status = replay.proposals[payload["digest"]]
            if isinstance(status.proposal.body, TransferBody):
                voters = approvals.get(payload["digest"], {})
                tier = POLICY.assets[0].tier_for(status.proposal.body.amount)
                assert tier is not None
                assert status.proposal.proposer not in voters
                assert len(voters) >= tier.rule.approvals_min
                institutions = {POLICY.custodian(v).institution for v in voters}  # type: ignore[union-attr]
                assert len(institutions) >= tier.rule.institutions_min
                approved_at[payload["digest"]] = (parse_time(entry.time), entry.seq)
                amounts[payload["digest"]] = status.proposal.body.amount
        elif entry.kind == "proposal.state" and payload["to"] == "signing":
            assert not frozen, f"released while frozen at entry {entry.seq}"
            assert payload["digest"] in approved_at
    _check_velocity(replay, approved_at, amounts)


def _check_velocity(replay: Projection, approved_at: dict[str, tuple[Any, int]],
                    amounts: dict[str, int]) -> None:
    counted = {d for d in approved_at if replay.proposals[d].state in COUNTED}
    for limit in POLICY.assets[0].velocity:
        window = timedelta(seconds=limit.window_seconds)
        for digest in counted:
            end = approved_at[digest][0]
            inside = sum(amounts[d] for d in counted
                         if end - window < approved_at[d][0] <= end)
            assert inside <= limit.amount_max, (digest, inside, limit)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=operations)
def test_invariants_hold_for_any_interleaving(ops: list[tuple[Any, ...]]) -> None:
    with fresh_workflow(policy=POLICY) as (ledger, service):
        _run(service, ops)
        _check_invariants(ledger)
        for status in service.proposals():
            event(f"a {status.proposal.action} ended {status.state}")
        rebuilt = Projection()
        rebuilt.catch_up(ledger)
        assert rebuilt.snapshot() == service.sync().snapshot()


def test_incremental_replay_equals_full_replay() -> None:
    with fresh_workflow(policy=POLICY) as (ledger, service):
        _run(service, [("propose", 150_000_000, COLD), ("vote", 0, "central-bank", "approve"),
                       ("vote", 0, "vasp-regulator", "approve"), ("propose", 5_000_000, COLD),
                       ("vote", 0, "crypto-council", "approve"), ("wait", 30),
                       ("vote", 1, "central-bank", "approve"), ("freeze", "central-bank", 0),
                       ("vote", 1, "auditor-general", "approve"), ("unfreeze", 1),
                       ("wait", 25), ("release", 0)])
        step = Projection()
        for stop in range(0, ledger.size() + 1, 3):
            for entry in ledger.entries(step.size, stop):
                step.apply(entry)
        step.catch_up(ledger)
        whole = Projection()
        whole.catch_up(ledger)
        assert step.snapshot() == whole.snapshot() == service.sync().snapshot()
        assert service.status(service.proposals()[0].digest).state == "signing"


def _tampered(payload: dict[str, Any]) -> dict[str, Any]:
    document = dict(payload["proposal"], purpose="something else")
    return dict(payload, proposal=document)


def test_the_read_models_refuse_entries_that_contradict_the_workflow() -> None:
    """Appended through a ledger that keeps the read models, a forged workflow entry is
    refused in the append's own transaction: nothing is written."""
    with fresh_workflow(policy=POLICY) as (ledger, service):
        propose(service, 5_000_000)
        size, before = ledger.size(), service.sync().snapshot()
        with pytest.raises(WorkflowError, match="entry 2: proposal digest or action mismatch"):
            ledger.append("proposal.created", "mallory", _tampered(ledger.entry(1).payload),
                          now=T0)
        assert ledger.size() == size and service.sync().snapshot() == before


def test_replay_refuses_entries_that_contradict_the_workflow() -> None:
    with fresh_workflow(policy=POLICY) as (ledger, service):
        propose(service, 5_000_000)
        with plain_copy(ledger) as copy:
            copy.append("proposal.created", "mallory", _tampered(ledger.entry(1).payload),
                        now=T0)
            with pytest.raises(WorkflowError,
                               match="entry 2: proposal digest or action mismatch"):
                Projection().catch_up(copy)
    with fresh_workflow(policy=POLICY) as (ledger, service):
        status = propose(service, 5_000_000)
        with plain_copy(ledger) as copy:
            copy.append("proposal.state", "mallory", {"vault": "national-btc",
                                                      "digest": status.digest,
                                                      "from": "proposed", "to": "signing",
                                                      "reason": "mallory says so"})
            with pytest.raises(WorkflowError, match="illegal transition"):
                Projection().catch_up(copy)
        with plain_copy(ledger) as copy:
            document = loader.to_document(POLICY)
            copy.append("policy.version", "mallory", {"vault": "national-btc", "version": 2,
                                                      "policy": document, "reason": "forged",
                                                      "policy_sha256": "00" * 32})
            with pytest.raises(WorkflowError):
                Projection().catch_up(copy)
