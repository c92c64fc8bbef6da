"""The read models are the ledger's state, kept in the append's own transaction.

Hypothesis drives random workflow histories (tests/unit/test_transfers_replay.py's
operations, deposits added here); after each, the stored rows must equal a full replay
(`readmodel.check`, what `reserve ledger verify --projections` runs). Then the ways they
could go wrong: rows edited behind the ledger's back are reported and `rebuild` repairs
them; entries appended without the models attached are applied before anyone reads; a
batch the models refuse leaves nothing behind; the velocity evidence of a decision is
only the window it needs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reserve.errors import WorkflowError
from reserve.events.chain_btc import BtcDeposit
from reserve.ledger import Ledger
from reserve.proposals.state import OPEN
from reserve.transfers import readmodel
from reserve.transfers.projection import Projection, ProposalQuery
from reserve.transfers.readmodel import StoredProjection
from tests.support.workflow import (
    COLD,
    T0,
    approve,
    btc_policy,
    fresh_workflow,
    plain_copy,
    propose,
)
from tests.unit.test_transfers_replay import POLICY, _run, operations


def _deposit(ledger: Ledger, sats: int, n: int) -> None:
    event = BtcDeposit(vault="national-btc", txid=f"{n:064x}", blockhash="00" * 32,
                       height=100 + n, confirmations=1, delta_sats=sats,
                       outputs=[{"vout": 0, "address": "bcrt1qexample", "amount_sats": sats}],
                       amount_sats=sats)
    ledger.append(event.KIND, "btc-watcher", event.to_payload(), now=T0)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops=operations, deposits=st.lists(st.integers(1, 10**8), max_size=4))
def test_the_stored_rows_equal_a_full_replay_after_any_history(
        ops: list[tuple[Any, ...]], deposits: list[int]) -> None:
    with fresh_workflow(policy=POLICY) as (ledger, service):
        for n, sats in enumerate(deposits):
            _deposit(ledger, sats, n)
        _run(service, ops)
        assert readmodel.check(ledger) == []
        replay = Projection()
        replay.catch_up(ledger)
        assert StoredProjection(ledger).snapshot() == replay.snapshot()
        assert sum(h.balance for h in readmodel.holdings(ledger)) == sum(deposits)


def test_rows_edited_behind_the_ledger_are_found_and_rebuilt() -> None:
    with fresh_workflow() as (ledger, service):
        status = propose(service, 5_000_000)
        _deposit(ledger, 40_000, 1)
        assert readmodel.check(ledger) == []
        ledger.query("UPDATE rm_proposals SET state = 'approved' WHERE digest = ?",
                     (status.digest,))
        ledger.query("UPDATE rm_holdings SET balance = '1'")
        found = readmodel.check(ledger)
        assert any(f.startswith("workflow read model:") for f in found), found
        assert any("holdings read model: national-btc BTC is 1 after 1 entries" in f
                   for f in found), found
        sizes = readmodel.rebuild(ledger)
        assert sizes == {"workflow": ledger.size(), "holdings": ledger.size()}
        assert readmodel.check(ledger) == []
        assert service.status(status.digest).state == "proposed"


def test_a_forged_kind_index_row_is_reported() -> None:
    with fresh_workflow() as (ledger, _):
        ledger.query("DROP TRIGGER ledger_entries_no_update")  # as the database's owner could
        ledger.query("UPDATE ledger_entries SET kind = 'vault.frozen' WHERE seq = 0")
        assert readmodel.check(ledger) == [
            "kind index: entry 0 is policy.version but the index says vault.frozen"]


def test_entries_appended_without_the_models_are_applied_before_a_read() -> None:
    with fresh_workflow() as (ledger, service):
        propose(service, 5_000_000)
        for name in (readmodel.WORKFLOW, readmodel.HOLDINGS):
            ledger.detach(name)  # another tool, or an older version, appends
        _deposit(ledger, 70_000, 1)
        status = propose(service, 6_000_000, at=T0 + timedelta(minutes=1))
        assert service.status(status.digest).state == "proposed"
        assert [h.balance for h in readmodel.holdings(ledger)] == [70_000]
        assert readmodel.check(ledger) == []


def test_another_writer_between_an_append_and_its_read_back_is_not_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process (a second API worker, the chain watcher) may append right after
    this one's transaction commits; the service reads a size beyond its own batch."""
    with fresh_workflow() as (ledger, service):
        append_many = ledger.append_many

        def and_then_a_deposit(*args: Any, **kwargs: Any) -> Any:
            entries = append_many(*args, **kwargs)
            monkeypatch.setattr(ledger, "append_many", append_many)
            _deposit(ledger, 30_000, 7)
            return entries

        monkeypatch.setattr(ledger, "append_many", and_then_a_deposit)
        status = propose(service, 5_000_000)
        assert service.projection.size == ledger.size() == status.seq + 2
        approve(service, status, "central-bank")
        assert service.status(status.digest).votes
        assert readmodel.check(ledger) == []


