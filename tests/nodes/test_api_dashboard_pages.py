"""The dashboard's server-rendered pages over HTTP: login, overview, explorer, entry.

The browser test (tests/e2e/test_dashboard_browser.py) drives the same pages in Chromium;
these checks are the fast, browser-free half: redirects, cookies, panels, escaping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reserve.events.records import CheckpointAnchored, ReconcileReport
from reserve.ledger.checkpoint import parse_note
from tests.support.api_server import RunningServer, running_server
from tests.support.workflow import COLD, btc_policy, vote, workflow_service


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("api-pages")
    with running_server(f"sqlite:///{folder}/ledger.sqlite") as running:
        running.ledger.append("ledger.note", "ops", {"text": "<script>alert(1)</script>"},
                              now=running.clock.wall())
        yield running


def test_pages_redirect_to_login_without_a_cookie(server: RunningServer) -> None:
    with server.client(follow_redirects=False) as client:
        assert client.get("/").headers["location"] == "/dashboard"
        for path in ("/dashboard", "/dashboard/ledger", "/dashboard/ledger/0"):
            response = client.get(path)
            assert response.status_code == 303
            assert response.headers["location"] == "/login"
        assert client.get("/login").status_code == 200


def test_login_sets_a_strict_httponly_cookie_and_logout_clears_it(server: RunningServer
                                                                   ) -> None:
    # The browser's own form posts carry the site's Origin (cross-site ones are refused:
    # tests/nodes/test_api_hardening.py).
    with server.client(follow_redirects=False) as client:
        client.headers["Origin"] = server.base_url
        refused = client.post("/login", data={"token": "srl_nope"})
        assert refused.status_code == 401 and "Login refused" in refused.text
        response = client.post("/login", data={"token": server.tokens["viewer"]})
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie
        # A Secure cookie is not sent back over this plain-http test connection; a
        # browser on https (or on localhost) does send it.
        client.cookies.set("srl_token", server.tokens["viewer"])
        assert client.get("/dashboard").status_code == 200
        out = client.post("/logout")
        assert out.status_code == 303 and 'srl_token=""' in out.headers["set-cookie"]


def test_overview_shows_checkpoint_and_unconfigured_panels(server: RunningServer) -> None:
    with server.client(cookies={"srl_token": server.tokens["viewer"]}) as client:
        page = client.get("/dashboard")
    assert page.status_code == 200
    assert "Latest checkpoint" in page.text
    assert server.ledger.verifier_key().encode() in page.text  # type: ignore[union-attr]
    for key in ("holdings", "policies", "proposals", "transfers", "reconciliation"):
        assert f'data-panel="{key}"' in page.text
    # Every panel has its provider now (reserve/api/panels/*.py); nothing is recorded yet.
    assert "not configured" not in page.text and "this panel failed" not in page.text
    assert page.text.count('data-state="empty"') == 5
    assert "Content-Security-Policy" in page.headers or "content-security-policy" in page.headers


def test_explorer_escapes_payloads_and_offers_verification(server: RunningServer) -> None:
    with server.client(cookies={"srl_token": server.tokens["auditor"]}) as client:
        page = client.get("/dashboard/ledger")
        assert page.status_code == 200
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;" in page.text
        assert page.text.count('class="verify"') >= 10
        entry = client.get("/dashboard/ledger/0")
        assert entry.status_code == 200 and "Verify this entry" in entry.text
        assert client.get("/dashboard/ledger/999999").status_code == 404
        assert client.get("/dashboard/ledger?kind=auth.token_issued").status_code == 200
        assert client.get("/static/verify.js").status_code == 200


def test_an_expired_cookie_sends_the_browser_back_to_login(server: RunningServer) -> None:
    cookies = {"srl_token": "srl_0123456789abcdef_" + "C" * 43}
    with server.client(cookies=cookies, follow_redirects=False) as client:
        response = client.get("/dashboard")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?expired=1"


# -- the reserve pages: vaults, transfers, checkpoints, reconciliation ------------------------
@pytest.fixture(scope="module")
def reserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Two vaults (vault-a, vault-b, each with national-btc's rules), a deposit, a transfer
    on each, two checkpoints (the first anchored) and a reconciliation report of vault-a."""
    folder = tmp_path_factory.mktemp("api-reserve-pages")
    with running_server(f"sqlite:///{folder}/ledger.sqlite", checkpoint_every=1000) as running:
        ledger, now = running.ledger, running.clock.wall()
        workflow = workflow_service(ledger, btc_policy("vault-a"), clock=running.clock.wall,
                                    actor="root-admin")
        workflow.register_policy(btc_policy("vault-b"), "root-admin")
        ledger.append("btc.deposit", "btc-watcher", {
            "vault_id": "vault-a", "txid": "11" * 32, "blockhash": "22" * 32, "height": 101,
            "confirmations": 1, "delta_sats": 250_000_000, "amount_sats": 250_000_000,
            "outputs": [{"vout": 0, "amount_sats": 250_000_000, "address": "bcrt1qtest"}]},
            now=now)
        digests = {}
        for vault, amount in (("vault-a", 150_000_000), ("vault-b", 70_000_000)):
            created = workflow.propose_transfer(
                vault=vault, proposer="treasury-ops", asset="BTC",
                outputs=[(COLD, amount)], fee_max=20_000, purpose=f"top-up {vault}")
            workflow.vote(vote(created.proposal, "central-bank"))
            digests[vault] = created.digest
        # An owner's signature recorded by the bare CLI path names the proposal, not its
        # vault: every custodian sees the entry, but not what vault-b's proposal moves.
        ledger.append("evm.signature_received", "evm-cli", {
            "safe_tx_hash": "ab" * 32, "proposal_digest": digests["vault-b"],
            "signer": "0x" + "11" * 20, "signature": "cd" * 65}, now=now)
        first = ledger.checkpoint(now=now)
        ledger.append("ledger.anchor", "aldo-auditor", CheckpointAnchored(
            subject="checkpoint", chain_id=31337, registry="0x" + "12" * 20, index=0,
            anchorer="0x" + "34" * 20, tx_hash="0x" + "ab" * 32, block_number=7,
            block_hash="0x" + "cd" * 32, tree_size=parse_note(first)[0].tree_size,
            root_hash=parse_note(first)[0].root_hash.hex()).to_payload(), now=now)
        ledger.append("reconcile.report", "aldo-auditor", ReconcileReport(
            report_sha256="ef" * 32, auditor_key="key", signature="sig",
            ledger_tree_size=ledger.size(), ledger_root_hash="00" * 32,
            block={"network": "regtest", "height": 101, "hash": "22" * 32},
            summary=[{"vault_id": "vault-a", "asset": "BTC", "ledger": 250_000_000,
                      "chain": 250_000_000, "difference": 0, "status": "ok", "coins": 1,
                      "unit": "sats"}],
            findings_by_severity={}).to_payload(), now=now)
        ledger.checkpoint(now=now)
        running.digests = digests  # type: ignore[attr-defined]
        yield running


