"""Reconciliation reports over HTTP: pages by cursor, a report by its hash, its attestations,
all read through indexes, so the cost is a page's, not the history's.

Against a real uvicorn server on SQLite. The reports concern two vaults, so the custodian
of one (vault-a) sees a thinner history with its own cursor; a report of another vault is
answered as if it did not exist. And the migration that indexes the reports of an older
database (revision 0006), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command

from reserve.api.routes import reconcile as reconcile_routes
from reserve.events.records import ReconcileReport
from reserve.ledger import Ledger
from reserve.ledger.migrate import HEAD_REVISION, alembic_config
from reserve.supervision.attest import attest
from reserve.supervision.keys import SigningKey
from reserve.transfers import readmodel
from tests.support.api_server import RunningServer, running_server
from tests.support.supervision import REGULATOR

VAULTS = ("vault-a", "national-btc", "vault-a", "national-btc", "national-btc", "vault-a",
          "national-btc")


def report_payload(number: int, vault: str) -> dict[str, Any]:
    return ReconcileReport(
        report_sha256=f"{number:064x}", auditor_key="auditor.test+00000000+AAAA",
        signature="AAAA", ledger_tree_size=number, ledger_root_hash="ef" * 32,
        block={"height": number, "hash": "ab" * 32},
        summary=[{"vault_id": vault, "asset": "BTC", "status": "ok"}],
        findings_by_severity={}).to_payload()


def record_reports(ledger: Ledger, now: Any) -> list[Any]:
    found = []
    for number, vault in enumerate(VAULTS, start=1):
        found.append(ledger.append(ReconcileReport.KIND, "auditor-general",
                                   report_payload(number, vault), now=now))
        ledger.append("ledger.note", "auditor-general", {"text": f"between {number}"},
                      now=now)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-reports")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        running.reports = record_reports(running.ledger,  # type: ignore[attr-defined]
                                         running.clock.wall())
        yield running


def walk(client: Any, limit: int) -> tuple[list[int], int]:
    """Every report seq, following `next.before` page by page, and the pages it took."""
    seqs: list[int] = []
    url, pages = f"/api/reconcile/reports?limit={limit}", 0
    while url and pages < 20:
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seqs += [report["seq"] for report in body["reports"]]
        pages += 1
        url = body["next"] and f"/api/reconcile/reports?limit={limit}&before=" \
            f"{body['next']['before']}"
    return seqs, pages


def test_pages_by_cursor_hold_every_report_once_newest_first(server: RunningServer) -> None:
    reports = server.reports  # type: ignore[attr-defined]
    newest_first = [entry.seq for entry in reversed(reports)]
    with server.client("viewer") as client:
        assert walk(client, 3) == (newest_first, 3)
        assert walk(client, 7) == (newest_first, 1)
        whole = client.get("/api/reconcile/reports").json()
        assert [r["seq"] for r in whole["reports"]] == newest_first and whole["next"] is None


def test_a_custodian_pages_through_its_own_vaults_reports(server: RunningServer) -> None:
    reports = server.reports  # type: ignore[attr-defined]
    own = [entry.seq for entry, vault in zip(reversed(reports), reversed(VAULTS))
           if vault == "vault-a"]
    with server.client("custodian") as client:
        seqs, _ = walk(client, 2)
        assert seqs == own


def test_a_report_by_seq_or_hash_and_not_another_vaults(server: RunningServer) -> None:
    reports = server.reports  # type: ignore[attr-defined]
    first, second = reports[0], reports[1]  # vault-a, national-btc
    with server.client("viewer") as client:
        by_hash = client.get(f"/api/reconcile/reports/{1:064x}").json()
        assert by_hash["seq"] == first.seq and by_hash["report_sha256"] == f"{1:064x}"
        assert client.get(f"/api/reconcile/reports/{second.seq}").json()["seq"] == second.seq
        assert client.get(f"/api/reconcile/reports/{99:064x}").status_code == 404
        assert client.get(f"/api/reconcile/reports/{first.seq + 1}").status_code == 404  # a note
        assert client.get("/api/reconcile/reports/9999999").status_code == 404
    with server.client("custodian") as client:
        assert client.get(f"/api/reconcile/reports/{1:064x}").status_code == 200
        assert client.get(f"/api/reconcile/reports/{2:064x}").status_code == 404
        assert client.get(f"/api/reconcile/reports/{second.seq}").status_code == 404


@pytest.mark.parametrize("url", [
    "/api/reconcile/reports?before=-1", "/api/reconcile/reports?limit=0",
    "/api/reconcile/reports?limit=501", "/api/reconcile/reports?before=x",
    "/api/reconcile/reports/zz", f"/api/reconcile/reports/{'A' * 64}",
    "/dashboard/reconciliation?before=-3"])
def test_bad_cursors_and_names_are_refused(server: RunningServer, url: str) -> None:
    before = server.ledger.size()
    with server.client("viewer", cookies={"srl_token": server.tokens["viewer"]}) as client:
        answer = client.get(url)
    assert answer.status_code in (404, 422), answer.text
    assert server.ledger.size() == before


def test_an_old_reports_attestations_are_found_by_its_hash(server: RunningServer) -> None:
    report = server.reports[0]  # type: ignore[attr-defined]
    key = SigningKey("sara", REGULATOR)  # any Ed25519 key will do for the supervisor here
    good = attest(key, report, "checked the oldest report")
    server.ledger.append(good.KIND, "sara-supervisor", good.to_payload(),
                         now=server.clock.wall())
    forged = attest(key, report, "a statement nobody signed").to_payload()
    forged["statement"] = "a statement changed after signing"
    server.ledger.append(good.KIND, "sara-supervisor", forged, now=server.clock.wall())
    with server.client("viewer") as client:
        shown = client.get(f"/api/reconcile/reports/{report.seq}").json()
        seqs, _ = walk(client, 500)
        listed = client.get("/api/reconcile/reports?limit=500").json()["reports"][-1]
    assert [(a["statement"], a["verified"]) for a in shown["attestations"]] == \
        [("checked the oldest report", True), ("a statement changed after signing", False)]
    assert listed["seq"] == report.seq and listed["attestations"] == shown["attestations"]
    assert seqs[-1] == report.seq


def test_the_dashboard_pages_back_through_the_reports(server: RunningServer) -> None:
    reports = server.reports  # type: ignore[attr-defined]
    with server.client(cookies={"srl_token": server.tokens["viewer"]}) as client:
        latest = client.get("/dashboard/reconciliation").text
        assert f'data-report="{reports[-1].seq}"' in latest
        assert "older »" not in latest  # seven reports: one page of twenty
        older = client.get(f"/dashboard/reconciliation?before={reports[3].seq}").text
    shown = [entry.seq for entry in reports if f'data-report="{entry.seq}"' in older]
    assert shown == [entry.seq for entry in reports[:3]]
    assert "« the latest" in older and "Older reports" in older


def test_a_listing_reads_a_bounded_number_of_reports(server: RunningServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A custodian who may see none of the newest reports gets an empty page and a cursor
    after REPORTS_SCANNED of them, not a scan of the whole history."""
    reports = server.reports  # type: ignore[attr-defined]
    monkeypatch.setattr(reconcile_routes, "REPORTS_SCANNED", 2)
    with server.client("custodian") as client:
        # The newest two are national-btc's and vault-a's: one seen, then the cursor.
        first = client.get("/api/reconcile/reports?limit=5").json()
    assert [r["seq"] for r in first["reports"]] == [reports[5].seq]
    assert first["next"] == {"before": reports[5].seq}


