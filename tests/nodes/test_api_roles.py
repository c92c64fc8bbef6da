"""Role checks for every endpoint, against a real uvicorn server.

The matrix below lists each route of the OpenAPI schema with the roles it admits. Every
role outside that set must get 403, every role inside it must succeed, and a request
without a token must get 401. A route missing from the matrix fails the suite: a new
route (for example routes/proposals.py) must be added here with its roles.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from reserve.api import accounts
from tests.support.api_server import ROLES, RunningServer, running_server
from tests.support.api_workflow import (
    CUSTODIAN,
    OPERATOR,
    fresh_proposal,
    fresh_vault,
    proposal_body,
    propose,
    seed_matrix,
    vote_document,
    workflow,
)
from tests.support.workflow import FakeChain

ALL = frozenset(ROLES)
ADMIN = frozenset({"admin"})
Make = Callable[[RunningServer], tuple[str, Any]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    allowed: frozenset[str]
    success: int
    make: Make


def fixed(path: str, body: Any = None) -> Make:
    return lambda server: (path, body)


def _throwaway_user(server: RunningServer, role: str = "viewer") -> str:
    person = f"temp-{secrets.token_hex(4)}"
    accounts.create_user(server.store, server.record, person=person, name="Temp",
                         institution="Nowhere", roles=[role], vaults=[],
                         now=server.clock.wall())
    return person


def _fresh_token(server: RunningServer) -> str:
    person = _throwaway_user(server)
    _, token = accounts.issue_token(server.store, server.record, person=person, role="viewer",
                                    expires_in_seconds=3600, label="matrix",
                                    issued_by="test", now=server.clock.wall())
    return token.token_id


def _fresh_grant(server: RunningServer) -> str:
    """A pending grant another admin ("test") asked for, so root-admin may approve it."""
    person = _throwaway_user(server, "operator")
    grant = accounts.request_token(server.store, server.record, person=person,
                                   role="operator", expires_in_seconds=3600, label="matrix",
                                   requested_by="test", now=server.clock.wall())
    return grant.grant_id


def _any_token_id(server: RunningServer) -> str:
    return server.store.tokens()[0].token_id


MATRIX: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/me", ALL, 200, fixed("/api/me")),
    Endpoint("GET", "/api/ledger/entries", ALL, 200, fixed("/api/ledger/entries?limit=5")),
    Endpoint("GET", "/api/ledger/entries/{seq}", ALL, 200,
             lambda s: (f"/api/ledger/entries/{s.note_seq}", None)),  # type: ignore[attr-defined]
    Endpoint("GET", "/api/ledger/checkpoints", ALL, 200, fixed("/api/ledger/checkpoints")),
    Endpoint("GET", "/api/ledger/checkpoints/latest", ALL, 200,
             fixed("/api/ledger/checkpoints/latest")),
    Endpoint("POST", "/api/ledger/checkpoints", frozenset({"auditor", "admin"}), 201,
             fixed("/api/ledger/checkpoints")),
    Endpoint("GET", "/api/ledger/consistency", ALL, 200,
             fixed("/api/ledger/consistency?old_size=1")),
    Endpoint("GET", "/api/ledger/export",
             frozenset({"viewer", "operator", "auditor", "admin", "supervisor"}),
             200, fixed("/api/ledger/export")),
    Endpoint("GET", "/api/tokens", ADMIN, 200, fixed("/api/tokens")),
    Endpoint("POST", "/api/tokens", ADMIN, 201,
             fixed("/api/tokens", {"person": "vic-viewer", "role": "viewer",
                                   "expires_in_seconds": 3600, "label": "matrix"})),
    Endpoint("GET", "/api/tokens/grants", ADMIN, 200, fixed("/api/tokens/grants")),
    Endpoint("POST", "/api/tokens/grants/{grant_id}/approve", ADMIN, 201,
             lambda s: (f"/api/tokens/grants/{_fresh_grant(s)}/approve", None)),
    Endpoint("POST", "/api/tokens/grants/{grant_id}/reject", ADMIN, 200,
             lambda s: (f"/api/tokens/grants/{_fresh_grant(s)}/reject", None)),
    Endpoint("GET", "/api/tokens/{token_id}", ADMIN, 200,
             lambda s: (f"/api/tokens/{_any_token_id(s)}", None)),
    Endpoint("POST", "/api/tokens/{token_id}/revoke", ADMIN, 200,
             lambda s: (f"/api/tokens/{_fresh_token(s)}/revoke", None)),
    Endpoint("GET", "/api/users", ADMIN, 200, fixed("/api/users")),
    Endpoint("POST", "/api/users", ADMIN, 201,
             lambda s: ("/api/users", {"person": f"new-{secrets.token_hex(4)}",
                                       "roles": ["viewer"]})),
    Endpoint("GET", "/api/users/{person}", ADMIN, 200, fixed("/api/users/vic-viewer")),
    Endpoint("PUT", "/api/users/{person}", ADMIN, 200,
             lambda s: (f"/api/users/{_throwaway_user(s)}",
                        {"name": "Renamed", "roles": ["viewer", "auditor"]})),
    Endpoint("POST", "/api/users/{person}/disable", ADMIN, 200,
             lambda s: (f"/api/users/{_throwaway_user(s)}/disable", None)),
)

def _seeded(name: str) -> Callable[[RunningServer], str]:
    return lambda s: str(s.seeded[name])  # type: ignore[attr-defined]


def _vote(server: RunningServer) -> tuple[str, Any]:
    digest = fresh_proposal(server)
    return f"/api/proposals/{digest}/approvals", vote_document(digest, CUSTODIAN)


class FakeChains:
    """Chain connections for the matrix: every vault signs on a FakeChain (1 share)."""

    def adapter(self, vault: str, chain: str) -> FakeChain:
        return FakeChain(threshold=1)

    def share(self, vault: str, chain: str, custodian: str, data: bytes) -> tuple[str, str]:
        return custodian, data.decode()


def _transfer_at(server: RunningServer, state: str) -> str:
    """A fresh small transfer on vault-a taken to `state` (releasable .. broadcast)."""
    status = propose(server, amount=1000, purpose=f"matrix {secrets.token_hex(4)}")
    service = workflow(server)
    for who in (CUSTODIAN, "central-bank"):
        service.vote(vote_document_approval(status.digest, who))
    chain = FakeChain(threshold=1)
    if state in ("signing", "broadcast"):
        service.release(status.digest, chain, OPERATOR)
    if state == "broadcast":
        service.add_signature_share(status.digest, chain, CUSTODIAN, "share")
        service.broadcast(status.digest, chain, OPERATOR)
    assert service.status(status.digest).state == state
    return status.digest


def vote_document_approval(digest: str, custodian: str) -> Any:
    from reserve.proposals import approval

    return approval.from_document(vote_document(digest, custodian))


def _step(state: str, step: str, body: Any = None) -> Make:
    return lambda s: (f"/api/transfers/{_transfer_at(s, state)}/{step}", body)


WORKFLOW = (  # reserve/api/routes/{vaults,proposals,transfers,reconcile}.py
    Endpoint("GET", "/api/vaults", ALL, 200, fixed("/api/vaults")),
    Endpoint("GET", "/api/vaults/{vault}", ALL, 200, fixed("/api/vaults/vault-a")),
    Endpoint("GET", "/api/vaults/{vault}/policies", ALL, 200,
             fixed("/api/vaults/vault-a/policies")),
    Endpoint("GET", "/api/vaults/{vault}/policies/{version}", ALL, 200,
             fixed("/api/vaults/vault-a/policies/1")),
    # The supervisor freezes where the policy grants it (the test policy does).
    Endpoint("POST", "/api/vaults/{vault}/freeze",
             frozenset({"custodian", "auditor", "supervisor"}), 200,
             lambda s: (f"/api/vaults/{fresh_vault(s)}/freeze", {"reason": "matrix"})),
    Endpoint("POST", "/api/vaults/{vault}/unfreeze",
             frozenset({"operator", "custodian", "auditor"}), 201,
             lambda s: (f"/api/vaults/{fresh_vault(s, frozen=True)}/unfreeze",
                        {"purpose": "matrix"})),
    Endpoint("GET", "/api/proposals", ALL, 200, fixed("/api/proposals")),
    Endpoint("POST", "/api/proposals", frozenset({"operator"}), 201,
             lambda s: ("/api/proposals", proposal_body())),
    Endpoint("GET", "/api/proposals/{digest}", ALL, 200,
             lambda s: (f"/api/proposals/{_seeded('open')(s)}", None)),
    Endpoint("POST", "/api/proposals/{digest}/approvals", frozenset({"custodian"}), 201, _vote),
    Endpoint("POST", "/api/proposals/{digest}/cancel",
             frozenset({"operator", "custodian", "auditor"}), 200,
             lambda s: (f"/api/proposals/{fresh_proposal(s)}/cancel", {"reason": "matrix"})),
    Endpoint("GET", "/api/transfers", ALL, 200, fixed("/api/transfers")),
    Endpoint("GET", "/api/transfers/{digest}", ALL, 200,
             lambda s: (f"/api/transfers/{_seeded('approved')(s)}", None)),
    Endpoint("GET", "/api/transfers/{digest}/order", ALL, 200,
             lambda s: (f"/api/transfers/{_seeded('approved')(s)}/order", None)),
    Endpoint("POST", "/api/transfers/{digest}/release", frozenset({"operator"}), 200,
             _step("releasable", "release")),
    Endpoint("GET", "/api/transfers/{digest}/signing-package",
             frozenset({"custodian", "operator", "auditor"}), 200,
             _step("signing", "signing-package")),
    Endpoint("POST", "/api/transfers/{digest}/shares", frozenset({"custodian"}), 201,
             _step("signing", "shares", {"share": "signed"})),
    Endpoint("POST", "/api/transfers/{digest}/broadcast", frozenset({"operator"}), 200,
             lambda s: _broadcastable(s)),
    Endpoint("POST", "/api/transfers/{digest}/confirm", frozenset({"operator"}), 200,
             _step("broadcast", "confirm")),
    Endpoint("GET", "/api/reconcile/reports", ALL, 200, fixed("/api/reconcile/reports")),
    Endpoint("GET", "/api/reconcile/reports/{report}", ALL, 200,
             lambda s: (f"/api/reconcile/reports/{_seeded('report')(s)}", None)),
)
SUPERVISION = (  # reserve/api/routes/supervision.py; its SSE stream is outside the schema
    Endpoint("GET", "/api/supervision/alerts", ALL, 200,
             fixed("/api/supervision/alerts?after=-1&limit=5")),
    Endpoint("POST", "/api/supervision/alerts/{seq}/acknowledge", frozenset({"supervisor"}),
             201, lambda s: (f"/api/supervision/alerts/{_fresh_alert(s)}/acknowledge",
                             {"note": "matrix"})),
    Endpoint("GET", "/api/supervision/licences", ALL, 200, fixed("/api/supervision/licences")),
)


def _fresh_reading(server: RunningServer) -> tuple[str, Any]:
    """A signed reading of a fresh AI data centre (registered here, 1 kW of a large
    allocation), so every request of the matrix records a new one."""
    from datetime import timedelta

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from reserve.mining.readings import sign_reading
    from reserve.mining.sites import Allocation, Site, registry
    from tests.unit.test_mining import verifier

    key = Ed25519PrivateKey.generate()
    site = Site(site=f"dc-{secrets.token_hex(4)}", operator="Matrix", kind="ai",
                capacity_kw=1, meter=f"M-{secrets.token_hex(4)}",
                meter_key=verifier(key, "meters"), tariff_minor_per_kwh=1, currency="USD")
    events = [site.event()]
    if registry(server.ledger.entries()).allocation is None:
        events.insert(0, Allocation("matrix", 100_000_000).event())
    server.ledger.append_many([(e.KIND, "operator", e.to_payload()) for e in events],
                              now=server.clock.wall())
    start = server.clock.wall().replace(microsecond=0)
    return "/api/mining/readings", sign_reading(
        key, "meters", site=site.site, meter=site.meter, period_start=start,
        period_end=start + timedelta(hours=1), energy_kwh=1).document()


MINING = (  # reserve/api/routes/mining.py
    Endpoint("POST", "/api/mining/readings", frozenset({"operator"}), 201, _fresh_reading),
)
MATRIX = MATRIX + WORKFLOW + SUPERVISION + MINING


def _fresh_alert(server: RunningServer) -> int:
    """The seq of a new alert: a fresh vault, frozen (vault.frozen is an alert kind)."""
    fresh_vault(server, frozen=True)
    return max(e.seq for e in server.ledger.entries(max(0, server.ledger.size() - 5),
                                                    kinds=("vault.frozen",)))


def _broadcastable(server: RunningServer) -> tuple[str, Any]:
    digest = _transfer_at(server, "signing")
    workflow(server).add_signature_share(digest, FakeChain(threshold=1), CUSTODIAN, "share")
    return f"/api/transfers/{digest}/broadcast", None
PUBLIC = {("GET", "/api/health")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-roles")
    with running_server(f"sqlite:///{folder}/ledger.sqlite",
                        chains=lambda _ledger: FakeChains()) as running:
        note = running.ledger.append("ledger.note", "test", {"text": "no vault named here"},
                                     now=running.clock.wall())
        running.note_seq = note.seq  # type: ignore[attr-defined]
        running.seeded = seed_matrix(running)  # type: ignore[attr-defined]
        yield running


def test_matrix_covers_every_route_of_the_schema(server: RunningServer) -> None:
    with server.client() as client:
        schema = client.get("/openapi.json").json()
    routes = {(method.upper(), path) for path, item in schema["paths"].items()
              for method in item}
    listed = {(e.method, e.template) for e in MATRIX} | PUBLIC
    assert routes - listed == set(), "add these routes to the role matrix with their roles"
    assert listed - routes == set()


@pytest.mark.parametrize("endpoint", MATRIX, ids=lambda e: f"{e.method} {e.template}")
def test_each_role_gets_403_where_it_does_not_belong(server: RunningServer,
                                                     endpoint: Endpoint) -> None:
    for role in ROLES:
        path, body = endpoint.make(server)
        with server.client(role) as client:
            response = client.request(endpoint.method, path, json=body)
        if role in endpoint.allowed:
            assert response.status_code == endpoint.success, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert "may not" in response.json()["detail"]


@pytest.mark.parametrize("endpoint", MATRIX, ids=lambda e: f"{e.method} {e.template}")
def test_every_endpoint_needs_a_token(server: RunningServer, endpoint: Endpoint) -> None:
    path, body = endpoint.make(server)
    with server.client() as client:
        response = client.request(endpoint.method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_health_is_public(server: RunningServer) -> None:
    with server.client() as client:
        assert client.get("/api/health").json() == {"status": "ok"}


def test_every_state_change_is_recorded_with_its_actor(server: RunningServer) -> None:
    """Each successful POST/PUT writes an api.request entry naming the person; no route
    relies on the middleware's safety net."""
    for endpoint in MATRIX:
        if endpoint.method == "GET":
            continue
        role = sorted(endpoint.allowed)[0]
        person = {"admin": "root-admin", "auditor": "aldo-auditor",
                  "custodian": "cora-custodian", "operator": "olga-operator",
                  "supervisor": "sara-supervisor"}[role]
        path, body = endpoint.make(server)
        before = server.ledger.size()
        with server.client(role) as client:
            response = client.request(endpoint.method, path, json=body)
        assert response.status_code == endpoint.success, response.text
        written = list(server.ledger.entries(before))
        requests = [e for e in written if e.kind == "api.request"]
        assert len(requests) == 1, (endpoint.template, [e.kind for e in written])
        assert requests[0].actor == person
        assert requests[0].payload["path"] == path.split("?")[0]
        assert requests[0].payload["role"] == role
        assert "recorded_by" not in requests[0].payload


