"""`reserve serve` SIGKILLed under a propose/approve load, on SQLite and on PostgreSQL.

The whole process tree (supervisor and workers) dies at once, as in a power cut, while
several clients propose and vote. Afterwards every request the service acknowledged (2xx)
is in the ledger exactly once (found by its proposal's unique `reference`), nothing is
recorded twice, `reserve ledger verify` passes, and the service started again serves.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from reserve.cli.db import initialise
from reserve.ledger.verify import verify_ledger
from reserve.transfers.service import WorkflowService
from tests.support import postgres
from tests.support.api_server import ServedProcess, served_process
from tests.support.api_workflow import api_policy, proposal_body
from tests.support.served_load import (
    Acknowledged,
    exactly_once_findings,
    start_load,
    verify_with_cli,
)
from wallets.bitcoin.regtest import wait_until

ACKNOWLEDGED_MIN = 6  # proposals acknowledged before the kill: the load is under way
WORKERS = 1  # still a supervisor and its worker; two workers racing is test_api_serve_workers


def _kill_under_load(served: ServedProcess, acknowledged: Acknowledged) -> None:
    stop = threading.Event()
    before = len(acknowledged.proposals)
    threads = start_load(served, acknowledged, stop)
    wait_until(lambda: len(acknowledged.proposals) >= before + ACKNOWLEDGED_MIN, 30,
               "the load to be acknowledged")
    served.kill_group()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)


def _check(served: ServedProcess, acknowledged: Acknowledged) -> None:
    assert exactly_once_findings(served.ledger, acknowledged) == []
    assert verify_ledger(served.ledger).ok


def _serves(served: ServedProcess) -> None:
    with served.client("operator") as client:
        assert client.post("/api/proposals", json=proposal_body()).status_code == 201
        assert client.get("/api/proposals").status_code == 200


def _kill_rounds(folder: Path, url: str | None, kills: int, starts: int) -> None:
    """Start `starts` times; kill the first `kills` runs under load and check the ledger.
    Each start after the first is a restart after a kill and must serve at once."""
    url = url or f"sqlite:///{folder}/ledger.sqlite"
    acknowledged = Acknowledged()
    tokens = None
    for number in range(starts):
        with served_process(folder, workers=WORKERS, database_url=url, tokens=tokens,
                            log_name=f"serve-{number}.log") as served:
            if tokens is None:
                WorkflowService(served.ledger).register_policy(api_policy("vault-a"),
                                                               "test-bootstrap")
                tokens = served.tokens
            else:
                _serves(served)
            if number < kills:
                _kill_under_load(served, acknowledged)
                _check(served, acknowledged)
    assert len(acknowledged.proposals) >= kills * ACKNOWLEDGED_MIN
    # The operator's own check, on the ledger the last kill left behind.
    verified = verify_with_cli(str(folder / "config" / "reserve.toml"), url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_sqlite_service_killed_three_times_keeps_every_acknowledged_request(
        tmp_path: Path) -> None:
    _kill_rounds(tmp_path, None, kills=3, starts=3)


@pytest.mark.postgres
def test_postgresql_service_killed_keeps_every_acknowledged_request(
        tmp_path: Path, postgres_server: str, postgres_url: str) -> None:
    with postgres.split_roles(postgres_server, postgres_url) as (owner_url, service_url):
        initialise(owner_url, service_url)
        _kill_rounds(tmp_path, service_url, kills=1, starts=2)