def test_the_migration_indexes_an_older_databases_reports(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    try:
        readmodel.attach(ledger)
        reports = record_reports(ledger, None)
        key = SigningKey("sara", REGULATOR)
        event = attest(key, reports[2], "checked")
        ledger.append(event.KIND, "sara-supervisor", event.to_payload())
        assert readmodel.check(ledger) == []
    finally:
        ledger.close()
    command.downgrade(alembic_config(ledger_url), "0005_read_models")  # the index's rows go
    ledger = Ledger.open(ledger_url)  # upgrades to the head again, indexing them
    try:
        readmodel.attach(ledger)
        assert readmodel.current(ledger) is not None  # nothing to catch up: rows from 0006
        named = readmodel.entries_naming(ledger, [f"{3:064x}"], ledger.size())
        assert named == [reports[2].seq, ledger.size() - 1]
        assert readmodel.check(ledger) == []
    finally:
        ledger.close()
    assert HEAD_REVISION == "0007_kind_in_entries"


def test_a_missing_index_row_is_a_finding(ledger_url: str) -> None:
    ledger = Ledger.open(ledger_url)
    try:
        readmodel.attach(ledger)
        record_reports(ledger, None)
    finally:
        ledger.close()
    command.downgrade(alembic_config(ledger_url), "0005_read_models")
    # as if 0006 had filled nothing (0007 then runs on open)
    command.stamp(alembic_config(ledger_url), "0006_document_index")
    ledger = Ledger.open(ledger_url)
    try:
        findings = readmodel.check(ledger)
    finally:
        ledger.close()
    assert len(findings) == len(VAULTS) and all("digest index" in f for f in findings)
