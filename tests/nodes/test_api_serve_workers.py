"""`reserve serve --workers 2` under attack: hostile bodies, a SIGKILLed worker, concurrent writes.

The service runs as a deployment runs it: a supervising parent holding the socket and two
worker processes, each with its own workflow projection cache. Before the request guard,
the first test's 200 KB body of nested `[` ended the (then single) server process with
SIGSEGV: a library the chain layers import raises Python's recursion limit to 100,000, and
the JSON parser ran before authentication.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reserve.ledger.verify import verify_ledger
from reserve.transfers.service import WorkflowService
from tests.support.api_server import ServedProcess, served_process
from tests.support.api_workflow import api_policy, vote_document
from tests.support.workflow import COLD


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProcess]:
    with served_process(tmp_path_factory.mktemp("served"), workers=2) as process:
        WorkflowService(process.ledger).register_policy(
            api_policy("vault-a"), "test-bootstrap")
        yield process


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _post_raw(base_url: str, body: bytes, token: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with httpx.Client(base_url=base_url, timeout=30) as client:
        return client.post("/api/proposals", content=body, headers=headers)


def _declared_gigabyte(base_url: str, token: str) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(f"POST /api/proposals HTTP/1.1\r\nHost: {host}\r\n"
                           f"Authorization: Bearer {token}\r\n"
                           "Content-Type: application/json\r\n"
                           f"Content-Length: {10**9}\r\n\r\n{{}}".encode())
        return connection.recv(4096)


def test_every_worker_parses_http_with_httptools_on_uvloop(served: ServedProcess) -> None:
    # The compiled modules are mapped into each worker process (uvicorn falls back to h11
    # and asyncio only when told "auto" and they are missing; serve names them).
    for pid in served.worker_pids():
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "httptools/parser" in maps, pid
        assert "uvloop/loop" in maps, pid


def test_hostile_bodies_are_refused_and_every_worker_survives(served: ServedProcess) -> None:
    workers = sorted(served.worker_pids())
    operator = served.tokens["operator"]
    # Anonymous: refused before a byte of the body is read, however it nests.
    assert _post_raw(served.base_url, _nested(100_000), None).status_code == 401
    # Authenticated: too large (200 KB) is 413, too deep (within the size limit) is 422.
    assert _post_raw(served.base_url, _nested(100_000), operator).status_code == 413
    deep = _post_raw(served.base_url, _nested(20_000), operator)
    assert deep.status_code == 422 and "nests deeper" in deep.text
    # A body announced as 1 GB is refused on its headers, without waiting for the bytes.
    assert _declared_gigabyte(served.base_url, operator).startswith(b"HTTP/1.1 413")
    assert sorted(served.worker_pids()) == workers, served.log_path.read_text()[-3000:]
    assert httpx.get(served.base_url + "/api/health", timeout=10).status_code == 200
    assert "Segmentation fault" not in served.log_path.read_text()


def test_a_killed_worker_is_replaced_while_requests_keep_succeeding(
        served: ServedProcess) -> None:
    before = served.worker_pids()
    assert len(before) == 2
    os.kill(before[0], signal.SIGKILL)
    answers = []
    deadline = time.monotonic() + 30
    # Every request on a new connection while the supervisor notices and replaces it.
    while time.monotonic() < deadline:
        with httpx.Client(base_url=served.base_url, timeout=10,
                          headers={"Authorization": f"Bearer {served.tokens['viewer']}"}
                          ) as client:
            answers.append(client.get("/api/me").status_code)
        now = served.worker_pids()
        if len(answers) >= 20 and len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.05)
    after = served.worker_pids()
    assert answers and set(answers) == {200}, answers
    assert len(after) == 2 and before[0] not in after and before[1] in after


def test_two_workers_record_concurrent_proposals_and_votes_exactly_once(
        served: ServedProcess) -> None:
    """Each worker holds its own projection cache; the ledger's expected-size check (under
    SQLite's BEGIN IMMEDIATE) makes them agree: no lost or doubled write."""
    references = [secrets.token_hex(6) for _ in range(16)]
    results: dict[str, int] = {}
    digests: dict[str, str] = {}

    def propose(reference: str) -> None:
        with served.client("operator") as client:
            response = client.post("/api/proposals", json={
                "vault": "vault-a", "asset": "BTC", "fee_max": "20000",
                "purpose": "concurrent", "reference": reference,
                "outputs": [{"destination": COLD, "amount": "1000"}]})
        results[reference] = response.status_code
        if response.status_code == 201:
            digests[reference] = response.json()["digest"]

    threads = [threading.Thread(target=propose, args=(r,)) for r in references]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert set(results.values()) == {201}, results
    created = [e for e in served.ledger.entries(kinds=("proposal.created",))
               if e.payload["proposal"]["reference"] in references]
    assert sorted(e.payload["digest"] for e in created) == sorted(digests.values())

    # The same custodian's vote uploaded four times at once counts once.
    digest = digests[references[0]]
    document = vote_document(digest, "cora-custodian")
    votes: list[int] = []

    def upload() -> None:
        with served.client("custodian") as client:
            votes.append(client.post(f"/api/proposals/{digest}/approvals",
                                     json=document).status_code)

    uploads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in uploads:
        thread.start()
    for thread in uploads:
        thread.join(timeout=120)
    assert votes.count(201) == 1 and len(votes) == 4, votes
    recorded = [e for e in served.ledger.entries(kinds=("proposal.approved",))
                if e.payload.get("digest") == digest]
    assert len(recorded) == 1
    assert verify_ledger(served.ledger).ok