def test_the_supervisor_reads_everything_and_writes_only_freeze_and_acknowledgement() -> None:
    """The supervisor column of the matrix, stated once: every GET is open to it (except
    the signing package, whose fetch signs a checkpoint), and of the writes only the two
    the issue grants."""
    writes = {(e.method, e.template) for e in MATRIX
              if e.method != "GET" and "supervisor" in e.allowed}
    assert writes == {("POST", "/api/vaults/{vault}/freeze"),
                      ("POST", "/api/supervision/alerts/{seq}/acknowledge")}
    unread = {e.template for e in MATRIX if e.method == "GET" and "supervisor" not in e.allowed}
    assert unread == {"/api/tokens", "/api/tokens/grants", "/api/tokens/{token_id}",
                      "/api/users", "/api/users/{person}",
                      "/api/transfers/{digest}/signing-package"}


def test_a_supervisor_the_policy_does_not_grant_may_not_freeze(server: RunningServer) -> None:
    """The role passes the route's gate; the vault's policy decides, and refuses here."""
    from dataclasses import replace

    from tests.support.api_workflow import api_policy
    from tests.support.workflow import workflow_service

    vault = f"ungranted-{secrets.token_hex(4)}"
    policy = api_policy(vault)
    assert policy.supervision is not None
    ungranted = replace(policy, supervision=replace(policy.supervision, may_freeze=False))
    workflow_service(server.ledger, ungranted, clock=server.clock.wall,
                     actor="test-bootstrap")
    before = server.ledger.size()
    with server.client("supervisor") as client:
        response = client.post(f"/api/vaults/{vault}/freeze", json={"reason": "matrix"})
    assert response.status_code == 400, response.text
    assert "sara-supervisor may not freeze" in response.json()["detail"]
    assert server.ledger.size() == before


def test_refused_requests_change_nothing(server: RunningServer) -> None:
    before = server.ledger.size()
    users_before = len(server.store.users())
    with server.client("viewer") as client:
        assert client.post("/api/users", json={"person": "sneaky", "roles": ["admin"]}
                           ).status_code == 403
        assert client.post("/api/tokens", json={"person": "vic-viewer", "role": "admin"}
                           ).status_code == 403
    assert server.ledger.size() == before
    assert len(server.store.users()) == users_before
