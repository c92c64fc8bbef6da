"""A page of live proposals costs the live proposals, on SQLite and PostgreSQL alike,
however long the history and wherever in it the live ones are.

The workload is the planner's worst case: 20,000 proposals of which the 300 live ones
(proposed, approved, releasable) are the oldest, so a plan that walks the seq index
newest first reads the whole history before it finds them. The statistics are fresh
on PostgreSQL (ANALYZE), as autovacuum keeps them on a running server; SQLite has none,
as in service.
"""

from __future__ import annotations

import pytest

from reserve.ledger import Ledger
from reserve.ledger.store import Transaction
from reserve.transfers.readmodel import StoredProjection, _order
from reserve.transfers.service import ProposalQuery

LIVE = frozenset({"proposed", "approved", "releasable"})
FINAL = ("released", "expired", "cancelled", "rejected", "confirmed")
PROPOSALS, LIVE_COUNT = 20_000, 300


def _fill(ledger: Ledger) -> None:
    rows = [(f"{i:064x}", "national-btc" if i % 3 else "vault-b",
             "transfer" if i % 5 else "policy_change",
             sorted(LIVE)[i % 3] if i < LIVE_COUNT else FINAL[i % len(FINAL)], i, None, i, "{}")
            for i in range(PROPOSALS)]
    with ledger._write():  # as a read model writes its rows, inside the ledger's transaction
        tx = Transaction(ledger)
        tx.executemany("INSERT INTO rm_proposals (digest, vault, action, state, seq, "
                       "approved_at_us, updated_seq, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       rows)
        if ledger.dialect == "postgresql":  # SQLite runs without statistics, as in service
            tx.execute("ANALYZE rm_proposals")


@pytest.mark.parametrize("query", [
    ProposalQuery(states=LIVE, newest_first=True, limit=50),
    ProposalQuery(vaults=frozenset({"national-btc", "vault-b"}), states=LIVE,
                  newest_first=True, limit=20),
    ProposalQuery(vaults=frozenset({"national-btc"}), states=LIVE, action="transfer",
                  newest_first=True, limit=20, before_seq=PROPOSALS - 1_000),
], ids=["open", "open-of-vaults", "transfers-before"])
def test_a_live_page_is_read_through_the_state_index(ledger_url: str,
                                                      query: ProposalQuery) -> None:
    with Ledger.open(ledger_url) as ledger:
        _fill(ledger)
        where = StoredProjection(ledger)._where(query)
        assert where is not None
        statement = f"SELECT digest FROM rm_proposals WHERE {where[0]} ORDER BY {_order(query)}"
        explain = "EXPLAIN QUERY PLAN " if ledger.dialect == "sqlite" else "EXPLAIN "
        plan = " ".join(str(row[-1]) for row in ledger.query(explain + statement, where[1]))
        assert "rm_proposals_by_state" in plan and "rm_proposals_by_seq" not in plan, plan
        found = [str(row[0]) for row in ledger.query(statement, where[1])]
    expected = [f"{i:064x}" for i in reversed(range(LIVE_COUNT))
                if (query.vaults is None or ("national-btc" if i % 3 else "vault-b")
                    in query.vaults)
                and (query.action is None or (query.action == "transfer") == bool(i % 5))
                and (query.before_seq is None or i < query.before_seq)][:query.limit]
    assert found == expected
