"""The service on PostgreSQL: users and tokens in their own tables beside the ledger's,
with the same issue -> use -> revoke story as on SQLite, over a real server."""

from __future__ import annotations

import psycopg
import pytest

from reserve.cli.db import initialise
from reserve.ledger.verify import verify_ledger
from tests.support import postgres
from tests.support.api_server import running_server

pytestmark = pytest.mark.postgres


def test_tokens_on_postgresql(postgres_url: str) -> None:
    with running_server(postgres_url) as server:
        with server.client("admin") as admin:
            issued = admin.post("/api/tokens", json={"person": "vic-viewer", "role": "viewer"})
            assert issued.status_code == 201
            token, token_id = issued.json()["token"], issued.json()["token_id"]
            headers = {"Authorization": f"Bearer {token}"}
            assert admin.get("/api/me", headers=headers).json()["person"] == "vic-viewer"
            assert admin.post(f"/api/tokens/{token_id}/revoke").status_code == 200
            assert admin.get("/api/me", headers=headers).status_code == 401
            page = admin.get("/api/ledger/entries", params={"kind": "auth.token_revoked"})
            assert [e["payload"]["token_id"] for e in page.json()["entries"]] == [token_id]
        with server.client("auditor") as auditor:
            assert auditor.post("/api/ledger/checkpoints").status_code == 201
            latest = auditor.get("/api/ledger/checkpoints/latest").json()
            assert latest["tree_size"] == latest["ledger_size"] - 1  # its api.request follows
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT token_hash, revoked_at FROM api_tokens "
                                  "WHERE token_id = %s", (token_id,)).fetchall()
        # The ledger's tables stay append-only; the token table is where revocation lives.
        with pytest.raises(psycopg.errors.RaiseException):
            connection.execute("UPDATE ledger_entries SET seq = seq")
    assert rows[0][0] != token and len(rows[0][0]) == 64 and rows[0][1] is not None


def test_service_runs_on_its_own_role(postgres_server: str, postgres_url: str) -> None:
    # The split of docs/operations.md: `reserve db init` as the owner, then the service on
    # its own role. Users and tokens (the mutable tables) work; the ledger's tables refuse
    # it by privilege, before any trigger runs.
    with postgres.split_roles(postgres_server, postgres_url) as (owner_url, service_url):
        initialise(owner_url, service_url)
        with running_server(service_url) as server:
            with server.client("admin") as admin:
                issued = admin.post("/api/tokens", json={"person": "vic-viewer",
                                                         "role": "viewer"})
                assert issued.status_code == 201
                token_id = issued.json()["token_id"]
                assert admin.post(f"/api/tokens/{token_id}/revoke").status_code == 200
                headers = {"Authorization": f"Bearer {issued.json()['token']}"}
                assert admin.get("/api/me", headers=headers).status_code == 401
            with server.client("auditor") as auditor:
                assert auditor.post("/api/ledger/checkpoints").status_code == 201
            assert verify_ledger(server.ledger, server.ledger.signer.verifier).ok  # type: ignore[union-attr]
        with psycopg.connect(service_url) as connection:
            assert connection.execute("SELECT revoked_at IS NOT NULL FROM api_tokens "
                                      "WHERE token_id = %s", (token_id,)).fetchone() == (True,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute("UPDATE ledger_entries SET seq = seq")
