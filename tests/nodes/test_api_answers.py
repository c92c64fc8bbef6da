"""The read routes' answer cache over HTTP (reserve/api/answers.py), on a real server.

A kept answer is never one the committed ledger no longer gives: a write (through the
API, or appended by another process on its own connection) is seen by the very next read,
what a custodian may see is never served from an answer kept for someone who sees more,
and a proposal's decision follows the clock while its answer is kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from reserve.api.answers import answer_cache
from reserve.ledger import Ledger
from tests.support.api_server import RunningServer, running_server
from tests.support.api_workflow import CUSTODIAN, propose, register, vote_document

SECOND = "central-bank"


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """On SQLite (kept answers served on the event loop) and on PostgreSQL (the token and
    the head read in one statement on the account store's own connections)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ledger.sqlite"
    else:
        url = request.getfixturevalue("postgres_url")
    with running_server(url) as running:
        register(running, "vault-a")
        register(running, "vault-b", custodian="carl-custodian")
        yield running


def _get(server: RunningServer, who: str, path: str) -> dict:  # type: ignore[type-arg]
    with server.client(who) as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


PAGE = "/api/ledger/entries?start=0&limit=500"


def test_a_write_is_seen_by_the_next_read(server: RunningServer) -> None:
    first = _get(server, "operator", PAGE)
    assert _get(server, "operator", PAGE) == first  # now answered from the cache
    service = server.app.state.service
    assert answer_cache(service).hits >= 1
    if server.ledger.dialect != "sqlite":  # one statement: the token and the head
        assert service.accounts.shares_database(server.ledger.url)
    status = propose(server)  # through the service's own ledger connection
    detail = f"/api/proposals/{status.digest}"
    page = _get(server, "operator", PAGE)
    assert page["size"] == server.ledger.size() > first["size"]
    assert page["entries"][-1]["kind"] == "proposal.created"
    assert _get(server, "viewer", detail)["decision"]["approvers"] == []

    # A vote through the API: the kept detail is not served again.
    with server.client("custodian") as client:
        voted = client.post(f"{detail}/approvals", json=vote_document(status.digest, CUSTODIAN))
    assert voted.status_code == 201, voted.text
    assert _get(server, "viewer", detail)["decision"]["approvers"] == [CUSTODIAN]

    # Another process appends on its own connection, without the read models attached:
    # the next read sees its entries and the models caught up with them.
    with Ledger.open(server.ledger.url) as other:
        from reserve.transfers.service import WorkflowService
        from tests.support.api_workflow import api_policy

        service = WorkflowService(other, clock=server.clock.wall)
        service.register_policy(api_policy("vault-c"), "another-process")
        size = other.size()
    assert _get(server, "operator", PAGE)["size"] == size
    vaults = {v["vault"]: v for v in _get(server, "operator", "/api/vaults")["vaults"]}
    assert "vault-c" in vaults and vaults["vault-c"]["policy"]["version"] == 1


def test_what_a_custodian_sees_is_never_an_answer_kept_for_others(
        server: RunningServer) -> None:
    other = propose(server, vault="vault-b")
    for _ in range(2):  # kept for the operator, who sees every vault
        everything = _get(server, "operator", PAGE)
        listed = _get(server, "operator", "/api/vaults")
        _get(server, "operator", f"/api/proposals/{other.digest}")
    assert {v["vault"] for v in listed["vaults"]} >= {"vault-a", "vault-b"}
    assert any("vault-b" in str(e["payload"]) for e in everything["entries"])

    mine = _get(server, "custodian", PAGE)
    assert mine["size"] == everything["size"]
    assert not any("vault-b" in str(e["payload"]) for e in mine["entries"])
    assert [v["vault"] for v in _get(server, "custodian", "/api/vaults")["vaults"]] == ["vault-a"]
    with server.client("custodian") as client:
        hidden = client.get(f"/api/proposals/{other.digest}")
    assert hidden.status_code == 404
    assert hidden.json() == {"detail": f"unknown proposal {other.digest!r}"}
    # and the custodian of vault-b sees it (their own answer, kept apart)
    assert _get(server, "custodian_b", f"/api/proposals/{other.digest}")["vault"] == "vault-b"
    assert [v["vault"] for v in _get(server, "custodian_b", "/api/vaults")["vaults"]] == ["vault-b"]


def test_a_kept_proposal_answer_decides_at_each_requests_time(server: RunningServer) -> None:
    status = propose(server)
    path = f"/api/proposals/{status.digest}"
    before = _get(server, "viewer", path)
    assert before["state"] == "proposed" and before["decision"]["refused"] == []
    server.clock.advance(8 * 86400)  # past its expiry (7 days): nothing written meanwhile
    after = _get(server, "viewer", path)
    assert after["decision"] != before["decision"]
    from reserve.transfers.service import WorkflowService

    fresh = WorkflowService(server.ledger, clock=server.clock.wall)
    assert after["decision"]["explain"] == fresh.decision(status.digest).explain()


def test_bad_input_and_bad_tokens_are_still_refused(server: RunningServer) -> None:
    with server.client("operator") as client:
        assert client.get("/api/ledger/entries?start=-1").status_code == 422
        assert client.get("/api/ledger/entries?limit=0").status_code == 422
        assert client.get("/api/ledger/entries?kind=nope").status_code == 422
        assert client.get("/api/proposals/XYZ").status_code == 422
        assert client.get("/api/proposals/" + "0" * 64).status_code == 404
    with server.client() as client:
        for path in (PAGE, "/api/vaults", "/api/proposals/" + "0" * 64):
            refused = client.get(path)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
            wrong = client.get(path, headers={"Authorization": "Bearer srl_nope"})
            assert wrong.status_code == 401


def test_authentication_survives_a_dropped_connection(server: RunningServer) -> None:
    """The threads' path (`authenticate` on kept autocommit connections: every request on
    SQLite, the sync routes' fallback on PostgreSQL) replaces a connection the server
    dropped; the loop's own connections are tested below."""
    from reserve.api import accounts

    store = server.store
    token = server.tokens["viewer"]
    accounts.authenticate(store, token, server.clock.wall())
    assert store._readers  # the connection authentication used is kept for the next
    for connection in store._readers:
        connection.close()  # as a restarted server would drop them
    assert accounts.authenticate(store, token, server.clock.wall()).person == "vic-viewer"
    assert _get(server, "viewer", "/api/me")["person"] == "vic-viewer"
    # and a revoked token is refused from the next request on, kept connections or not

    token_id = server.tokens["viewer"].split("_")[1]
    accounts.revoke_token(store, server.record, token_id=token_id, by="root-admin",
                          now=server.clock.wall())
    with server.client("viewer") as client:
        assert client.get("/api/vaults").status_code == 401


def test_postgresql_reads_authenticate_on_the_event_loop(server: RunningServer) -> None:
    """On PostgreSQL a read route's token and head come from the event loop's own
    connections (no thread); a connection the server dropped is replaced and the query
    retried, and a revocation or a write by another connection is seen by the next read."""
    if server.ledger.dialect == "sqlite":
        pytest.skip("SQLite serves kept answers on the loop from local pages")
    import psycopg

    from reserve.api import accounts

    store = server.store
    first = _get(server, "viewer", PAGE)
    loops = list(store._loop_readers.values())
    idle = [reader for readers in loops for reader in readers._idle]
    assert idle, "the read was authenticated on the event loop's connections"
    with psycopg.connect(server.ledger.url.replace("+psycopg", ""), autocommit=True) as admin:
        # New connections default to another bytea format: the loop's set their own.
        admin.execute(f'ALTER DATABASE "{admin.info.dbname}" SET bytea_output = \'escape\'')
        for reader in idle:  # as a restarted server or an administrator would
            admin.execute("SELECT pg_terminate_backend(%s)", (reader.pgconn.backend_pid,))
    assert _get(server, "viewer", PAGE) == first  # retried on a new connection
    assert idle[-1] not in [reader for readers in loops for reader in readers._idle]
    with Ledger.open(server.ledger.url) as other:  # a foreign writer, read models not attached
        from reserve.transfers.service import WorkflowService
        from tests.support.api_workflow import api_policy

        WorkflowService(other, clock=server.clock.wall).register_policy(
            api_policy("vault-d"), "another-process")
        size = other.size()
    assert size > first["size"]
    assert _get(server, "viewer", PAGE)["size"] == size
    token_id = server.tokens["viewer"].split("_")[1]
    accounts.revoke_token(store, server.record, token_id=token_id, by="root-admin",
                          now=server.clock.wall())
    with server.client("viewer") as client:
        for path in ("/api/vaults", PAGE):
            assert client.get(path).status_code == 401


def test_writes_authenticate_without_a_thread_and_a_revoked_token_writes_nothing(
        server: RunningServer) -> None:
    """A state-changing request's token is checked on the event loop (SQLite: the store's
    kept connections, read in place; PostgreSQL: the loop's own connections, the threads'
    ones left unused), read afresh each time: once the token is revoked, its next vote is
    refused with 401 and nothing is appended."""
    from reserve.api import accounts

    store = server.store
    status = propose(server)
    if server.ledger.dialect != "sqlite":
        store._readers.clear()
    with server.client("custodian") as client:
        voted = client.post(f"/api/proposals/{status.digest}/approvals",
                            json=vote_document(status.digest, CUSTODIAN))
    assert voted.status_code == 201, voted.text
    if server.ledger.dialect != "sqlite":
        assert store._readers == []  # not the threads' path
        assert any(readers._idle for readers in store._loop_readers.values())
    other = propose(server, purpose="second")
    token_id = server.tokens["custodian"].split("_")[1]
    accounts.revoke_token(store, server.record, token_id=token_id, by="root-admin",
                          now=server.clock.wall())
    size = server.ledger.size()
    with server.client("custodian") as client:
        refused = client.post(f"/api/proposals/{other.digest}/approvals",
                              json=vote_document(other.digest, CUSTODIAN))
    assert refused.status_code == 401, refused.text
    assert server.ledger.size() == size