def test_reserve_pages_render_for_every_role(reserve: RunningServer) -> None:
    digest_a = reserve.digests["vault-a"]  # type: ignore[attr-defined]
    for who in ("viewer", "operator", "auditor", "admin", "custodian"):
        with reserve.client(cookies={"srl_token": reserve.tokens[who]}) as client:
            for path in ("/dashboard/vaults", "/dashboard/vaults/vault-a",
                         "/dashboard/transfers", "/dashboard/checkpoints",
                         "/dashboard/reconciliation", "/dashboard/ledger"):
                page = client.get(path)
                assert page.status_code == 200, (who, path, page.text[-500:])
                for link in ("/dashboard/vaults", "/dashboard/transfers",
                             "/dashboard/checkpoints", "/dashboard/reconciliation"):
                    assert f'href="{link}"' in page.text
    with reserve.client(cookies={"srl_token": reserve.tokens["viewer"]}) as client:
        vaults = client.get("/dashboard/vaults").text
        assert 'data-vault="vault-a"' in vaults and 'data-vault="vault-b"' in vaults
        assert 'title="250000000 sat">2.50000000 BTC</span>' in vaults
        vault = client.get("/dashboard/vaults/vault-a").text
        assert "2 of 3 approvals" in vault or "approvals from" in vault  # policy in words
        assert f"/dashboard/proposals/{digest_a}" in vault
        transfers = client.get("/dashboard/transfers").text
        assert transfers.count("<tr data-digest=") == 2
        assert f'href="/dashboard/proposals/{digest_a}"' in transfers
        assert "1.50000000 BTC" in transfers and ">proposed<" in transfers
        only_b = client.get("/dashboard/transfers", params={"vault": "vault-b"}).text
        assert only_b.count("<tr data-digest=") == 1 and digest_a not in only_b
        checkpoints = client.get("/dashboard/checkpoints").text
        assert checkpoints.count("<tr data-tree-size=") == 2
        assert ">consistent</span>" in checkpoints and "root matches" in checkpoints
        assert 'class="note-check"' in checkpoints
        report = client.get("/dashboard/reconciliation").text
        assert 'data-report="' in report and "vault-a" in report
        assert "<h3>Findings</h3>" not in report  # an empty section is left out
        ledger = client.get("/dashboard/ledger").text
        assert f"central-bank approved proposal {digest_a[:6]}…: 1.50000000 BTC to " \
               "Central bank cold storage (TEST)" in ledger
        assert 'class="raw"' in ledger  # the raw entry, a click away


