"""Authentication against a real server: missing, bad, expired, revoked and withdrawn
tokens get 401; repeated failures from one address get 429; the dashboard cookie never
authorises a state change; tokens never reach the ledger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reserve.api import accounts
from reserve.api.deps import ApiOptions
from tests.support.api_server import RunningServer, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-auth")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        yield running


def _status(server: RunningServer, token: str | None, path: str = "/api/me") -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    with server.client() as client:
        response = client.get(path, headers=headers)
    detail = response.json().get("detail", "") if response.status_code != 200 else ""
    return response.status_code, str(detail)


def _issue(server: RunningServer, person: str, role: str, seconds: int = 3600) -> tuple[str, str]:
    issued, record = accounts.issue_token(server.store, server.record, person=person, role=role,
                                          expires_in_seconds=seconds, label="t",
                                          issued_by="test", now=server.clock.wall())
    return issued.token, record.token_id


def test_a_valid_token_names_its_person_and_role(server: RunningServer) -> None:
    with server.client("custodian") as client:
        me = client.get("/api/me").json()
    assert me["person"] == "cora-custodian"
    assert me["role"] == "custodian"
    assert me["vaults"] == ["vault-a"]


@pytest.mark.parametrize("token, reason", [
    (None, "authentication required"),
    ("srl_short", "malformed token"),
    ("not-a-token", "malformed token"),
    ("srl_0123456789abcdef_" + "A" * 43, "unknown token"),
    ("srl_" + "x" * 500, "malformed token"),
])
def test_missing_or_bad_tokens_get_401(server: RunningServer, token: str | None,
                                       reason: str) -> None:
    code, detail = _status(server, token)
    assert code == 401
    assert detail.startswith(reason)


def test_a_forged_secret_for_a_real_token_id_gets_401(server: RunningServer) -> None:
    real = server.tokens["viewer"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    assert _status(server, forged) == (401, "unknown token")


def test_basic_auth_scheme_is_refused(server: RunningServer) -> None:
    with server.client() as client:
        response = client.get("/api/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401


def test_an_expired_token_gets_401(server: RunningServer) -> None:
    token, _ = _issue(server, "vic-viewer", "viewer", seconds=120)
    assert _status(server, token)[0] == 200
    server.clock.advance(121)
    assert _status(server, token) == (401, "token expired")


def test_a_revoked_token_gets_401_at_once(server: RunningServer) -> None:
    token, token_id = _issue(server, "olga-operator", "operator")
    assert _status(server, token)[0] == 200
    with server.client("admin") as client:
        response = client.post(f"/api/tokens/{token_id}/revoke")
        assert response.status_code == 200
        assert response.json()["status"] == "revoked"
        again = client.post(f"/api/tokens/{token_id}/revoke")
        assert again.status_code == 409
    assert _status(server, token) == (401, "token revoked")


def test_disabling_a_user_revokes_their_tokens(server: RunningServer) -> None:
    accounts.create_user(server.store, server.record, person="dora-leaving", name="Dora",
                         institution="Treasury", roles=["viewer"], vaults=[],
                         now=server.clock.wall())
    token, token_id = _issue(server, "dora-leaving", "viewer")
    with server.client("admin") as client:
        response = client.post("/api/users/dora-leaving/disable")
        assert response.json()["revoked_token_ids"] == [token_id]
        assert client.post("/api/users/root-admin/disable").status_code == 409
        issue = client.post("/api/tokens", json={"person": "dora-leaving", "role": "viewer"})
        assert issue.status_code == 409
    assert _status(server, token)[0] == 401


def test_withdrawing_a_role_invalidates_tokens_of_that_role(server: RunningServer) -> None:
    accounts.create_user(server.store, server.record, person="ann-two-hats", name="Ann",
                         institution="Audit", roles=["viewer", "auditor"], vaults=[],
                         now=server.clock.wall())
    auditor_token, _ = _issue(server, "ann-two-hats", "auditor")
    viewer_token, _ = _issue(server, "ann-two-hats", "viewer")
    with server.client("admin") as client:
        response = client.put("/api/users/ann-two-hats", json={"roles": ["viewer"]})
        assert response.status_code == 200
    assert _status(server, auditor_token)[0] == 401
    assert _status(server, viewer_token)[0] == 200


def test_a_token_only_for_roles_the_user_holds(server: RunningServer) -> None:
    with server.client("admin") as client:
        response = client.post("/api/tokens", json={"person": "vic-viewer", "role": "admin"})
        assert response.status_code == 409
        assert "does not hold the role" in response.json()["detail"]
        assert client.post("/api/tokens", json={"person": "nobody", "role": "viewer"}
                           ).status_code == 404
        assert client.post("/api/tokens", json={"person": "vic-viewer", "role": "viewer",
                                                "expires_in_seconds": 10}).status_code == 422


def test_issued_token_works_and_is_stored_only_as_a_hash(server: RunningServer) -> None:
    with server.client("admin") as client:
        response = client.post("/api/tokens", json={"person": "vic-viewer", "role": "viewer",
                                                    "label": "kiosk"})
        assert response.status_code == 201
        issued = response.json()
        listing = client.get("/api/tokens", params={"person": "vic-viewer"}).text
    token = issued["token"]
    assert _status(server, token)[0] == 200
    assert token not in listing
    stored = server.store.token(issued["token_id"])
    assert stored is not None and stored.token_hash != token and len(stored.token_hash) == 64
    assert stored.token_hash not in listing  # only a prefix is ever shown
    with server.client("auditor") as client:
        export = client.get("/api/ledger/export").text
    assert token not in export and stored.token_hash not in export
    assert issued["token_id"] in export and stored.token_hash[:12] in export


def test_cookie_authorises_reads_but_never_state_changes(server: RunningServer) -> None:
    cookies = {"srl_token": server.tokens["admin"]}
    with server.client(cookies=cookies) as client:
        assert client.get("/api/me").status_code == 200
        response = client.post("/api/users", json={"person": "csrf-victim", "roles": ["admin"]})
    assert response.status_code == 401
    assert server.store.user("csrf-victim") is None


def test_validation_errors_are_clear_4xx(server: RunningServer) -> None:
    with server.client("admin") as client:
        bad_person = client.post("/api/users", json={"person": "Not Valid!", "roles": ["viewer"]})
        assert bad_person.status_code == 422
        no_vault = client.post("/api/users", json={"person": "cust-novault",
                                                   "roles": ["custodian"]})
        assert no_vault.status_code == 422  # the schema says a custodian needs a vault
        assert "at least one vault" in no_vault.json()["detail"][0]["msg"]
        extra = client.post("/api/users", json={"person": "x1", "roles": ["viewer"], "is": 1})
        assert extra.status_code == 422
        assert client.get("/api/tokens/not-hex").status_code == 422
        assert client.get("/api/tokens/0123456789abcdef").status_code == 404
        assert client.get("/api/ledger/entries/99999").status_code == 404
        # The schema lists the kinds; sizes the ledger has not reached name no proof.
        assert client.get("/api/ledger/entries?kind=no.such").status_code == 422
        assert client.get("/api/ledger/consistency?old_size=99999").status_code == 404
        assert client.get("/api/ledger/entries/0?tree_size=99999").status_code == 404


@pytest.fixture()
def strict_server(tmp_path: object) -> Iterator[RunningServer]:
    options = ApiOptions(auth_failures_max=5, auth_failure_window_seconds=60)
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite", options=options) as running:
        yield running


def test_repeated_failures_from_one_address_are_rate_limited(strict_server: RunningServer
                                                             ) -> None:
    server = strict_server
    bad = "srl_0123456789abcdef_" + "B" * 43
    assert [_status(server, bad)[0] for _ in range(5)] == [401] * 5
    with server.client() as client:
        limited = client.get("/api/me", headers={"Authorization": f"Bearer {bad}"})
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # While blocked, even a valid token is refused: guessing cannot continue.
        valid = client.get("/api/me", headers={"Authorization":
                                               f"Bearer {server.tokens['viewer']}"})
        assert valid.status_code == 429
        login = client.post("/login", data={"token": server.tokens["viewer"]},
                            headers={"Origin": server.base_url})
        assert login.status_code == 429
    assert _status(server, None)[0] == 401  # a missing token is not a guess
    server.clock.advance(61)
    assert _status(server, server.tokens["viewer"])[0] == 200


def test_an_unrecorded_state_change_is_caught_by_the_safety_net(tmp_path: object) -> None:
    """A future route that forgets its Recorder still leaves an api.request entry, marked
    as written by the middleware (which the role matrix test forbids for real routes)."""
    from fastapi import Depends

    from reserve.api.auth import Principal, Role
    from reserve.api.deps import require

    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite") as server:
        def forgetful(principal: Principal = Depends(require(Role.OPERATOR))) -> dict[str, str]:
            return {"changed": principal.person}

        server.app.add_api_route("/api/forgetful", forgetful, methods=["POST"])
        before = server.ledger.size()
        with server.client("operator") as client:
            assert client.post("/api/forgetful").status_code == 200
        with server.client("viewer") as client:
            assert client.post("/api/forgetful").status_code == 403
        written = list(server.ledger.entries(before))
    assert [(e.kind, e.actor, e.payload["recorded_by"]) for e in written] == [
        ("api.request", "olga-operator", "middleware")]
