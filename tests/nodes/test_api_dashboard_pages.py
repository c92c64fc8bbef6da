"""The dashboard's server-rendered pages over HTTP: login, overview, explorer, entry.

The browser test (tests/e2e/test_dashboard_browser.py) drives the same pages in Chromium;
these checks are the fast, browser-free half: redirects, cookies, panels, escaping.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.api_server import RunningServer, running_server


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
