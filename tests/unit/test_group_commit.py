"""Group commit: concurrent requests share one transaction and one fsync.

`Ledger.group()` makes each append a savepoint of one transaction: a refused append rolls
back alone, the others commit together, and a group that fails commits nothing. The API's
WorkflowAccess runs every action that queued while a commit was in flight in the next
group, answers each only after that commit, and refuses only the request that was refused.
Real SQLite ledgers (a file, WAL, synchronous=FULL) and the real workflow; the recorder is
a stand-in for the HTTP request (the API tests and `bench/api.py` drive the served path).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from reserve.api.reserve_views import WorkflowAccess
from reserve.errors import EntryRejected, LedgerConflict, LedgerError, PolicyError
from reserve.events import ABSENT
from reserve.events.access import ApiRequest
from reserve.ledger import Ledger
from reserve.ledger.verify import verify_ledger
from reserve.transfers import readmodel
from tests.support.workflow import COLD, T0, at_t0, propose, workflow_service

STRANGER = "bcrt1qstrangerxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"


def _kinds(ledger: Ledger) -> list[str]:
    return [entry.kind for entry in ledger.entries()]


def test_a_refused_append_rolls_back_alone_and_the_rest_commit_together(
        tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite") as ledger:
        ledger.append("ledger.note", "ops", {"text": "0"}, now=T0)
        with ledger.group():
            ledger.append("ledger.note", "ops", {"text": "1"}, now=T0)
            with pytest.raises(EntryRejected):
                ledger.append("note", "a", {"text": "x" * 70_000}, now=T0)
            with pytest.raises(LedgerConflict):
                ledger.append("ledger.note", "ops", {"text": "2"}, now=T0, expected_size=1)
            ledger.append_many([("ledger.note", "ops", {"text": "3"}), ("ledger.note", "ops", {"text": "4"})], now=T0)
        assert [e.payload["text"] for e in ledger.entries()] == ["0", "1", "3", "4"]
        assert [e.seq for e in ledger.entries()] == [0, 1, 2, 3]
    with Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite") as reopened:  # durable
        assert reopened.size() == 4
        assert verify_ledger(reopened).ok


def test_a_group_that_fails_writes_nothing_and_the_ledger_goes_on(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite") as ledger:
        ledger.append("ledger.note", "ops", {"text": "0"}, now=T0)
        with pytest.raises(RuntimeError), ledger.group():
            ledger.append("ledger.note", "ops", {"text": "1"}, now=T0)
            raise RuntimeError("the process is told to stop")
        assert ledger.size() == 1
        ledger.append("ledger.note", "ops", {"text": "2"}, now=T0)  # the cached head was forgotten
        assert [e.payload["text"] for e in ledger.entries()] == ["0", "2"]
        assert verify_ledger(ledger).ok
        with ledger.group(), pytest.raises(LedgerError, match="cannot open another group"):
            with ledger.group():
                pass


def test_other_threads_read_only_what_the_group_committed(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite") as ledger:
        seen: list[int] = []
        reader = threading.Thread(target=lambda: seen.append(ledger.size()))
        with ledger.group():
            ledger.append("ledger.note", "ops", {"text": "1"}, now=T0)
            reader.start()
            time.sleep(0.2)
            assert reader.is_alive()  # it waits for the ledger, it does not read past it
            ledger.append("ledger.note", "ops", {"text": "2"}, now=T0)
        reader.join(5)
        assert seen == [2]


# -- the API's WorkflowAccess ----------------------------------------------------------------
class _Recorder:
    """What WorkflowAccess needs of the HTTP request: its api.request entry and state."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.request = SimpleNamespace(state=SimpleNamespace(recorded=False))

    def entry(self, summary: dict[str, Any] | None = None) -> tuple[str, str, dict[str, Any]]:
        return ("api.request", "treasury-ops", ApiRequest(
            method="POST", path="/api/proposals", role="operator", token_id="t",
            request_id=f"request-{self.n}", vault=ABSENT, summary=ABSENT).to_payload())


@contextmanager
def _access(tmp_path: Path) -> Iterator[tuple[Ledger, WorkflowAccess]]:
    with Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite") as ledger:
        readmodel.attach(ledger)
        workflow_service(ledger)
        yield ledger, WorkflowAccess(ledger, at_t0)


def _proposing(amount: int, destination: str = COLD) -> Any:
    return lambda workflow, prelude: propose(workflow, amount, destination=destination,
                                             reference=f"R{amount}", prelude=prelude)


