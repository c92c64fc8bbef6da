"""The regulator's supervisor watches the reserve from the dashboard, in a real browser.

The story: the national vault's policy names the settlement destination as an exchange
holding licence L-042, which the regulator has signed active; the supervisor has frozen the
vault once for an inspection, and a reconciliation found an unauthorised spend. The
supervisor logs in, opens the supervision page and sees those alerts and the licence
register. While the page is open the regulator suspends L-042 with a transfer to that
exchange pending: the alert arrives on the page live, over server-sent events, without a
reload, and the supervisor acknowledges it from the page with its token (typed in, sent
once in the Authorization header; the ledger records who and when). The screenshot is saved in test-artifacts/dashboard/supervision.png.

Driven by tests/e2e/supervision.mjs (playwright-core from node_modules, Debian's chromium).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

from reserve.events.records import ReconcileReport
from tests.e2e.test_dashboard_browser import ARTIFACTS, ROOT, pytestmark  # noqa: F401
from tests.support.api_server import running_server
from tests.support.supervision import change, licensed_policy
from tests.support.workflow import SETTLEMENT, propose, workflow_service

WAIT_SECONDS_MAX = 60


def test_the_supervisor_sees_alerts_arrive_live(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite") as server:
        now = server.clock.wall()
        service = workflow_service(server.ledger, licensed_policy(), clock=server.clock.wall)
        service.record_licence_change(change("active", 1, now - timedelta(days=9)),
                                      "regulator")
        service.freeze("national-btc", "sara-supervisor", "inspection of the books")
        server.ledger.append(ReconcileReport.KIND, "auditor-general", ReconcileReport(
            report_sha256="cd" * 32, auditor_key="auditor.test+00000000+AAAA",
            signature="AAAA", ledger_tree_size=2, ledger_root_hash="ef" * 32,
            block={"height": 101, "hash": "ab" * 32},
            summary=[{"vault_id": "national-btc", "asset": "BTC", "status": "critical"}],
            findings_by_severity={"critical": 1}).to_payload(), now=now)
        pending = propose(service, 5_000_000, SETTLEMENT, at=now)
        ready = tmp_path / "page-open"

        def suspend_when_the_page_is_open() -> None:
            deadline = time.monotonic() + WAIT_SECONDS_MAX
            while not ready.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            service.record_licence_change(change("suspended", 2, now), "regulator", now=now)
        suspender = threading.Thread(target=suspend_when_the_page_is_open, daemon=True)
        suspender.start()
        result = subprocess.run(
            ["node", str(ROOT / "tests" / "e2e" / "supervision.mjs"), "--base",
             server.base_url, "--token", server.tokens["supervisor"], "--out",
             str(ARTIFACTS), "--ready", str(ready)],
            capture_output=True, text=True, timeout=180, cwd=ROOT)
        suspender.join(WAIT_SECONDS_MAX)
        assert result.returncode == 0, result.stderr[-3000:]
        seen = json.loads(result.stdout.strip().splitlines()[-1])
        acks = list(server.ledger.entries(kinds=("alert.acknowledged",)))
    assert seen["kinds"] == ["reconcile.unauthorised_spend", "vault.frozen"]  # newest first
    assert any("L-042" in row and "active" in row for row in seen["licences"])
    assert len(seen["live"]) == 1 and "licence L-042 suspended" in seen["live"][0]
    assert pending.digest[:16] in seen["live"][0]
    assert seen["count"] == "3"
    assert seen["acknowledged"].startswith("Recorded: ledger entry ")
    assert seen["acknowledged_cell"].startswith("sara-supervisor at ")
    assert seen["token_cleared"]
    assert [e.actor for e in acks] == ["sara-supervisor"]
    assert acks[0].payload["note"] == "seen; asking the exchange"
    assert seen["console_errors"] == []
    assert (ARTIFACTS / "supervision.png").exists()
