"""Two `reserve serve` processes on one PostgreSQL database, with concurrent duplicate votes.

Both run from the same folder (one config, one checkpoint key), each with its own workflow
projection cache, as two hosts behind a load balancer would. Two custodians each upload
their vote on every proposal twice through each service, all at once. The ledger's
expected-size check makes the two agree: exactly one vote per custodian and exactly one
transition per proposal, whoever wins the race.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reserve.api import accounts
from reserve.cli.db import initialise
from reserve.ledger.verify import verify_ledger
from reserve.transfers.service import WorkflowService
from tests.support import postgres
from tests.support.api_server import BOOTSTRAP_ACTOR, ServedProcess, served_process
from tests.support.api_workflow import CUSTODIAN, api_policy, proposal_body, vote_document

pytestmark = pytest.mark.postgres
SECOND = "central-bank"  # a national-btc custodian from another institution than cora's
PROPOSALS = 4
UPLOADS_EACH = 2  # per custodian, per service, per proposal


def _second_custodian(served: ServedProcess) -> str:
    now = datetime.now(UTC)
    accounts.create_user(served.store, served.record, person=SECOND, name="Central",
                         institution="Central Bank", roles=["custodian"], vaults=["vault-a"],
                         now=now)
    issued, _ = accounts.issue_token(served.store, served.record, person=SECOND,
                                     role="custodian", expires_in_seconds=86400,
                                     label="second custodian", issued_by=BOOTSTRAP_ACTOR,
                                     now=now)
    return issued.token


def _vote_everywhere(services: tuple[ServedProcess, ...], digest: str
                     ) -> dict[str, list[int]]:
    """Each custodian's vote uploaded UPLOADS_EACH times through each service, at once."""
    answers: dict[str, list[int]] = {CUSTODIAN: [], SECOND: []}

    def upload(served: ServedProcess, who: str, person: str) -> None:
        with served.client(who) as client:
            status = client.post(f"/api/proposals/{digest}/approvals",
                                 json=vote_document(digest, person)).status_code
        answers[person].append(status)

    threads = [threading.Thread(target=upload, args=(served, who, person))
               for served in services for who, person in (("custodian", CUSTODIAN),
                                                          ("custodian_2", SECOND))
               for _ in range(UPLOADS_EACH)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_two_services_record_one_transition_per_proposal(
        tmp_path: Path, postgres_server: str, postgres_url: str) -> None:
    with postgres.split_roles(postgres_server, postgres_url) as (owner_url, service_url):
        initialise(owner_url, service_url)
        with served_process(tmp_path, workers=1, database_url=service_url,
                            log_name="serve-a.log") as first:
            WorkflowService(first.ledger).register_policy(api_policy("vault-a"),
                                                          BOOTSTRAP_ACTOR)
            first.tokens["custodian_2"] = _second_custodian(first)
            with served_process(tmp_path, workers=1, database_url=service_url,
                                tokens=first.tokens, log_name="serve-b.log") as second:
                services = (first, second)
                digests = []
                for number in range(PROPOSALS):
                    with services[number % 2].client("operator") as client:
                        created = client.post("/api/proposals", json=proposal_body())
                    assert created.status_code == 201, created.text
                    digests.append(created.json()["digest"])
                with second.client("custodian") as client:  # only as oneself
                    forged = client.post(f"/api/proposals/{digests[0]}/approvals",
                                         json=vote_document(digests[0], SECOND))
                assert forged.status_code == 403
                for digest in digests:
                    answers = _vote_everywhere(services, digest)
                    for person, statuses in answers.items():
                        assert statuses.count(201) == 1, (person, statuses)
                        assert all(s < 500 for s in statuses), (person, statuses)
                for digest in digests:  # both services show the same state: past the quorum
                    shown = []
                    for served in services:
                        with served.client("viewer") as client:
                            shown.append(client.get(f"/api/proposals/{digest}").json()["state"])
                    assert shown[0] == shown[1] and shown[0] in {"approved", "releasable"}
            ledger = first.ledger
            votes = Counter((e.payload["digest"], e.payload["custodian"])
                            for e in ledger.entries(kinds=("proposal.approved",)))
            assert votes == {(d, p): 1 for d in digests for p in (CUSTODIAN, SECOND)}
            moves = Counter((e.payload["digest"], e.payload["to"])
                            for e in ledger.entries(kinds=("proposal.state",))
                            if e.payload["digest"] in digests)
            # Each proposal moved to `approved` (and on, when its tier has no delay) once.
            assert set(moves.values()) == {1}, moves
            assert {(d, "approved") for d in digests} <= set(moves)
            assert verify_ledger(ledger).ok
