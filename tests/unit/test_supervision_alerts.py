"""The alert feed: one alert per kind of event the supervisor must see, in ledger order,
resumable by cursor, and a page that reads only entries after the cursor, boundedly."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from reserve.errors import WorkflowError
from reserve.events.mining import EnergyReportPublished
from reserve.events.records import ReconcileReport
from reserve.events.transparency import StatementPublished
from reserve.ledger import Ledger
from reserve.supervision import alerts as feed
from tests.support.supervision import change, licensed_policy
from tests.support.workflow import (
    MEMORY_URL,
    SETTLEMENT,
    STRANGER,
    T0,
    approve,
    propose,
    workflow_service,
)


def _context(service: Any) -> feed.LedgerContext:
    projection = service.sync()
    return feed.LedgerContext(service.ledger, {v: s.policy_versions
                                               for v, s in projection.vaults.items()})


@pytest.fixture()
def story() -> tuple[Any, list[str]]:
    """A ledger with one event of each alert kind (and others that raise none)."""
    ledger = Ledger.open(MEMORY_URL)
    service = workflow_service(ledger, licensed_policy())
    at = T0
    service.record_licence_change(change("active", 1, T0 - timedelta(days=9)), "regulator")
    propose(service, 5_000_000, SETTLEMENT)  # small: no alert
    propose(service, 600_000_000, SETTLEMENT)  # very_large tier
    destination = service.propose_destination(
        vault="national-btc", proposer="central-bank", asset="BTC", address=STRANGER,
        label="New custodian bank", purpose="diversify")
    approve(service, destination, "finance-ministry", "vasp-regulator", "auditor-general")
    changed = replace(licensed_policy(), version=2, description="v2")
    policy_change = service.propose_policy_change(policy=changed, proposer="central-bank",
                                                  purpose="tidy")
    approve(service, policy_change, "finance-ministry", "vasp-regulator", "auditor-general",
            "crypto-council")
    service.refresh(at + timedelta(days=4))
    service.freeze("national-btc", "sara-supervisor", "looking", now=at + timedelta(days=4))
    unfreeze = service.propose_unfreeze(vault="national-btc", proposer="central-bank",
                                        purpose="done", now=at + timedelta(days=4))
    approve(service, unfreeze, "finance-ministry", "vasp-regulator", "auditor-general",
            at=at + timedelta(days=4))
    service.refresh(at + timedelta(days=6))
    ledger.append(ReconcileReport.KIND, "auditor-general", ReconcileReport(
        report_sha256="cd" * 32, auditor_key="auditor.test+00000000+AAAA", signature="AAAA",
        ledger_tree_size=2, ledger_root_hash="ef" * 32, block={"height": 1, "hash": "ab" * 32},
        summary=[{"vault_id": "national-btc", "asset": "BTC", "status": "critical"}],
        findings_by_severity={"critical": 2}).to_payload(), now=at + timedelta(days=6))
    # Proposals under v1 were cancelled by v2; a new one to the exchange is pending.
    propose(service, 5_000_000, SETTLEMENT, at=at + timedelta(days=6))
    service.record_licence_change(change("suspended", 2, at + timedelta(days=6)), "regulator",
                                  now=at + timedelta(days=6))
    for flows, kept in (([{"class": "mining", "sats": 5}], True),  # a clean one: no alert
                        ([{"class": "purchase", "sats": 7}], False),
                        ([{"class": "unattributed", "sats": 50_000_000}], True)):
        ledger.append(StatementPublished.KIND, "auditor:auditor-general", StatementPublished(
            statement_sha256="ab" * 32, auditor_key="auditor.test+00000000+AAAA",
            signature="AAAA", period_start="", period_end="", blocks={"end_height": 9},
            consolidated={"opening_sats": 0, "closing_sats": 7, "flows": flows}, wallets=[],
            commitments=[{"id": "no-purchases", "text": "No purchases", "kept": kept,
                          "findings": [] if kept else ["purchase flows of 7 sats"]}],
        ).to_payload(), now=at + timedelta(days=6))
    for anomalies in ([], [{"kind": "payout_without_reading", "site": "south-mine",
                            "detail": "paid at 06:10 with no reading"}]):
        ledger.append(EnergyReportPublished.KIND, "auditor:auditor-general",
                      EnergyReportPublished(
                          report_sha256="ee" * 32, signature="AAAA",
                          auditor_key="auditor.test+00000000+AAAA",
                          period={"start": "2026-01-05T00:00:00Z",
                                  "end": "2026-01-06T00:00:00Z"},
                          statement_sha256="ab" * 32, ledger={"tree_size": 1},
                          price=None, difficulty=None, sites=[], total={},
                          anomalies=anomalies).to_payload(), now=at + timedelta(days=6))
    return service, ["transfer.very_large", "destination.proposed", "destination.added",
                     "policy.change_proposed", "policy.changed", "vault.frozen",
                     "vault.unfrozen", "reconcile.unauthorised_spend",
                     "licence.affects_pending", "statement.commitment_breach",
                     "statement.unattributed_inflows", "energy.anomalies"]


def test_each_kind_raises_its_alert_in_ledger_order(story: tuple[Any, list[str]]) -> None:
    service, expected = story
    page = feed.read_alerts(service.ledger, _context(service))
    assert [a.kind for a in page.alerts] == expected
    assert [a.seq for a in page.alerts] == sorted(a.seq for a in page.alerts)
    assert page.complete and page.cursor == service.ledger.size() - 1
    texts = {a.kind: a.text for a in page.alerts}
    assert "6.00000000 BTC from national-btc (tier very_large)" in texts["transfer.very_large"]
    assert "froze national-btc: looking" in texts["vault.frozen"]
    assert "found 2 unauthorised spends (national-btc)" in \
        texts["reconcile.unauthorised_spend"]
    assert "licence L-042 suspended from" in texts["licence.affects_pending"]
    assert "breaks 1 commitment: No purchases (purchase flows of 7 sats)" in \
        texts["statement.commitment_breach"]
    assert "0.50000000 BTC" in texts["statement.unattributed_inflows"]
    assert "has 1 anomaly: payout_without_reading at south-mine" in texts["energy.anomalies"]
    assert {a.kind: a.severity for a in page.alerts}["energy.anomalies"] == "high"
    for alert in page.alerts:
        assert service.ledger.entry(alert.seq).kind == alert.entry_kind


def test_the_feed_resumes_from_any_cursor(story: tuple[Any, list[str]]) -> None:
    service, expected = story
    context = _context(service)
    seen, cursor = [], -1
    for _ in range(50):
        page = feed.read_alerts(service.ledger, context, after=cursor, limit=2)
        seen += page.alerts
        cursor = page.cursor
        if page.complete:
            break
    assert [a.kind for a in seen] == expected
    middle = seen[3].seq
    assert [a.kind for a in feed.read_alerts(service.ledger, context, after=middle).alerts] \
        == expected[4:]


class CountingLedger:
    """Counts what the feed asks of the ledger: which range, which kinds."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.reads: list[tuple[int, int | None, frozenset[str] | None]] = []

    def size(self) -> int:
        return self.ledger.size()

    def entry(self, seq: int) -> Any:
        return self.ledger.entry(seq)

    def entries(self, start: int = 0, stop: int | None = None, kinds: Any = None) -> Any:
        self.reads.append((start, stop, frozenset(kinds) if kinds is not None else None))
        return self.ledger.entries(start=start, stop=stop, kinds=kinds)