def test_a_refused_batch_leaves_neither_entries_nor_rows() -> None:
    with fresh_workflow() as (ledger, service):
        status = propose(service, 5_000_000)
        size, rows = ledger.size(), StoredProjection(ledger).snapshot()
        forged = {"vault": "national-btc", "digest": status.digest, "from": "proposed",
                  "to": "signing", "reason": "forged"}
        with pytest.raises(WorkflowError, match="illegal transition"):
            ledger.append_many([("btc.deposit", "btc-watcher", BtcDeposit(
                vault="national-btc", txid="ab" * 32, blockhash="00" * 32, height=5,
                confirmations=1, delta_sats=9, outputs=[], amount_sats=9).to_payload()),
                ("proposal.state", "mallory", forged)], now=T0)
        assert ledger.size() == size
        assert StoredProjection(ledger).snapshot() == rows
        assert readmodel.holdings(ledger) == []
        assert readmodel.check(ledger) == []


def test_a_decision_reads_only_the_velocity_window_it_needs() -> None:
    with fresh_workflow() as (ledger, service):
        stored = service.projection
        assert isinstance(stored, StoredProjection)
        status = propose(service, 5_000_000)
        approve(service, status, "central-bank", "vasp-regulator")
        assert service.status(status.digest).approved_at == T0
        window = timedelta(seconds=readmodel.velocity_window_seconds(btc_policy()))
        inside, after = T0 + window - timedelta(seconds=1), T0 + window
        assert [t.digest for t in stored.history("national-btc", inside).transfers] \
            == [status.digest]
        assert stored.history("national-btc", after).transfers == ()  # left the window
        assert [t.digest for t in stored.history("national-btc").transfers] == [status.digest]
        # The same decision from the window as from the whole history.
        later = propose(service, 6_000_000, at=after)
        replay = Projection()
        replay.catch_up(ledger)
        assert service.decision(later.digest, after) == _decide(replay, later.digest, after)


def _decide(replay: Projection, digest: str, now: Any) -> Any:
    from reserve.policy.evaluate import evaluate

    status = replay.status(digest)
    return evaluate(replay.vault("national-btc").policy, status.proposal, status.votes,
                    replay.history("national-btc"), now)


def test_prefixes_find_one_proposal_or_say_why_not() -> None:
    with fresh_workflow() as (_, service):
        status = propose(service, 5_000_000)
        stored = service.projection
        assert stored.status(status.digest[:8].upper()).digest == status.digest
        for bad in ("", "abc", "zzzzzzzz", "0" * 64 if status.digest[0] != "0" else "f" * 64):
            with pytest.raises(WorkflowError, match="unknown proposal"):
                stored.status(bad)


def test_a_plain_copy_of_the_ledger_builds_the_same_rows_when_attached() -> None:
    with fresh_workflow() as (ledger, service):
        propose(service, 5_000_000)
        propose(service, 7_000_000, destination=COLD, at=T0 + timedelta(seconds=1))
        with plain_copy(ledger) as copy:
            assert copy.query("SELECT COUNT(*) FROM ledger_entries WHERE kind != ''"
                              )[0][0] == copy.size()
            readmodel.current(copy)
            assert StoredProjection(copy).snapshot() == StoredProjection(ledger).snapshot()


