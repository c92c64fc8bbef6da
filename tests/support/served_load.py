"""A bounded propose-and-vote load on a served API, and what the ledger must hold after it.

Each proposal carries a unique `reference`, so an acknowledged (2xx) request can be found
in the ledger afterwards whatever happened to the service meanwhile.
"""

from __future__ import annotations

import secrets
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field

import httpx

from reserve.ledger import Ledger
from tests.support.api_server import ServedProcess, reserve_command, serve_environment
from tests.support.api_workflow import CUSTODIAN, proposal_body, vote_document

REQUESTS_MAX = 200  # per load thread: the load is bounded even if nothing stops it


@dataclass
class Acknowledged:
    """What the service answered 2xx to: proposals by reference, and voted digests."""

    proposals: dict[str, str] = field(default_factory=dict)
    votes: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _propose_and_vote(served: ServedProcess, acknowledged: Acknowledged,
                      stop: threading.Event) -> None:
    operator = {"Authorization": f"Bearer {served.tokens['operator']}"}
    custodian = {"Authorization": f"Bearer {served.tokens['custodian']}"}
    with httpx.Client(base_url=served.base_url, timeout=10) as client:
        for _ in range(REQUESTS_MAX):
            if stop.is_set():
                return
            body = {**proposal_body(), "reference": f"load-{secrets.token_hex(8)}"}
            with acknowledged.lock:
                acknowledged.sent.add(body["reference"])
            try:
                answer = client.post("/api/proposals", json=body, headers=operator)
                if answer.status_code != 201:
                    continue
                digest = answer.json()["digest"]
                with acknowledged.lock:
                    acknowledged.proposals[body["reference"]] = digest
                vote = client.post(f"/api/proposals/{digest}/approvals",
                                   json=vote_document(digest, CUSTODIAN), headers=custodian)
                if vote.status_code == 201:
                    with acknowledged.lock:
                        acknowledged.votes.add(digest)
            except httpx.HTTPError:
                return  # the service went away: what was acknowledged so far counts


def start_load(served: ServedProcess, acknowledged: Acknowledged, stop: threading.Event,
               threads: int = 3) -> list[threading.Thread]:
    started = [threading.Thread(target=_propose_and_vote, args=(served, acknowledged, stop),
                                daemon=True) for _ in range(threads)]
    for thread in started:
        thread.start()
    return started


def exactly_once_findings(ledger: Ledger, acknowledged: Acknowledged) -> list[str]:
    """Acknowledged requests missing from the ledger or recorded twice (empty: all good)."""
    created = Counter(e.payload["proposal"]["reference"]
                      for e in ledger.entries(kinds=("proposal.created",)))
    approved = Counter(e.payload["digest"] for e in ledger.entries(kinds=("proposal.approved",))
                       if e.payload.get("custodian") == CUSTODIAN)
    findings = [f"proposal {reference}: recorded {created[reference]} times"
                for reference in acknowledged.proposals if created[reference] != 1]
    findings += [f"proposal {reference}: recorded {created[reference]} times, never acked"
                 for reference in acknowledged.sent if created[reference] > 1]
    findings += [f"vote on {digest[:16]}: recorded {approved[digest]} times"
                 for digest in acknowledged.votes if approved[digest] != 1]
    findings += [f"vote on {digest[:16]}: recorded {count} times"
                 for digest, count in approved.items() if count > 1]
    return findings


def verify_with_cli(config: str, url: str) -> subprocess.CompletedProcess[str]:
    """`reserve ledger verify` as an operator runs it on the service's database."""
    return subprocess.run([*reserve_command(), "ledger", "verify", "--config", config],
                          env=serve_environment(url), capture_output=True, text=True,
                          timeout=120, check=False)
