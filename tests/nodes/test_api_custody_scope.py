"""No endpoint leaks another vault's data to a custodian of a different vault.

Entries about vault-a and vault-b (including one that names its vault only deep inside a
nested document) are appended; each custodian must see their own vault's entries and
nothing of the other's, through the JSON API and through the dashboard pages alike.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.api_server import RunningServer, running_server

SECRET_A = "memo-only-for-vault-a"
SECRET_B = "memo-only-for-vault-b"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-scope")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        now = running.clock.wall()
        entries = running.ledger.append_many([
            ("ledger.note", "ops", {"text": "a note about no vault"}),
            # (Notes, not freezes: neither vault has a policy, and the read models refuse
            # a freeze of a vault the workflow does not know.)
            ("ledger.note", "ops", {"vault": "vault-a", "reason": SECRET_A}),
            ("ledger.note", "ops", {"vault": "vault-b", "reason": SECRET_B}),
            # Notes take any shape: a vault named deep inside, and a list of vaults.
            ("ledger.note", "olga", {"document": {"proposal": {"vault": "vault-b"}},
                                     "memo": SECRET_B + "-nested"}),
            ("ledger.note", "aldo", {"vaults": ["vault-a", "vault-b"],
                                     "memo": SECRET_B + "-both"}),
        ], now=now)
        running.scope_seqs = [e.seq for e in entries]  # type: ignore[attr-defined]
        yield running


def _all_entries(server: RunningServer, who: str) -> list[dict]:  # type: ignore[type-arg]
    seen = []
    start = 0
    with server.client(who) as client:
        while start is not None:
            page = client.get("/api/ledger/entries", params={"start": start, "limit": 7}).json()
            seen.extend(page["entries"])
            start = page["next_start"]
    return seen


def test_custodian_lists_only_their_vaults_entries(server: RunningServer) -> None:
    texts_a = str(_all_entries(server, "custodian"))
    texts_b = str(_all_entries(server, "custodian_b"))
    assert SECRET_A in texts_a and SECRET_B not in texts_a
    assert SECRET_B in texts_b and SECRET_A not in texts_b
    assert "a note about no vault" in texts_a and "a note about no vault" in texts_b
    # The other custodian's user record and token issuance name their vault: hidden too.
    assert "carl-custodian" not in texts_a and "cora-custodian" not in texts_b
    everything = str(_all_entries(server, "viewer"))
    assert SECRET_A in everything and SECRET_B in everything


def test_custodian_cannot_fetch_another_vaults_entry(server: RunningServer) -> None:
    note, vault_a, vault_b, nested_b, both = server.scope_seqs  # type: ignore[attr-defined]
    with server.client("custodian") as client:
        assert client.get(f"/api/ledger/entries/{vault_a}").status_code == 200
        assert client.get(f"/api/ledger/entries/{note}").status_code == 200
        for seq in (vault_b, nested_b, both):
            response = client.get(f"/api/ledger/entries/{seq}")
            assert response.status_code == 404  # as if it were not there
            assert SECRET_B not in response.text
        filtered = client.get("/api/ledger/entries", params={"kind": "vault.frozen"})
        assert SECRET_B not in filtered.text
        assert client.get("/api/ledger/export").status_code == 403


def test_proofs_and_checkpoints_carry_only_hashes(server: RunningServer) -> None:
    with server.client("custodian") as client:
        for path in ("/api/ledger/checkpoints", "/api/ledger/checkpoints/latest",
                     "/api/ledger/consistency?old_size=1"):
            response = client.get(path)
            assert response.status_code == 200
            assert SECRET_B not in response.text


def test_dashboard_explorer_hides_other_vaults(server: RunningServer) -> None:
    _, _, vault_b, _, _ = server.scope_seqs  # type: ignore[attr-defined]
    cookies = {"srl_token": server.tokens["custodian"]}
    with server.client(cookies=cookies) as client:
        page = client.get("/dashboard/ledger", params={"start": 0})
        assert page.status_code == 200
        assert SECRET_A in page.text and SECRET_B not in page.text
        single = client.get(f"/dashboard/ledger/{vault_b}")
        assert single.status_code == 404 and SECRET_B not in single.text
        overview = client.get("/dashboard")
        assert overview.status_code == 200 and SECRET_B not in overview.text
