"""/docs and /redoc work offline: local assets only, served, under a CSP that lets them run.

FastAPI's own pages load Swagger UI and ReDoc from a CDN; ours point at the copies
scripts/setup.sh vendors from npm into reserve/api/static/vendor/ (see
reserve/api/docs_pages.py). The browser half (the page renders with every non-local
request blocked) is tests/e2e/test_api_docs_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reserve.api import docs_pages
from reserve.api.app import create_app

URL_ATTRIBUTE = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*'([^']+)'""")
pytestmark = pytest.mark.skipif(bool(docs_pages.missing_assets()),
                                reason="run scripts/setup.sh (vendors Swagger UI and ReDoc)")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(f"sqlite:///{tmp_path / 'ledger.sqlite'}")) as answering:
        yield answering


def referenced_urls(html: str) -> list[str]:
    return [first or second for first, second in URL_ATTRIBUTE.findall(html)]


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_pages_reference_only_this_server(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = referenced_urls(page.text)
    assert urls, page.text
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "http://" not in page.text and "https://" not in page.text


@pytest.mark.parametrize(("url", "content_type"), [
    (docs_pages.SWAGGER_JS, "text/javascript"), (docs_pages.SWAGGER_CSS, "text/css"),
    (docs_pages.REDOC_JS, "text/javascript"), (docs_pages.FAVICON, "image/svg+xml")])
def test_the_assets_are_served_with_their_content_type(client: TestClient, url: str,
                                                       content_type: str) -> None:
    answer = client.get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(content_type)
    assert len(answer.content) > 100


def test_swagger_ui_runs_under_a_csp_without_unsafe_inline_scripts(client: TestClient) -> None:
    page = client.get("/docs")
    policy = page.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    # The one inline script FastAPI writes is allowed by its hash, not by 'unsafe-inline'.
    assert "unsafe-inline" not in directives["script-src"]
    [inline] = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert docs_pages.script_hashes(f"<script>{inline}</script>")[0] in directives["script-src"]
    assert directives["connect-src"] == "'self'"
    assert page.headers["x-frame-options"] == "DENY"


def test_redoc_may_style_inline_but_runs_only_local_scripts(client: TestClient) -> None:
    policy = client.get("/redoc").headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert "'unsafe-inline'" in directives["style-src"]
    assert directives["connect-src"] == "'self'"


def test_every_other_page_keeps_the_strict_policy(client: TestClient) -> None:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert "unsafe-inline" not in answer.headers["content-security-policy"]


def test_without_the_vendored_files_the_page_says_what_to_run(tmp_path: Path) -> None:
    assert docs_pages.missing_assets(tmp_path) == list(docs_pages.ASSETS)
    assert docs_pages.missing_assets() == []


def test_the_hash_is_the_browsers_sha256_of_the_script_text() -> None:
    # CSP hashes the script's text exactly as written, whitespace included (base64 of
    # SHA-256): "alert(1)" is the well-known example.
    assert docs_pages.script_hashes("<script>alert(1)</script>") == [
        "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"]