def test_requests_queued_behind_a_commit_share_the_next_one(tmp_path: Path) -> None:
    with _access(tmp_path) as (ledger, access):
        size = ledger.size()
        followers = 4
        outcomes: dict[int, Any] = {}

        leading = threading.Event()

        def first(workflow: Any, prelude: Any) -> Any:
            leading.set()
            deadline = time.monotonic() + 10
            while len(access._queue) < followers and time.monotonic() < deadline:
                time.sleep(0.01)  # the others queue while this group is open
            return _proposing(1_000_000)(workflow, prelude)

        def request(n: int, action: Any) -> None:
            recorder = _Recorder(n)
            try:
                outcomes[n] = (access.act(recorder, action), recorder.request.state.recorded)
            except Exception as error:
                outcomes[n] = error

        threads = [threading.Thread(target=request, args=(0, first))]
        threads[0].start()
        assert leading.wait(10)  # the first request's group is open
        for n in range(1, followers + 1):
            action = _proposing(2_000_000 + n, STRANGER if n == 3 else COLD)
            threads.append(threading.Thread(target=request, args=(n, action)))
            threads[-1].start()
        for thread in threads:
            thread.join(20)
        assert access.groups == 2  # the first request's commit, then one for the other four
        assert isinstance(outcomes[3], PolicyError)  # refused alone, nothing of it written
        accepted = [n for n in outcomes if n != 3]
        assert all(outcomes[n][1] for n in accepted), outcomes  # each api.request recorded
        assert _kinds(ledger)[size:].count("api.request") == len(accepted)
        assert _kinds(ledger)[size:].count("proposal.created") == len(accepted)
        ids = [e.payload["request_id"] for e in ledger.entries(size, kinds=("api.request",))]
        assert sorted(ids) == sorted(f"request-{n}" for n in accepted)
        assert readmodel.check(ledger) == []
        assert verify_ledger(ledger).ok


def _failing(group: Any) -> Any:
    """`group` whose commit fails after its body ran (a disk I/O error at COMMIT)."""
    @contextmanager
    def failing_group() -> Iterator[None]:
        with group():
            yield
            raise LedgerError("the commit failed (disk I/O error); nothing is written")

    return failing_group


def test_a_failed_group_commit_refuses_every_request_in_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _access(tmp_path) as (ledger, access):
        size = ledger.size()
        real_group = ledger.group
        failing_group = _failing(real_group)

        monkeypatch.setattr(ledger, "group", failing_group)
        with pytest.raises(LedgerError, match="disk I/O error"):
            access.act(_Recorder(1), _proposing(1_000_000))
        assert ledger.size() == size
        monkeypatch.setattr(ledger, "group", real_group)
        created = access.act(_Recorder(2), _proposing(1_000_000))  # the same digest again
        assert access.workflow.status(created.digest).state == "proposed"
        assert ledger.size() == size + 2
        assert readmodel.check(ledger) == []


# -- requests on the event loop (`submit`) ------------------------------------------------------
def test_coroutines_submitting_together_share_commits_and_a_refusal_stays_alone(
        tmp_path: Path) -> None:
    """Routes on the event loop await `submit`: no thread each, so every request queued
    while a commit is in flight shares the next one (the committer thread takes them),
    each is answered after its group's commit, and a refused one refuses only itself."""
    import asyncio

    with _access(tmp_path) as (ledger, access):
        size = ledger.size()
        count = 40

        async def main() -> list[Any]:
            recorders = [_Recorder(n) for n in range(count)]
            calls = [access.submit(recorders[n], _proposing(
                3_000_000 + n, STRANGER if n == 7 else COLD)) for n in range(count)]
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            return [(outcome, recorder.request.state.recorded)
                    for outcome, recorder in zip(outcomes, recorders)]

        outcomes = asyncio.run(main())
        assert isinstance(outcomes[7][0], PolicyError)  # refused alone, nothing written
        accepted = [n for n in range(count) if n != 7]
        assert all(outcomes[n][1] and outcomes[n][0].state == "proposed" for n in accepted)
        assert 1 <= access.groups < count  # shared: fewer commits than requests
        kinds = _kinds(ledger)[size:]
        assert kinds.count("api.request") == kinds.count("proposal.created") == len(accepted)
        ids = [e.payload["request_id"] for e in ledger.entries(size, kinds=("api.request",))]
        assert sorted(ids) == sorted(f"request-{n}" for n in accepted)
        assert readmodel.check(ledger) == []
        assert verify_ledger(ledger).ok
        committer = access._committer
        access.close()
        assert committer is not None and committer._shutdown and access._committer is None
        again = asyncio.run(access.submit(_Recorder(99), _proposing(3_999_999)))
        assert again.state == "proposed"  # the app started again: a new committer
        access.close()