def test_a_page_reads_only_after_the_cursor_and_at_most_scan_max(
        story: tuple[Any, list[str]]) -> None:
    service, _ = story
    counting = CountingLedger(service.ledger)
    context = _context(service)
    size = service.ledger.size()
    feed.read_alerts(counting, context, after=size - 3, limit=10)
    assert counting.reads == [(size - 2, size, feed.ALERT_KINDS)]
    bounded = feed.read_alerts(counting, context, after=-1, limit=10, scan_max=4)
    assert counting.reads[-1] == (0, 4, feed.ALERT_KINDS)
    assert bounded.cursor == 3 and not bounded.complete


def test_bad_cursors_and_limits_are_refused() -> None:
    ledger = Ledger.open(MEMORY_URL)
    service = workflow_service(ledger, licensed_policy())
    for after, limit in ((-2, 1), (0, 0), (0, feed.PAGE_LIMIT_MAX + 1)):
        with pytest.raises(WorkflowError, match="after must be"):
            feed.read_alerts(ledger, _context(service), after=after, limit=limit)


def test_a_new_alert_kind_plugs_in_by_one_mapping(story: tuple[Any, list[str]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 16's kinds will join so; here a note stands in for such an entry."""
    service, _ = story
    note = service.ledger.append("ledger.note", "watcher", {"text": "unattributed inflow"})
    mappers = {**feed.MAPPERS, "ledger.note": lambda entry, event, context: feed._alert(
        entry, "inflow.unattributed", "high", "national-btc", event.to_payload()["text"])}
    monkeypatch.setattr(feed, "MAPPERS", mappers)
    monkeypatch.setattr(feed, "ALERT_KINDS", frozenset(mappers))
    page = feed.read_alerts(service.ledger, _context(service), after=note.seq - 1)
    assert [(a.seq, a.kind) for a in page.alerts] == [(note.seq, "inflow.unattributed")]


def test_acknowledgements_say_who_and_when(story: tuple[Any, list[str]]) -> None:
    from reserve.events.supervision import AlertAcknowledged

    service, _ = story
    alert = feed.read_alerts(service.ledger, _context(service), limit=1).alerts[0]
    entry = service.record_event(AlertAcknowledged(alert_seq=alert.seq, alert_kind=alert.kind,
                                                   note="seen"), "sara-supervisor",
                                 now=T0 + timedelta(days=7))
    book = feed.Acknowledgements()
    book.catch_up(service.ledger)
    [ack] = book.of(alert.seq)
    assert (ack.by, ack.time[:19], ack.seq) == ("sara-supervisor", "2026-01-12T09:00:00",
                                                entry.seq)


class SizedLedger:
    """A ledger of `size` entries of no alert kind, counting the entries the feed reads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self.read = 0

    def size(self) -> int:
        return self._size

    def entries(self, start: int = 0, stop: int | None = None, kinds: Any = None) -> Any:
        for seq in range(start, self._size if stop is None else stop):
            self.read += 1
            yield type("E", (), {"seq": seq, "kind": "ledger.note", "payload": {},
                                 "time": "", "actor": ""})()


@pytest.mark.parametrize("size", [1_000, 1_000_000])
def test_a_page_costs_the_same_at_a_million_entries_as_at_a_thousand(size: int) -> None:
    ledger = SizedLedger(size)
    page = feed.read_alerts(ledger, feed.LedgerContext(ledger, {}), after=size - 101)
    assert ledger.read == 100 and page.complete
    start = SizedLedger(size)
    feed.read_alerts(start, feed.LedgerContext(start, {}), after=-1, scan_max=500)
    assert start.read == 500
