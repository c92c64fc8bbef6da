"""Separation of duties, against a real server: one admin alone cannot act as someone else.

A privileged token (any role but viewer) for another person is not issued on one admin's
word: the request is a pending grant (202, `auth.token_requested`) until a different admin
approves it (the token, and an `auth.token_issued` entry naming both), or either rejects
it, or it expires. An admin's own token, and a viewer token, are still one step. An admin
may not change their own user's roles. Each refusal writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from reserve import events
from reserve.api import accounts
from reserve.errors import AccountConflict
from tests.support.api_server import RunningServer, running_server

SECOND = "bea-admin"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-grants")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        # A second admin, bootstrapped the way `reserve token issue` does it.
        accounts.create_user(running.store, running.record, person=SECOND, name="Bea",
                             institution="Treasury", roles=["admin"], vaults=[],
                             now=running.clock.wall())
        issued, _ = accounts.issue_token(running.store, running.record, person=SECOND,
                                         role="admin", expires_in_seconds=30 * 86400,
                                         label="second admin", issued_by="test",
                                         now=running.clock.wall())
        running.tokens["second_admin"] = issued.token
        yield running


def _request(server: RunningServer, person: str = "aldo-auditor",
             role: str = "auditor") -> str:
    with server.client("admin") as client:
        response = client.post("/api/tokens", json={"person": person, "role": role,
                                                    "label": "asked"})
    assert response.status_code == 202, response.text
    assert "token" not in response.json()
    return str(response.json()["grant_id"])


def _unchanged(server: RunningServer, who: str, method: str, path: str, code: int,
               reason: str, body: object = None) -> None:
    """`who` asking `method path` gets `code` with `reason`, and nothing is written."""
    size, tokens = server.ledger.size(), len(server.store.tokens())
    with server.client(who) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == code, response.text
    assert reason in response.json()["detail"]
    assert server.ledger.size() == size
    assert len(server.store.tokens()) == tokens


def test_a_second_admin_must_approve_a_token_for_someone_else(server: RunningServer) -> None:
    tokens_before = len(server.store.tokens("aldo-auditor"))
    before = server.ledger.size()
    grant_id = _request(server)
    assert len(server.store.tokens("aldo-auditor")) == tokens_before  # nothing issued
    requested = [e for e in server.ledger.entries(before) if e.kind == "auth.token_requested"]
    assert len(requested) == 1 and requested[0].actor == "root-admin"
    assert requested[0].payload["requested_by"] == "root-admin"
    assert requested[0].payload["grant_id"] == grant_id
    with server.client("admin") as client:
        listed = client.get("/api/tokens/grants").json()["grants"]
    assert [(g["grant_id"], g["status"], g["person"]) for g in listed
            if g["grant_id"] == grant_id] == [(grant_id, "pending", "aldo-auditor")]

    # The admin who asked may not approve it.
    _unchanged(server, "admin", "POST", f"/api/tokens/grants/{grant_id}/approve", 409,
               "another admin must approve it")

    before = server.ledger.size()
    with server.client("second_admin") as client:
        approved = client.post(f"/api/tokens/grants/{grant_id}/approve")
    assert approved.status_code == 201, approved.text
    token = approved.json()["token"]
    with server.client() as client:
        me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["person"], me["role"]) == ("aldo-auditor", "auditor")
    issued = [e for e in server.ledger.entries(before) if e.kind == "auth.token_issued"]
    assert len(issued) == 1 and issued[0].actor == SECOND
    assert issued[0].payload["requested_by"] == "root-admin"
    assert issued[0].payload["approved_by"] == SECOND
    assert issued[0].payload["grant_id"] == grant_id
    assert all(token not in json.dumps(e.payload) for e in server.ledger.entries(before))

    # Approved once: never again, and no longer listed.
    _unchanged(server, "second_admin", "POST", f"/api/tokens/grants/{grant_id}/approve", 409,
               "already approved")
    with server.client("admin") as client:
        assert grant_id not in client.get("/api/tokens/grants").text


def test_a_rejected_grant_cannot_be_approved(server: RunningServer) -> None:
    grant_id = _request(server, "olga-operator", "operator")
    before = server.ledger.size()
    with server.client("admin") as client:  # either admin may reject, the asker included
        rejected = client.post(f"/api/tokens/grants/{grant_id}/reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    kinds = [e.kind for e in server.ledger.entries(before)]
    assert kinds == ["api.request", "auth.token_request_rejected"]
    _unchanged(server, "second_admin", "POST", f"/api/tokens/grants/{grant_id}/approve", 409,
               "already rejected")
    _unchanged(server, "second_admin", "POST", f"/api/tokens/grants/{grant_id}/reject", 409,
               "already rejected")


def test_an_expired_grant_cannot_be_approved(server: RunningServer) -> None:
    grant_id = _request(server, "cora-custodian", "custodian")
    server.clock.advance(accounts.GRANT_SECONDS + 1)
    with server.client("admin") as client:
        listed = client.get("/api/tokens/grants").json()["grants"]
    assert [g["status"] for g in listed if g["grant_id"] == grant_id] == ["expired"]
    _unchanged(server, "second_admin", "POST", f"/api/tokens/grants/{grant_id}/approve", 409,
               "expired")


def test_approval_checks_the_person_again(server: RunningServer) -> None:
    accounts.create_user(server.store, server.record, person="hal-two-hats", name="Hal",
                         institution="Audit", roles=["viewer", "auditor"], vaults=[],
                         now=server.clock.wall())
    grant_id = _request(server, "hal-two-hats", "auditor")
    with server.client("second_admin") as client:
        assert client.put("/api/users/hal-two-hats", json={"roles": ["viewer"]}
                          ).status_code == 200
    _unchanged(server, "second_admin", "POST", f"/api/tokens/grants/{grant_id}/approve", 409,
               "does not hold the role")


def test_bad_requests_are_refused_and_write_nothing(server: RunningServer) -> None:
    grants = len(server.store.pending_grants())
    _unchanged(server, "admin", "POST", "/api/tokens", 404, "no user",
               {"person": "nobody", "role": "auditor"})
    _unchanged(server, "admin", "POST", "/api/tokens", 409, "does not hold the role",
               {"person": "vic-viewer", "role": "auditor"})
    _unchanged(server, "second_admin", "POST", "/api/tokens/grants/0123456789abcdef/approve",
               404, "no grant")
    _unchanged(server, "second_admin", "POST", "/api/tokens/grants/0123456789abcdef/reject",
               404, "no grant")
    with server.client("second_admin") as client:
        assert client.post("/api/tokens/grants/not-hex/approve").status_code == 422
    assert len(server.store.pending_grants()) == grants


def test_an_admins_own_token_and_a_viewer_token_are_one_step(server: RunningServer) -> None:
    before = server.ledger.size()
    with server.client("admin") as client:
        own = client.post("/api/tokens", json={"person": "root-admin", "role": "admin"})
        viewer = client.post("/api/tokens", json={"person": "vic-viewer", "role": "viewer"})
    assert own.status_code == 201 and own.json()["token"].startswith("srl_")
    assert viewer.status_code == 201 and viewer.json()["person"] == "vic-viewer"
    issued = [e for e in server.ledger.entries(before) if e.kind == "auth.token_issued"]
    assert len(issued) == 2 and all("approved_by" not in e.payload for e in issued)


def test_an_admin_cannot_change_their_own_roles(server: RunningServer) -> None:
    _unchanged(server, "admin", "PUT", "/api/users/root-admin", 409,
               "cannot change their own user", {"roles": ["admin", "auditor"]})
    assert server.store.require_user("root-admin").roles == ("admin",)
    with server.client("second_admin") as client:  # another admin may
        response = client.put("/api/users/root-admin", json={"name": "Root",
                                                             "roles": ["admin"]})
    assert response.status_code == 200


def test_a_grant_closes_once_even_when_two_admins_race(server: RunningServer) -> None:
    """The store's conditional UPDATE: the second close of one grant is a conflict."""
    grant = accounts.request_token(server.store, server.record, person="olga-operator",
                                   role="operator", expires_in_seconds=3600, label="race",
                                   requested_by="test", now=server.clock.wall())
    server.store.close_grant(grant.grant_id, "rejected", SECOND, server.clock.wall())
    with pytest.raises(AccountConflict, match="no longer pending"):
        server.store.close_grant(grant.grant_id, "approved", "root-admin", server.clock.wall())
    assert server.store.grant(grant.grant_id).state == "rejected"  # type: ignore[union-attr]


def test_the_new_entries_decode_to_typed_events_and_back(server: RunningServer) -> None:
    with server.client("second_admin") as client:
        rejected = client.post(f"/api/tokens/grants/{_request(server)}/reject")
        approved = client.post(f"/api/tokens/grants/{_request(server)}/approve")
    assert (rejected.status_code, approved.status_code) == (200, 201)
    seen = set()
    for entry in server.ledger.entries(kinds=("auth.token_requested",
                                              "auth.token_request_rejected",
                                              "auth.token_issued")):
        assert events.decode(entry.kind, entry.payload).to_payload() == entry.payload
        seen.add(entry.kind)
    assert seen == {"auth.token_requested", "auth.token_request_rejected", "auth.token_issued"}
