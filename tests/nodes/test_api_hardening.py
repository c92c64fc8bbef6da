"""The service under attack: unencodable input, bad addresses, cross-site posts, scoping.

Each test reproduces one finding of the hardening review (issue 13) against a uvicorn
server on a SQLite ledger (the crash and supervision findings are in
test_api_serve_workers.py). Before the fixes a lone surrogate got a 500, `zzz` and a
mainnet address were accepted as regtest destinations, a fee cap of 2**64 sat was
accepted, a cross-site form could log a browser in, the session cookie was not Secure,
the ledger file was world-readable and custodians got 403 (not 404) for another vault's
proposals, which told them the proposal existed.
"""

from __future__ import annotations

import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from reserve.policy import loader
from reserve.policy.model import Policy
from reserve.policy.testkeys import public_key_hex_of
from reserve.transfers.service import WorkflowService
from tests.support.api_server import RunningServer, running_server
from tests.support.api_workflow import OPERATOR, register, vote_document
from tests.support.workflow import COLD, STRANGER

MAINNET = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
EVM_POLICY = Path(__file__).resolve().parents[2] / "config" / "policies" / "reserve-evm.toml"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("hardening")
    with running_server(f"sqlite:///{folder}/db/ledger.sqlite") as running:
        register(running, "vault-a")
        register(running, "vault-b", custodian="carl-custodian")
        WorkflowService(running.ledger, clock=running.clock.wall).register_policy(
            _evm_policy(), "test-bootstrap")
        running.folder = folder  # type: ignore[attr-defined]
        yield running


def _evm_policy() -> Policy:
    document = loader.to_document(loader.load_file(EVM_POLICY))
    document["vault"] = "safe-a"
    document["operators"] += [{"id": OPERATOR, "name": "Olga", "institution": "Treasury"}]
    document["roles"]["proposers"] = [*document["roles"]["proposers"], OPERATOR]
    document["custodians"][0].update({"id": "cora-custodian",
                                      "approval_public_key": public_key_hex_of("cora-custodian")})
    return loader.from_mapping(document, source="api test EVM policy")


def _destination(vault: str, asset: str, address: str) -> dict[str, str]:
    return {"action": "destination.add", "vault": vault, "asset": asset, "address": address,
            "label": "new bank", "purpose": "a new custodian bank",
            "reference": secrets.token_hex(4)}


def test_a_lone_surrogate_is_refused_with_422_not_500(server: RunningServer) -> None:
    size = server.ledger.size()
    bodies = [b'{"vault":"vault-a","asset":"BTC","purpose":"\\ud800",'
              b'"outputs":[{"destination":"x","amount":"1"}]}',
              b'{"vault":"vault-a","asset":"BTC","purpose":"\\udfff\\ud800"}',
              '{"\udc80":1}'.encode("utf-8", "surrogatepass")]
    with server.client("operator") as client:
        for body in bodies:
            response = client.post("/api/proposals", content=body,
                                   headers={"Content-Type": "application/json"})
            assert response.status_code == 422, response.text
            response.json()  # the answer itself is valid JSON text
        cancel = client.post("/api/proposals/" + "ab" * 32 + "/cancel", content=bodies[0],
                             headers={"Content-Type": "application/json"})
        assert cancel.status_code == 422
    assert server.ledger.size() == size