def test_threads_in_act_and_coroutines_in_submit_take_turns_on_one_queue(
        tmp_path: Path) -> None:
    """A sync route's thread may take a group the committer would have: every request is
    run exactly once, whoever commits it, and each waiter is woken."""
    import asyncio

    with _access(tmp_path) as (ledger, access):
        size = ledger.size()
        threaded: dict[int, Any] = {}

        def in_thread(n: int) -> None:
            threaded[n] = access.act(_Recorder(n), _proposing(4_000_000 + n))

        async def main() -> list[Any]:
            threads = [threading.Thread(target=in_thread, args=(n,)) for n in range(100, 110)]
            for thread in threads:
                thread.start()
            found = await asyncio.gather(*(access.submit(_Recorder(n), _proposing(
                4_000_000 + n)) for n in range(20)))
            for thread in threads:
                await asyncio.to_thread(thread.join, 20)
            return found

        submitted = asyncio.run(main())
        assert len(submitted) == 20 and len(threaded) == 10
        digests = {status.digest for status in [*submitted, *threaded.values()]}
        assert len(digests) == 30
        assert _kinds(ledger)[size:].count("proposal.created") == 30
        assert _kinds(ledger)[size:].count("api.request") == 30
        assert readmodel.check(ledger) == []


def test_a_failed_commit_refuses_every_submitted_request_and_the_next_ones_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    with _access(tmp_path) as (ledger, access):
        size = ledger.size()
        real_group = ledger.group
        failing_group = _failing(real_group)

        async def submit_all(first: int) -> list[Any]:
            return await asyncio.gather(*(access.submit(_Recorder(n), _proposing(
                5_000_000 + n)) for n in range(first, first + 5)), return_exceptions=True)

        monkeypatch.setattr(ledger, "group", failing_group)
        failed = asyncio.run(submit_all(0))
        assert all(isinstance(outcome, LedgerError) for outcome in failed), failed
        assert ledger.size() == size
        monkeypatch.setattr(ledger, "group", real_group)
        passed = asyncio.run(submit_all(0))  # the same proposals again, now committed
        assert all(outcome.state == "proposed" for outcome in passed), passed
        assert ledger.size() == size + 10
        assert readmodel.check(ledger) == []


# -- what a write costs inside its group -------------------------------------------------------
def _statements(ledger: Ledger) -> list[str]:
    """Every SQL statement the ledger's SQLite connection runs from now on (executemany
    rows each once)."""
    seen: list[str] = []
    ledger._db.set_trace_callback(seen.append)
    return seen


def test_statements_per_write_stay_bounded_as_history_grows(tmp_path: Path) -> None:
    """A proposal and a vote read their vault, model sizes and rows once in the group (the
    rows they wrote are not read back, nor the request's entry): the same count of
    statements at 10 proposals as at 200, and a bounded one."""
    from tests.support.workflow import vote

    with _access(tmp_path) as (ledger, access):
        counts = []
        for total in (10, 200):
            while ledger.size() < total * 2:
                access.act(_Recorder(ledger.size()), _proposing(1_000_000 + ledger.size()))
            seen = _statements(ledger)
            created = access.act(_Recorder(-total), _proposing(5_000_000 + total))
            proposing = len(seen)
            seen.clear()
            ballot = vote(created.proposal, "central-bank")
            access.act(_Recorder(-total - 1), lambda workflow, prelude, ballot=ballot:
                       workflow.vote(ballot, prelude=prelude))
            counts.append((proposing, len(seen)))
            ledger._db.set_trace_callback(None)
        assert counts[0] == counts[1], counts
        assert counts[0][0] <= 18 and counts[0][1] <= 18, counts  # 41 and 42 before
        assert readmodel.check(ledger) == []
        assert verify_ledger(ledger).ok