def test_custodians_see_only_their_vaults_pages(reserve: RunningServer) -> None:
    digest_a = reserve.digests["vault-a"]  # type: ignore[attr-defined]
    digest_b = reserve.digests["vault-b"]  # type: ignore[attr-defined]
    with reserve.client(cookies={"srl_token": reserve.tokens["custodian"]}) as client:
        vaults = client.get("/dashboard/vaults").text
        assert 'data-vault="vault-a"' in vaults and "vault-b" not in vaults
        other = client.get("/dashboard/vaults/vault-b")
        unknown = client.get("/dashboard/vaults/no-such-vault")
        assert other.status_code == unknown.status_code == 404
        transfers = client.get("/dashboard/transfers").text
        assert digest_a in transfers and digest_b not in transfers
        assert digest_b not in client.get("/dashboard/transfers",
                                          params={"vault": "vault-b"}).text
        explorer = client.get("/dashboard/ledger").text.split("<main>")[1]
        assert "vault-b" not in explorer and "0.70000000 BTC" not in explorer
        assert f"signed proposal {digest_b[:6]}…<" in explorer
        assert client.get(f"/dashboard/proposals/{digest_b}").status_code == 404


def test_reserve_pages_answer_bad_input_without_a_server_error(reserve: RunningServer
                                                                ) -> None:
    with reserve.client(cookies={"srl_token": reserve.tokens["viewer"]}) as client:
        for path in ("/dashboard/vaults/..%2F", "/dashboard/vaults/" + "x" * 200,
                     "/dashboard/vaults/%00", "/dashboard/vaults/vault-z",
                     "/dashboard/proposals/zz", "/dashboard/proposals/" + "0" * 64,
                     "/dashboard/transfers?vault=%3Cscript%3E",
                     "/dashboard/transfers?vault=" + "x" * 100,
                     "/dashboard/checkpoints?start=99999", "/dashboard/checkpoints?start=-1",
                     "/dashboard/checkpoints?start=abc", "/dashboard/ledger?start=abc",
                     "/dashboard/ledger?kind=no.such.kind"):
            response = client.get(path)
            assert response.status_code < 500, (path, response.status_code)
            assert "<script>" not in response.text
        assert client.get("/dashboard/vaults/vault-z").status_code == 404
    with reserve.client(follow_redirects=False) as client:
        for path in ("/dashboard/vaults", "/dashboard/vaults/vault-a", "/dashboard/transfers",
                     "/dashboard/checkpoints", "/dashboard/reconciliation"):
            assert client.get(path).status_code == 303


def test_the_overview_shows_a_page_of_open_proposals_and_counts_them_all(
        reserve: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pending panel evaluates only its page of open proposals (the newest), counts
    every open one from the read model, and links to the paged list of all of them."""
    from reserve.api import reserve_views

    digest_a = reserve.digests["vault-a"]  # type: ignore[attr-defined]
    digest_b = reserve.digests["vault-b"]  # type: ignore[attr-defined]
    monkeypatch.setattr(reserve_views, "PENDING_SHOWN", 1)
    monkeypatch.setattr(reserve_views, "PENDING_PAGE", 1)
    with reserve.client(cookies={"srl_token": reserve.tokens["viewer"]}) as client:
        overview = client.get("/dashboard").text
        panel = overview.split('data-panel="proposals"')[1].split("</section>")[0]
        assert "2 open proposals (2 proposed); the newest 1 below" in panel
        assert panel.count("<tr data-digest=") == 1 and digest_b in panel  # the newest
        assert 'href="/dashboard/proposals"' in panel
        transfers = overview.split('data-panel="transfers"')[1].split("</section>")[0]
        assert "2 transfers in flight: 2 proposed" in transfers
        first = client.get("/dashboard/proposals")
        assert first.status_code == 200
        assert "2 open proposals (2 proposed)" in first.text
        assert first.text.count("<tr data-digest=") == 1 and digest_b in first.text
        older = first.text.split('data-testid="older" href="')[1].split('"')[0]
        second = client.get(older).text
        assert second.count("<tr data-digest=") == 1 and digest_a in second
        assert 'data-testid="older"' not in second
        assert "approvals from" in second  # each row with its policy decision
        assert client.get("/dashboard/proposals", params={"before": -1}).status_code == 422
    with reserve.client(cookies={"srl_token": reserve.tokens["custodian"]}) as client:
        mine = client.get("/dashboard/proposals").text
        assert "1 open proposal (1 proposed)" in mine
        assert digest_a in mine and digest_b not in mine
