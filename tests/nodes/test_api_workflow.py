"""The transfer workflow over HTTP, against a real uvicorn server and SQLite ledger.

An operator proposes, custodians upload their own signed votes, everyone reads the
policy's decision explained; wrong roles get 403 and custodians of other vaults the 404 of
an object that does not exist, forged or
replayed votes get 400 and nothing is written. Also: vaults (policy in words, descriptor,
next receive address, balances), freezing, transfers and the signer's release order,
reconciliation entries, and the dashboard's proposal page and panels.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends
from fastapi.testclient import TestClient

from reserve.api import accounts
from reserve.api import reserve_views as views
from reserve.api.app import create_app
from reserve.api.deps import ApiOptions, Recorder, Service, get_recorder, get_service
from reserve.api.store import AccountStore
from reserve.ledger import CheckpointSigner
from reserve.policy.testkeys import private_key_of
from reserve.proposals.approval import sign
from tests.support.api_server import (
    BOOTSTRAP_ACTOR,
    ORIGIN,
    FakeClock,
    RunningServer,
    running_server,
    seed_people,
)
from tests.support.api_workflow import CUSTODIAN, register, vote_document
from tests.support.batches import BatchLedger
from tests.support.workflow import COLD
from wallets.bitcoin.vault import load_vault

SECOND = "central-bank"  # a second custodian of vault-a, in the policy and as an API user


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-workflow")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        register(running, "vault-a")
        register(running, "vault-b", custodian="carl-custodian")
        accounts.create_user(running.store, running.record, person=SECOND, name="CB",
                             institution="Central Bank", roles=["custodian"],
                             vaults=["vault-a"], now=running.clock.wall())
        issued, _ = accounts.issue_token(running.store, running.record, person=SECOND,
                                         role="custodian", expires_in_seconds=86400,
                                         label="second", issued_by=BOOTSTRAP_ACTOR,
                                         now=running.clock.wall())
        running.tokens["second"] = issued.token
        yield running


def _new_proposal(server: RunningServer, amount: int = 5_000_000) -> str:
    body = {"vault": "vault-a", "asset": "BTC", "fee_max": "20000", "purpose": "rebalance",
            "reference": secrets.token_hex(4), "outputs": [{"destination": COLD, "amount": str(amount)}]}
    with server.client("operator") as client:
        response = client.post("/api/proposals", json=body)
    assert response.status_code == 201, response.text
    digest: str = response.json()["digest"]
    return digest


def test_operator_proposes_custodians_approve_and_the_decision_explains(
        server: RunningServer) -> None:
    with server.client("operator") as client:
        created = client.post("/api/proposals", json={
            "vault": "vault-a", "asset": "BTC", "fee_max": "20000", "purpose": "rebalance",
            "outputs": [{"destination": COLD, "amount": "5000000"}]})
    assert created.status_code == 201, created.text
    shown = created.json()
    digest = shown["digest"]
    assert shown["state"] == "proposed" and shown["proposer"] == "olga-operator"
    assert shown["amount_text"] == "0.05000000 BTC"
    assert shown["decision"]["explain"] == "needs 2 more approvals from different institutions"
    assert CUSTODIAN in shown["still_to_act"] and "olga-operator" not in shown["still_to_act"]

    before = server.ledger.size()
    with server.client("custodian") as client:
        first = client.post(f"/api/proposals/{digest}/approvals",
                            json=vote_document(digest, CUSTODIAN))
    assert first.status_code == 201, first.text
    assert first.json()["decision"]["approvers"] == [CUSTODIAN]
    assert "needs 1 more approval" in first.json()["decision"]["explain"]
    written = list(server.ledger.entries(before))
    assert [e.kind for e in written] == ["api.request", "proposal.approved"]
    assert written[0].actor == CUSTODIAN and "recorded_by" not in written[0].payload
    assert written[0].payload["summary"]["vault"] == "vault-a"

    with server.client("second") as client:
        second = client.post(f"/api/proposals/{digest}/approvals",
                             json=vote_document(digest, SECOND))
    assert second.status_code == 201, second.text
    decided = second.json()
    assert decided["state"] == "releasable"  # small tier: no delay
    assert decided["decision"]["explain"] == "releasable"
    assert decided["still_to_act"] == []
    with server.client("viewer") as client:
        again = client.get(f"/api/proposals/{digest[:12]}").json()
        order = client.get(f"/api/transfers/{digest}/order").json()
        transfers = client.get("/api/transfers").json()["transfers"]
    assert again["decision"]["approvers"] == [CUSTODIAN, SECOND]
    assert [h["state"] for h in again["history"]] == ["proposed", "approved", "releasable"]
    assert order["proposal_digest"] == digest and order["vault_id"] == "vault-a"
    assert order["outputs"] == [{"destination": COLD, "amount": "5000000"}]
    assert any(t["digest"] == digest and t["confirmations"] == 0 for t in transfers)


def test_a_write_answers_what_a_read_of_the_committed_ledger_says(server: RunningServer) -> None:
    """The answer of a proposal and of each vote is built in the write's own group, from
    the rows it wrote; it is exactly what GET says of the committed ledger afterwards."""
    with server.client("operator") as client:
        created = client.post("/api/proposals", json={
            "vault": "vault-a", "asset": "BTC", "fee_max": "20000", "purpose": "same answer",
            "reference": secrets.token_hex(4),
            "outputs": [{"destination": COLD, "amount": "6000000"}]})
    assert created.status_code == 201, created.text
    digest = created.json()["digest"]
    answers = [created.json()]
    with server.client("viewer") as client:  # the decision the proposal took, reused
        assert client.get(f"/api/proposals/{digest}").json() == created.json()
    for who, person in (("custodian", CUSTODIAN), ("second", SECOND)):
        with server.client(who) as client:
            voted = client.post(f"/api/proposals/{digest}/approvals",
                                json=vote_document(digest, person))
        assert voted.status_code == 201, voted.text
        answers.append(voted.json())
    with server.client("viewer") as client:
        shown = client.get(f"/api/proposals/{digest}").json()
    assert answers[-1] == shown
    assert [a["state"] for a in answers] == ["proposed", "proposed", "releasable"]
    assert answers[1]["decision"]["approvers"] == [CUSTODIAN]

def test_wrong_roles_get_403_other_vaults_404_and_nothing_is_written(
        server: RunningServer) -> None:
    digest = _new_proposal(server)
    before = server.ledger.size()
    body = {"vault": "vault-a", "asset": "BTC", "purpose": "x",
            "outputs": [{"destination": COLD, "amount": "1000"}]}
    for role in ("viewer", "custodian", "auditor", "admin"):
        with server.client(role) as client:
            assert client.post("/api/proposals", json=body).status_code == 403, role
    for role in ("viewer", "operator", "auditor", "admin"):
        with server.client(role) as client:
            response = client.post(f"/api/proposals/{digest}/approvals",
                                   json=vote_document(digest, CUSTODIAN))
            assert response.status_code == 403, role
    with server.client("custodian_b") as client:
        assert client.get(f"/api/proposals/{digest}").status_code == 404
        assert client.post(f"/api/proposals/{digest}/approvals",
                           json=vote_document(digest, "carl-custodian")).status_code == 404
        assert client.get("/api/vaults/vault-a").status_code == 404
        assert client.post("/api/vaults/vault-a/freeze", json={"reason": "x"}).status_code == 404
        listed = client.get("/api/proposals").json()["proposals"]
        assert all(p["vault"] == "vault-b" for p in listed)
        assert [v["vault"] for v in client.get("/api/vaults").json()["vaults"]] == ["vault-b"]
    with server.client("custodian") as client:  # someone else's vote, even a valid one
        response = client.post(f"/api/proposals/{digest}/approvals",
                               json=vote_document(digest, SECOND))
        assert response.status_code == 403
        assert "only your own vote" in response.json()["detail"]
    assert server.ledger.size() == before


def test_forged_and_replayed_votes_get_400_and_nothing_is_recorded(
        server: RunningServer) -> None:
    digest = _new_proposal(server)
    other = _new_proposal(server, amount=6_000_000)
    forged = sign(private_key_of("somebody-else"), bytes.fromhex(digest), "approve",
                  CUSTODIAN).document()
    for_other = vote_document(other, CUSTODIAN)
    flipped = {**vote_document(digest, CUSTODIAN, "reject"), "decision": "approve"}
    before = server.ledger.size()
    with server.client("custodian") as client:
        for bad in (forged, flipped):
            response = client.post(f"/api/proposals/{digest}/approvals", json=bad)
            assert response.status_code == 400, response.text
            assert "does not verify" in response.json()["detail"]
        response = client.post(f"/api/proposals/{digest}/approvals", json=for_other)
        assert response.status_code == 400 and "for proposal" in response.json()["detail"]
        assert server.ledger.size() == before
        assert client.post(f"/api/proposals/{digest}/approvals",
                           json=vote_document(digest, CUSTODIAN)).status_code == 201
        size = server.ledger.size()
        replay = client.post(f"/api/proposals/{digest}/approvals",
                             json=vote_document(digest, CUSTODIAN))
        assert replay.status_code == 400 and "already voted" in replay.json()["detail"]
        assert server.ledger.size() == size
        malformed = client.post(f"/api/proposals/{digest}/approvals",
                                json={**vote_document(digest, CUSTODIAN), "signature": "zz"})
        assert malformed.status_code == 422
        assert client.get("/api/proposals/00000000deadbeef").status_code == 404
    with server.client("operator") as client:
        refused = client.post("/api/proposals", json={
            "vault": "vault-a", "asset": "BTC", "purpose": "not allowlisted", "fee_max": "1000",
            "outputs": [{"destination": "bcrt1qnotonthelist", "amount": "1000"}]})
        assert refused.status_code == 400 and "allowlist" in refused.json()["detail"]
        no_fee_cap = client.post("/api/proposals", json={
            "vault": "vault-a", "asset": "BTC", "purpose": "no fee cap",
            "outputs": [{"destination": COLD, "amount": "0.01 BTC"}]})
        assert no_fee_cap.status_code == 400
        assert "a Bitcoin transfer needs a fee cap" in no_fee_cap.json()["detail"]
        assert client.post("/api/proposals", json={
            "vault": "nowhere", "asset": "BTC", "purpose": "x",
            "outputs": [{"destination": COLD, "amount": "1"}]}).status_code == 404
    assert server.ledger.size() == size
    with server.client("operator") as client:  # amounts in asset units, parsed exactly
        in_units = client.post("/api/proposals", json={
            "vault": "vault-a", "asset": "BTC", "purpose": "asset units", "fee_max": "0.0002",
            "outputs": [{"destination": COLD, "amount": "0.01 BTC"}]})
        assert in_units.status_code == 201, in_units.text
        assert in_units.json()["outputs"] == [{"destination": COLD, "amount": "1000000",
                                               "amount_text": "0.01000000 BTC"}]
        assert in_units.json()["fee_max"] == "20000"


def test_a_transfer_declares_its_flow_class(server: RunningServer) -> None:
    """The statement's class of a transfer (docs/transparency.md), signed in the digest."""
    body = {"vault": "vault-a", "asset": "BTC", "fee_max": "20000", "purpose": "auction",
            "outputs": [{"destination": COLD, "amount": "5000000"}]}
    size = server.ledger.size()
    with server.client("operator") as client:
        wrong = client.post("/api/proposals", json={**body, "flow_class": "mining"})
        assert wrong.status_code == 422
        destination = client.post("/api/proposals", json={
            "action": "destination.add", "vault": "vault-a", "asset": "BTC",
            "address": COLD, "label": "x", "purpose": "x", "flow_class": "sale"})
        assert destination.status_code == 409, destination.text  # a WorkflowError
        assert "only a transfer declares a flow class" in destination.json()["detail"]
        assert server.ledger.size() == size
        created = client.post("/api/proposals", json={**body, "flow_class": "sale"})
    assert created.status_code == 201, created.text
    assert created.json()["document"]["flow_class"] == "sale"