def test_an_entry_appended_around_the_workflow_inside_a_group_is_caught_up_with(
        tmp_path: Path) -> None:
    """Rows kept while the group is held are only valid while only the workflow appends;
    an append past it (another path, same transaction) is a conflict: the action reads
    the ledger again and decides on it."""
    with _access(tmp_path) as (ledger, access):
        first = access.act(_Recorder(1), _proposing(1_000_000))

        def around_then_propose(workflow: Any, prelude: Any) -> Any:
            workflow.sync()  # caught up: the group's rows are kept from here
            workflow.projection.vault("national-btc")
            ledger.append("ledger.note", "ops", {"text": "around"}, now=T0)
            return _proposing(2_000_000)(workflow, prelude)

        second = access.act(_Recorder(2), around_then_propose)
        recorder = _Recorder(3)
        third = access.act(recorder, _proposing(3_000_000))
        assert recorder.request.state.recorded
        assert [access.workflow.status(s.digest).state for s in (first, second, third)] == \
            ["proposed"] * 3
        assert _kinds(ledger).count("ledger.note") == 1
        assert readmodel.check(ledger) == []
        assert verify_ledger(ledger).ok


def test_a_request_entry_the_action_did_not_append_itself_is_still_found(
        tmp_path: Path) -> None:
    """The entries the workflow appended say whether the request was recorded; one the
    action wrote some other way is found by reading back, not recorded twice."""
    with _access(tmp_path) as (ledger, access):
        recorder = _Recorder(7)

        def by_hand(workflow: Any, prelude: Any) -> None:
            ledger.append_many(list(prelude), now=T0)

        access.act(recorder, by_hand)
        assert recorder.request.state.recorded
        dropped = _Recorder(8)
        access.act(dropped, lambda workflow, prelude: _proposing(4_000_000)(workflow, ()))
        assert not dropped.request.state.recorded  # the recording net's case


def test_inside_a_group_only_the_first_append_reads_the_head(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path}/ledger.sqlite") as ledger:
        ledger.append("ledger.note", "ops", {"text": "0"}, now=T0)
        seen = _statements(ledger)
        with ledger.group():
            ledger.append("ledger.note", "ops", {"text": "1"}, now=T0)
            with pytest.raises(EntryRejected):
                ledger.append("note", "a", {"text": "x" * 70_000}, now=T0)
            ledger.append("ledger.note", "ops", {"text": "2"}, now=T0)
            with pytest.raises(LedgerConflict):
                ledger.append("ledger.note", "ops", {"text": "3"}, now=T0, expected_size=2)
            ledger.append("ledger.note", "ops", {"text": "4"}, now=T0, expected_size=3)
        ledger._db.set_trace_callback(None)
        assert sum("FROM ledger_entries ORDER BY seq DESC" in s for s in seen) == 1
        assert [e.payload["text"] for e in ledger.entries()] == ["0", "1", "2", "4"]
        assert verify_ledger(ledger).ok


def test_the_decision_a_proposal_took_is_reused_only_while_nothing_else_was_appended(
        tmp_path: Path) -> None:
    with _access(tmp_path) as (ledger, access):
        workflow = access.workflow
        created = propose(workflow, 1_000_000, reference="reuse")
        reused = workflow.decision(created.digest, T0)
        assert workflow._proposed is not None and reused is workflow._proposed[3]
        assert reused == workflow._decide(workflow.status(created.digest), T0)
        ledger.append("ledger.note", "ops", {"text": "after"}, now=T0)
        again = workflow.decision(created.digest, T0)
        assert again is not reused and again == reused
        assert workflow.decision(created.digest, T0 + timedelta(days=8)).refused  # expired


def test_a_vote_that_moves_nothing_answers_with_the_decision_it_took(tmp_path: Path) -> None:
    """A vote short of the quorum (national-btc's small tier: 2 approvals from 2
    institutions) answers with the decision its plan took, equal to one taken afresh; the
    vote that meets the quorum moves the proposal, and its answer is decided afresh on the
    state it leads to."""
    from tests.support.workflow import vote

    with _access(tmp_path) as (ledger, access):
        workflow = access.workflow
        created = propose(workflow, 1_000_000, reference="votes")
        first = workflow.vote(vote(created.proposal, "finance-ministry"), now=T0)
        assert workflow._proposed is not None and first is workflow._proposed[3]
        assert first == workflow._decide(workflow.status(created.digest), T0)
        assert first.approvers == ("finance-ministry",) and not first.may_approve
        rejected = propose(workflow, 2_000_000, reference="votes-2")
        against = workflow.vote(vote(rejected.proposal, "central-bank", "reject"), now=T0)
        assert against is workflow._proposed[3]
        assert against == workflow._decide(workflow.status(rejected.digest), T0)
        second = workflow.vote(vote(created.proposal, "central-bank"), now=T0)
        assert workflow._proposed is None  # the quorum moved it: decided on the new state
        assert workflow.status(created.digest).state != "proposed"
        assert second == workflow._decide(workflow.status(created.digest), T0)
        assert readmodel.check(ledger) == []
