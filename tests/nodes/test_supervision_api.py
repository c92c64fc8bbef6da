"""The supervisor's seat over HTTP, against a real uvicorn server.

The alert feed by cursor and as server-sent events (the stream is outside the OpenAPI
schema, so its roles are checked here rather than in the role matrix), acknowledgements
recorded with who and when (twice refused, a non-alert refused, nothing written), the
licence register, a report shown with the supervisor's attestation, and the supervision
page behind the cookie login.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from reserve.events.records import ReconcileReport
from reserve.supervision.attest import attest
from reserve.supervision.keys import SigningKey
from tests.support.api_server import ROLES, RunningServer, running_server
from tests.support.supervision import REGULATOR, change, licensed_policy
from tests.support.workflow import SETTLEMENT, propose, workflow_service


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-supervision")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        service = workflow_service(running.ledger, licensed_policy(), clock=running.clock.wall)
        now = running.clock.wall()
        service.record_licence_change(change("active", 1, now - timedelta(days=9)), "regulator")
        propose(service, 5_000_000, SETTLEMENT, at=now)
        service.freeze("national-btc", "sara-supervisor", "inspection", now=now)
        running.report = running.ledger.append(  # type: ignore[attr-defined]
            ReconcileReport.KIND, "auditor-general", ReconcileReport(
                report_sha256="cd" * 32, auditor_key="auditor.test+00000000+AAAA",
                signature="AAAA", ledger_tree_size=2, ledger_root_hash="ef" * 32,
                block={"height": 1, "hash": "ab" * 32},
                summary=[{"vault_id": "national-btc", "asset": "BTC", "status": "critical"}],
                findings_by_severity={"critical": 1}).to_payload(), now=now)
        service.record_licence_change(change("suspended", 2, now), "regulator", now=now)
        yield running


def test_alerts_page_by_cursor(server: RunningServer) -> None:
    with server.client("supervisor") as client:
        everything = client.get("/api/supervision/alerts").json()
        kinds = [a["kind"] for a in everything["alerts"]]
        assert kinds == ["vault.frozen", "reconcile.unauthorised_spend",
                         "licence.affects_pending"]
        first = client.get("/api/supervision/alerts?limit=1").json()
        assert not first["complete"]
        rest = client.get(f"/api/supervision/alerts?after={first['cursor']}").json()
        assert [a["kind"] for a in rest["alerts"]] == kinds[1:] and rest["complete"]
        assert client.get("/api/supervision/alerts?after=-2").status_code == 422


def test_the_stream_sends_alerts_as_events_and_resumes(server: RunningServer) -> None:
    seqs: list[int] = []
    for role in ROLES:
        with server.client(role) as client:
            response = client.get("/api/supervision/alerts/stream?seconds=0")
            assert response.status_code == 200, role
            assert response.headers["content-type"].startswith("text/event-stream")
            found = [int(line[4:]) for line in response.text.splitlines()
                     if line.startswith("id: ")]
            # A custodian of vault-a sees none of national-btc's alerts.
            assert len(found) == (0 if role == "custodian" else 3), role
            assert "event: end" in response.text
            seqs = found or seqs
    with server.client("viewer") as client:
        resumed = client.get("/api/supervision/alerts/stream?seconds=0",
                             headers={"Last-Event-ID": str(seqs[0])}).text
        assert [int(line[4:]) for line in resumed.splitlines() if line.startswith("id: ")] \
            == seqs[1:]
    with server.client() as client:
        assert client.get("/api/supervision/alerts/stream?seconds=0").status_code == 401


def test_acknowledgement_is_recorded_with_who_and_when(server: RunningServer) -> None:
    with server.client("supervisor") as client:
        alert = client.get("/api/supervision/alerts").json()["alerts"][0]
        done = client.post(f"/api/supervision/alerts/{alert['seq']}/acknowledge",
                           json={"note": "seen it"})
        assert done.status_code == 201, done.text
        assert done.json()["by"] == "sara-supervisor"
        entry = server.ledger.entry(done.json()["seq"])
        assert entry.kind == "alert.acknowledged" and entry.actor == "sara-supervisor"
        before = server.ledger.size()
        again = client.post(f"/api/supervision/alerts/{alert['seq']}/acknowledge", json={})
        assert again.status_code == 409 and "already acknowledged" in again.json()["detail"]
        not_alert = client.post("/api/supervision/alerts/0/acknowledge", json={})
        assert not_alert.status_code == 404
        assert server.ledger.size() == before
        shown = client.get("/api/supervision/alerts").json()["alerts"][0]
        assert shown["acknowledged"][0]["by"] == "sara-supervisor"
    with server.client("auditor") as client:
        refused = client.post(f"/api/supervision/alerts/{alert['seq']}/acknowledge", json={})
        assert refused.status_code == 403


def test_the_licence_register_shows_the_suspension(server: RunningServer) -> None:
    with server.client("viewer") as client:
        [licence] = client.get("/api/supervision/licences").json()["licences"]
    assert (licence["licence_id"], licence["status"], licence["changes"]) == \
        ("L-042", "suspended", 2)


def test_a_report_is_shown_with_its_attestation(server: RunningServer) -> None:
    report = server.report  # type: ignore[attr-defined]
    key = SigningKey("sara", REGULATOR)  # any Ed25519 key will do for the supervisor here
    event = attest(key, report, "checked against our own node")
    server.ledger.append(event.KIND, "sara-supervisor", event.to_payload(),
                         now=server.clock.wall())
    with server.client("viewer") as client:
        shown = client.get(f"/api/reconcile/reports/{report.seq}").json()
        listed = client.get("/api/reconcile/reports").json()["reports"][0]
    assert [(a["by"], a["verified"]) for a in shown["attestations"]] == \
        [("sara-supervisor", True)]
    assert listed["attestations"] == shown["attestations"]
    with server.client(cookies={"srl_token": server.tokens["viewer"]}) as client:
        page = client.get("/dashboard/reconciliation").text
    assert "checked against our own node" in page


def test_the_supervision_page(server: RunningServer) -> None:
    with server.client(cookies={"srl_token": server.tokens["supervisor"]}) as client:
        page = client.get("/dashboard/supervision")
        stream = client.get("/dashboard/supervision/stream?after=-1&seconds=0")
    assert page.status_code == 200
    assert "reconcile.unauthorised_spend" in page.text and "L-042" in page.text
    assert 'href="/dashboard/supervision" aria-current="page"' in page.text
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.text.count("event: alert") == 3
    with server.client(follow_redirects=False) as client:
        assert client.get("/dashboard/supervision").status_code == 303