def test_cancel_freeze_and_unfreeze_proposal(server: RunningServer) -> None:
    digest = _new_proposal(server)
    with server.client("operator") as client:
        cancelled = client.post(f"/api/proposals/{digest}/cancel", json={"reason": "typo"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    with server.client("viewer") as client:
        assert client.post("/api/vaults/vault-b/freeze", json={"reason": "x"}).status_code == 403
    with server.client("auditor") as client:
        frozen = client.post("/api/vaults/vault-b/freeze", json={"reason": "drill"})
        assert frozen.status_code == 200, frozen.text
        assert frozen.json()["frozen"]["by"] == "aldo-auditor"
        again = client.post("/api/vaults/vault-b/freeze", json={"reason": "drill"})
        assert again.status_code == 409 and "already frozen" in again.json()["detail"]
    server.clock.advance(60)
    with server.client("operator") as client:
        unfreeze = client.post("/api/vaults/vault-b/unfreeze", json={"purpose": "drill over"})
    assert unfreeze.status_code == 201, unfreeze.text
    assert unfreeze.json()["action"] == "vault.unfreeze"
    with server.client("custodian_b") as client:
        shown = client.get("/api/vaults/vault-b").json()
        versions = client.get("/api/vaults/vault-b/policies").json()["versions"]
        one = client.get("/api/vaults/vault-b/policies/1").json()
    assert shown["frozen"]["reason"] == "drill"
    assert any("unfreezing: 3 approvals from 3 institutions, then a 24 h delay" == line
               for line in shown["policy"]["in_plain_words"])
    assert [v["version"] for v in versions] == [1]
    assert one["policy"]["vault"] == "vault-b"


def test_vaults_show_descriptor_next_address_and_ledger_balances(server: RunningServer) -> None:
    vault = load_vault("config/vaults/national-btc-2of3.toml")
    server.ledger.append("btc.deposit", "btc-watcher", {
        "vault_id": vault.vault_id, "txid": "11" * 32, "blockhash": "22" * 32, "height": 101,
        "confirmations": 1, "delta_sats": 150_000_000, "amount_sats": 150_000_000,
        "outputs": [{"vout": 0, "address": vault.address(0, 0), "amount_sats": 150_000_000}]},
        now=server.clock.wall())
    with server.client("viewer") as client:
        listed = {v["vault"]: v for v in client.get("/api/vaults").json()["vaults"]}
        shown = client.get(f"/api/vaults/{vault.vault_id}").json()
        assert client.get("/api/vaults/no-such-vault").status_code == 404
    assert {"vault-a", "vault-b", vault.vault_id} <= set(listed)
    assert listed["vault-a"]["policy"]["version"] == 1
    assert shown["bitcoin"]["descriptor"] == vault.descriptor()
    assert shown["bitcoin"]["next_receive_address"] == {"address": vault.address(0, 1),
                                                        "index": 1}
    assert shown["balances"][0]["balance"] == "150000000"
    assert shown["balances"][0]["balance_text"] == "1.50000000 BTC"


def test_reconciliation_reports_from_the_ledger(server: RunningServer) -> None:
    entry = server.ledger.append("reconcile.report", "auditor-general", {
        "report_sha256": "ab" * 32, "auditor_key": "k", "signature": "s",
        "ledger_tree_size": 5, "ledger_root_hash": "00" * 32,
        "block": {"network": "regtest", "height": 101, "blockhash": "33" * 32},
        "summary": [{"vault_id": "vault-a", "asset": "BTC", "ledger": 0, "chain": 1000,
                     "difference": 1000, "status": "discrepancy", "coins": 1,
                     "unit": "sats"}],
        "findings_by_severity": {"high": 1}}, now=server.clock.wall())
    with server.client("custodian") as client:
        reports = client.get("/api/reconcile/reports").json()["reports"]
        assert reports[0]["status"] == "discrepancy"
        assert client.get(f"/api/reconcile/reports/{'ab' * 32}").json()["seq"] == entry.seq
    with server.client("custodian_b") as client:
        assert client.get("/api/reconcile/reports").json()["reports"] == []
        assert client.get(f"/api/reconcile/reports/{entry.seq}").status_code == 404


def test_dashboard_panels_and_proposal_page(server: RunningServer) -> None:
    digest = _new_proposal(server, amount=7_000_000)
    with server.client() as client:
        client.cookies.set("srl_token", server.tokens["viewer"])
        overview = client.get("/dashboard")
        page = client.get(f"/dashboard/proposals/{digest}")
        missing = client.get("/dashboard/proposals/00000000deadbeef")
    assert overview.status_code == 200
    for key in ("holdings", "policies", "proposals", "transfers", "reconciliation"):
        assert f'data-panel="{key}" data-state="ok"' in overview.text, key
    assert f"/dashboard/proposals/{digest}" in overview.text
    assert page.status_code == 200 and "needs 2 more approvals" in page.text
    assert "0.07000000 BTC" in page.text
    assert missing.status_code == 404
    with server.client() as client:
        client.cookies.set("srl_token", server.tokens["custodian_b"])
        assert client.get(f"/dashboard/proposals/{digest}").status_code == 404
        assert f"/dashboard/proposals/{digest}" not in client.get("/dashboard").text


@contextmanager
def _in_process(tmp_path: Path) -> Iterator[tuple[RunningServer, BatchLedger]]:
    """The API in this process on a ledger that remembers its batches; vault-a registered."""
    url = f"sqlite:///{tmp_path}/ledger.sqlite"
    with BatchLedger.open(url, signer=CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate()),
                          checkpoint_every=8) as ledger:
        assert isinstance(ledger, BatchLedger)
        store, clock = AccountStore.open(url), FakeClock()
        app = create_app(ledger, accounts=store, clock=clock.wall, monotonic=clock.monotonic,
                         options=ApiOptions(auth_failures_max=10_000))
        running = RunningServer("http://testserver", ledger, store, clock, {}, app)
        try:
            seed_people(running)
            register(running, "vault-a")
            yield running, ledger
        finally:
            store.close()


def test_a_write_request_and_its_entries_are_one_commit(tmp_path: Path) -> None:
    """The route hands its api.request entry to the workflow action: one batch, request
    first, then the action's entries; the entry names the request the caller saw."""
    with _in_process(tmp_path) as (running, ledger), TestClient(running.app) as client:
        size = ledger.size()
        created = client.post("/api/proposals", headers=_bearer(running, "operator"), json={
            "vault": "vault-a", "asset": "BTC", "fee_max": "20000", "purpose": "one commit",
            "outputs": [{"destination": COLD, "amount": "5000000"}]})
        assert created.status_code == 201, created.text
        digest = created.json()["digest"]
        voted = client.post(f"/api/proposals/{digest}/approvals",
                            headers=_bearer(running, "custodian"),
                            json=vote_document(digest, CUSTODIAN))
        assert voted.status_code == 201, voted.text
        frozen = client.post("/api/vaults/vault-a/freeze",
                             headers=_bearer(running, "custodian"), json={"reason": "drill"})
        assert frozen.status_code == 200, frozen.text
        cancelled = client.post(f"/api/proposals/{digest}/cancel",
                                headers=_bearer(running, "operator"), json={"reason": "x"})
        assert cancelled.status_code == 200, cancelled.text
        unfreeze = client.post("/api/vaults/vault-a/unfreeze",
                               headers=_bearer(running, "operator"),
                               json={"purpose": "drill over"})
        assert unfreeze.status_code == 201, unfreeze.text
        assert ledger.batches[-5:] == [["api.request", "proposal.created"],
                                       ["api.request", "proposal.approved"],
                                       ["api.request", "vault.frozen"],
                                       ["api.request", "proposal.cancelled"],
                                       ["api.request", "vault.unfreeze_proposed"]]
        written = list(ledger.entries(size))
        assert len(written) == 10  # nothing else: no request was recorded twice
        for index, response in enumerate((created, voted, frozen, cancelled, unfreeze)):
            request, action = written[2 * index:2 * index + 2]
            assert request.payload["request_id"] == response.headers["X-Request-Id"]
            assert request.actor == action.actor and request.time == action.time
        assert written[0].payload["summary"] == {"action": "transfer", "vault": "vault-a"}
        assert written[4].payload["vault"] == "vault-a"


def _bearer(running: RunningServer, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {running.tokens[who]}"}


def test_an_action_that_drops_the_request_entry_is_caught_by_the_recording_net(
        tmp_path: Path) -> None:
    """WorkflowAccess.act reads the entry back; one not written leaves the request
    unrecorded, so the app's net records it (and logs the route's mistake)."""
    with _in_process(tmp_path) as (running, ledger):
        @running.app.post("/api/test/freeze-dropping-prelude")
        def dropping(record: Recorder = Depends(get_recorder),
                     service: Service = Depends(get_service)) -> dict[str, str]:
            views.workflow_access(service).act(
                record, lambda w, prelude: w.freeze("vault-a", CUSTODIAN, "drill"))
            return {}

        with TestClient(running.app) as client:
            size = ledger.size()
            response = client.post("/api/test/freeze-dropping-prelude",
                                   headers=_bearer(running, "custodian"))
        assert response.status_code == 200, response.text
        assert ledger.batches[-2:] == [["vault.frozen"], ["api.request"]]
        frozen, request = ledger.entries(size)
        assert (frozen.kind, request.payload["recorded_by"]) == ("vault.frozen", "middleware")
        assert request.payload["request_id"] == response.headers["X-Request-Id"]


def test_proposals_and_transfers_are_listed_a_page_at_a_time(server: RunningServer) -> None:
    for amount in (1_000_000, 2_000_000, 3_000_000):
        _new_proposal(server, amount)
    with server.client("viewer") as client:
        whole = client.get("/api/proposals", params={"limit": 500}).json()
        assert whole["next"] is None and len(whole["proposals"]) >= 3
        pages, after = [], None
        while True:
            page = client.get("/api/proposals", params={"limit": 2, **(
                {} if after is None else {"after": after})}).json()
            assert len(page["proposals"]) <= 2
            pages += page["proposals"]
            if page["next"] is None:
                break
            after = page["next"]["after"]
        assert [p["digest"] for p in pages] == [p["digest"] for p in whole["proposals"]]
        transfers = client.get("/api/transfers", params={"limit": 1}).json()
        assert len(transfers["transfers"]) == 1 and transfers["next"] is not None
        for bad in ({"limit": 0}, {"limit": 501}, {"after": -1}, {"after": "x"}):
            refused = client.get("/api/proposals", params=bad)
            assert refused.status_code == 422, (bad, refused.text)
    with server.client("custodian_b") as client:  # vault-b's custodian: none of vault-a's
        assert client.get("/api/proposals", params={"vault": "vault-a"}).json() == {
            "proposals": [], "next": None}
        assert all(p["vault"] == "vault-b" for p in client.get(
            "/api/proposals", params={"limit": 1}).json()["proposals"])