def _columns(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    return {table: [tuple(row[1:]) for row in ledger.query(f"PRAGMA table_info({table})")]
            for table in readmodel.TABLES}


def test_the_migrated_tables_are_the_in_memory_ones(tmp_path: Any) -> None:
    """Alembic's revision 0005 (files, PostgreSQL) and MEMORY_DDL (in-memory ledgers)
    create the same columns, so unit tests exercise the production shape."""
    with Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}") as migrated, \
            Ledger.open("sqlite:///:memory:") as memory:
        readmodel.attach(memory)
        assert _columns(migrated) == _columns(memory)
        assert all(_columns(migrated).values())


def test_the_commands_find_a_difference_and_rebuild_it(tmp_path: Any) -> None:
    """`reserve ledger verify --projections` fails on an edited row and names it;
    `reserve projections rebuild` repairs it; nothing else about the ledger changes."""
    from typer.testing import CliRunner

    from reserve.cli import main

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with fresh_workflow(url) as (ledger, service):
        status = propose(service, 5_000_000)
        size = ledger.size()
    runner = CliRunner()
    verify = ["ledger", "verify", "--projections", "--database-url", url]
    result = runner.invoke(main.app, verify)
    assert result.exit_code == 0, result.output
    assert "read models and the kind index equal a full replay" in result.output
    with Ledger.open(url) as ledger:
        ledger.query("UPDATE rm_proposals SET status = replace(status, "
                     "'\"purpose\":\"test\"', '\"purpose\":\"edited\"')")
    result = runner.invoke(main.app, verify)
    assert result.exit_code == 1
    assert f"proposals.{status.digest}" in result.output, result.output
    result = runner.invoke(main.app, ["projections", "rebuild", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert f"rebuilt the read models from {size} entries" in result.output
    assert runner.invoke(main.app, verify).exit_code == 0
    with Ledger.open(url) as ledger:
        assert ledger.size() == size


def test_a_page_of_proposals_reads_as_the_replay_pages_it() -> None:
    with fresh_workflow() as (ledger, service):
        made = [propose(service, 1_000_000 + n, at=T0 + timedelta(minutes=n),
                        reference=f"P{n}") for n in range(7)]
        approve(service, made[2], "central-bank")
        replay = Projection()
        replay.catch_up(ledger)
        stored = StoredProjection(ledger)
        middle = made[3].seq
        queries = [ProposalQuery(), ProposalQuery(limit=3), ProposalQuery(newest_first=True,
                   limit=2), ProposalQuery(after_seq=middle, limit=2),
                   ProposalQuery(before_seq=middle, newest_first=True),
                   ProposalQuery(states=frozenset({"proposed"}), action="transfer"),
                   ProposalQuery(vaults=frozenset({"national-btc"}), limit=1),
                   ProposalQuery(vaults=frozenset()), ProposalQuery(vaults=frozenset({"nope"})),
                   ProposalQuery(action="policy_change"),
                   ProposalQuery(vaults=frozenset({"national-btc"}), states=OPEN,
                                 action="transfer", newest_first=True, limit=2),
                   ProposalQuery(vaults=frozenset({"national-btc"}),
                                 states=frozenset({"approved"}), before_seq=middle)]
        for query in queries:
            assert [s.digest for s in stored.page(query)] == \
                [s.digest for s in replay.page(query)], query
            assert stored.count(query) == replay.count(query), query
        assert [s.digest for s in stored.page(ProposalQuery(limit=3))] == \
            [s.digest for s in made[:3]]
        assert [s.digest for s in stored.page(ProposalQuery(after_seq=middle))] == \
            [s.digest for s in made[4:]]
        assert stored.count(ProposalQuery(limit=1)) == 7


def test_a_forged_or_missing_digest_index_row_is_reported_and_rebuilt() -> None:
    with fresh_workflow() as (ledger, service):
        status = propose(service, 5_000_000)
        ledger.query("DELETE FROM rm_digest_entries WHERE seq = ?", (status.seq,))
        ledger.query("INSERT INTO rm_digest_entries (digest, seq) VALUES (?, 0)",
                     (status.digest,))
        assert readmodel.check(ledger) == [
            f"digest index: entry 0 names no proposal but the index says {status.digest}",
            f"digest index: entry {status.seq} names {status.digest} but the index says "
            "nothing"]
        readmodel.rebuild(ledger)
        assert readmodel.check(ledger) == []
        assert readmodel.entries_naming(ledger, [status.digest], ledger.size()) == [status.seq]


def test_a_bad_verifier_key_is_a_clear_error(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from reserve.cli import main

    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    with fresh_workflow(url):
        pass
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\xff\xfe\x00")
    runner = CliRunner()
    for key, words in ((str(empty), "holds no verifier key"), (str(binary), "--key:"),
                       ("not-a-key", "verifier key must be")):
        result = runner.invoke(main.app, ["ledger", "verify", "--key", key,
                                          "--database-url", url])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: --key: ") and words in result.output


def test_questions_about_live_proposals_are_answered_through_the_state_index() -> None:
    """Open (or signing, broadcast) proposals of a vault cost the live ones, not the vault's
    history: on SQLite the vault and action columns stay out of the planner's index choice."""
    with fresh_workflow() as (ledger, service):
        propose(service, 1_000_000)
        stored = StoredProjection(ledger)
        for query in (ProposalQuery(vaults=frozenset({"national-btc"}), states=OPEN,
                                    newest_first=True, limit=21),
                      ProposalQuery(vaults=frozenset({"national-btc"}), action="transfer",
                                    states=frozenset({"signing"}))):
            where = stored._where(query)
            assert where is not None
            plan = " ".join(str(row[-1]) for row in ledger.query(
                f"EXPLAIN QUERY PLAN SELECT digest FROM rm_proposals WHERE {where[0]}",
                where[1]))
            assert "rm_proposals_by_state" in plan, plan
        # A question that includes final states may still take another index.
        where = stored._where(ProposalQuery(vaults=frozenset({"x"}),
                                            states=frozenset({"expired"})))
        assert where is not None and "+vault" not in where[0]


def test_decisions_for_a_page_equal_each_proposal_decided_alone() -> None:
    with fresh_workflow() as (_, service):
        made = [propose(service, 1_000_000 + n, at=T0 + timedelta(minutes=n),
                        reference=f"D{n}") for n in range(3)]
        approve(service, made[1], "central-bank", "vasp-regulator")
        now = T0 + timedelta(hours=1)
        statuses = [service.status(s.digest) for s in made]
        assert service.decisions(statuses, now) == \
            [service.decision(s.digest, now) for s in made]
        assert service.decisions([], now) == []


def test_a_decision_reads_the_window_documents_once_per_row_version() -> None:
    """The velocity evidence of each approved transfer is kept per (digest, updated_seq):
    a second decision reads only the window's keys, and a row that changed is read anew."""
    with fresh_workflow() as (ledger, service):
        stored = service.projection
        assert isinstance(stored, StoredProjection)
        status = propose(service, 5_000_000)
        approve(service, status, "central-bank", "vasp-regulator")
        inside = T0 + timedelta(hours=1)
        first = stored.history("national-btc", inside)
        assert [t.digest for t in first.transfers] == [status.digest]
        assert first.transfers[0].state in OPEN
        statements: list[str] = []
        query = ledger.query

        def spy(statement: str, params: Any = ()) -> Any:
            statements.append(statement)
            return query(statement, params)

        ledger.query = spy  # type: ignore[method-assign]
        try:
            assert stored.history("national-btc", inside) == first
        finally:
            ledger.query = query  # type: ignore[method-assign]
        assert statements and not any("status" in s for s in statements), statements
        service.cancel(status.digest, "treasury-ops", "no longer needed", now=inside)
        changed = stored.history("national-btc", inside)
        assert [(t.digest, t.state) for t in changed.transfers] == \
            [(status.digest, "cancelled")]
        later = propose(service, 6_000_000, at=inside, reference="later")
        replay = Projection()
        replay.catch_up(ledger)
        assert service.decision(later.digest, inside) == _decide(replay, later.digest, inside)
