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


def _check(served: ServedProcess, acknowledged: Acknowledged, url: str) -> None:
    assert exactly_once_findings(served.ledger, acknowledged) == []
    verified = verify_with_cli(str(served.log_path.parent / "config" / "reserve.toml"), url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _serves(served: ServedProcess) -> None:
    with served.client("operator") as client:
        assert client.post("/api/proposals", json=proposal_body()).status_code == 201
        assert client.get("/api/proposals").status_code == 200


def _kill_rounds(folder: Path, url: str | None, rounds: int) -> None:
    acknowledged = Acknowledged()
    tokens = None
    for number in range(rounds):
        with served_process(folder, workers=2, database_url=url, tokens=tokens,
                            log_name=f"serve-{number}.log") as served:
            if tokens is None:
                WorkflowService(served.ledger).register_policy(api_policy("vault-a"),
                                                               "test-bootstrap")
                tokens = served.tokens
            _kill_under_load(served, acknowledged)
            _check(served, acknowledged, url or f"sqlite:///{folder}/ledger.sqlite")
    with served_process(folder, workers=2, database_url=url, tokens=tokens,
                        log_name="serve-after.log") as served:
        _serves(served)
        assert exactly_once_findings(served.ledger, acknowledged) == []
    assert len(acknowledged.proposals) >= rounds * ACKNOWLEDGED_MIN


def test_sqlite_service_killed_three_times_keeps_every_acknowledged_request(
        tmp_path: Path) -> None:
    _kill_rounds(tmp_path, None, rounds=3)


@pytest.mark.postgres
def test_postgresql_service_killed_keeps_every_acknowledged_request(
        tmp_path: Path, postgres_server: str, postgres_url: str) -> None:
    with postgres.split_roles(postgres_server, postgres_url) as (owner_url, service_url):
        initialise(owner_url, service_url)
        _kill_rounds(tmp_path, service_url, rounds=1)