def test_destinations_must_be_addresses_of_the_vaults_network(server: RunningServer) -> None:
    size = server.ledger.size()
    refused = [("vault-a", "BTC", "zzz"), ("vault-a", "BTC", MAINNET),
               ("vault-a", "BTC", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt081"),
               ("safe-a", "ETH", "zzz"), ("safe-a", "ETH", MAINNET),
               ("safe-a", "ETH", "0x70997970C51812dc3A010C7d01b50e0d17dc79c8"),  # checksum
               ("safe-a", "ETH", "0x" + "0" * 40)]
    with server.client("operator") as client:
        for vault, asset, address in refused:
            response = client.post("/api/proposals", json=_destination(vault, asset, address))
            assert response.status_code == 400, (address, response.text)
            assert "destination refused" in response.json()["detail"]
        assert server.ledger.size() == size
        for vault, asset, address in [("vault-a", "BTC", STRANGER),
                                      ("safe-a", "ETH", "0x" + "ab" * 20)]:
            response = client.post("/api/proposals", json=_destination(vault, asset, address))
            assert response.status_code == 201, response.text


def test_fee_max_and_amounts_are_bounded_by_the_chain(server: RunningServer) -> None:
    size = server.ledger.size()
    body = {"vault": "vault-a", "asset": "BTC", "purpose": "too much fee",
            "outputs": [{"destination": COLD, "amount": "1000"}]}
    with server.client("operator") as client:
        for fee_max in (str(2**64), str(21_000_000 * 10**8 + 1)):
            response = client.post("/api/proposals", json={**body, "fee_max": fee_max})
            assert response.status_code == 400 and "fee_max" in response.text, response.text
        response = client.post("/api/proposals", json={
            **body, "outputs": [{"destination": COLD, "amount": str(2**64)}]})
        assert response.status_code == 400, response.text
        assert server.ledger.size() == size
        fine = client.post("/api/proposals", json={**body, "fee_max": "20000"})
        assert fine.status_code == 201, fine.text


def test_login_and_logout_refuse_cross_site_posts(server: RunningServer) -> None:
    token = server.tokens["viewer"]
    with server.client(follow_redirects=False) as client:
        # Under no-referrer a browser would post the login form with `Origin: null`.
        assert client.get("/login").headers["referrer-policy"] == "same-origin"
        for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"},
                        {"Referer": "https://evil.example/page"}):
            login = client.post("/login", data={"token": token}, headers=headers)
            assert login.status_code == 403 and "set-cookie" not in login.headers, headers
            assert client.post("/logout", headers=headers).status_code == 403
        same = client.post("/login", data={"token": token},
                           headers={"Origin": server.base_url})
        assert same.status_code == 303
        by_referer = client.post("/logout", headers={"Referer": server.base_url + "/dashboard"})
        assert by_referer.status_code == 303


def test_the_session_cookie_is_secure_by_default(server: RunningServer) -> None:
    with server.client(follow_redirects=False) as client:
        login = client.post("/login", data={"token": server.tokens["viewer"]},
                            headers={"Origin": server.base_url})
        cookie = login.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        out = client.post("/logout", headers={"Origin": server.base_url})
        assert "Secure" in out.headers["set-cookie"]


def test_the_ledger_file_and_its_folder_are_private(server: RunningServer) -> None:
    folder: Path = server.folder / "db"  # type: ignore[attr-defined]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.glob("ledger.sqlite*"):
        if not path.name.endswith("migrate-lock"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_custodians_get_404_for_another_vaults_objects(server: RunningServer) -> None:
    with server.client("operator") as client:
        created = client.post("/api/proposals", json={
            "vault": "vault-a", "asset": "BTC", "fee_max": "20000", "purpose": "scoped",
            "outputs": [{"destination": COLD, "amount": "1000"}]})
        assert created.status_code == 201, created.text
    digest = created.json()["digest"]
    unknown = "ab" * 32
    with server.client("custodian_b") as client:
        for path in (f"/api/proposals/{digest}", f"/api/transfers/{digest}"):
            hidden, missing = client.get(path), client.get(path.replace(digest, unknown))
            assert hidden.status_code == missing.status_code == 404
            assert hidden.json()["detail"] == missing.json()["detail"].replace(unknown, digest)
        vote = client.post(f"/api/proposals/{digest}/approvals",
                           json=vote_document(digest, "carl-custodian"))
        assert vote.status_code == 404
        for path in ("/api/vaults/vault-a", "/api/vaults/vault-a/policies"):
            hidden, missing = client.get(path), client.get(path.replace("vault-a", "vault-z"))
            assert hidden.status_code == missing.status_code == 404, path
            assert hidden.json()["detail"] == \
                missing.json()["detail"].replace("vault-z", "vault-a")
        freeze = client.post("/api/vaults/vault-a/freeze", json={"reason": "x"})
        assert freeze.status_code == 404
        listed = client.get("/api/proposals", params={"vault": "vault-a"})
        assert listed.status_code == 200 and listed.json()["proposals"] == []
