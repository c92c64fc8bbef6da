"""An integrator opens the API documentation on a machine with no internet access.

The service runs with its ledger; a headless Chromium opens /docs (Swagger UI) and /redoc
with every request to another origin blocked, and must see the operations list rendered
from /openapi.json, with no blocked request, no console error (a Content-Security-Policy
refusal would be one; the only one allowed is ReDoc's own logo, which it links from its
CDN and drops when the policy refuses it) and only this server's URLs fetched. Screenshots are saved in
test-artifacts/api-docs/.

Driven by tests/e2e/api_docs.mjs (playwright-core from node_modules, Debian's chromium).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reserve.api import docs_pages
from tests.support.api_server import running_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "api-docs"
REDOCLY_LOGO = "'https://cdn.redoc.ly/redoc/logo-mini.svg' violates the following Content " \
               "Security Policy directive: \"img-src 'self' data:\""

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which("node") is None
    or not (ROOT / "node_modules" / "playwright-core").exists()
    or bool(docs_pages.missing_assets()),
    reason="needs /usr/bin/chromium, node, playwright-core and the vendored docs assets "
           "(scripts/setup.sh)")


def test_the_api_documentation_renders_offline(tmp_path: Path) -> None:
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite") as server:
        if ARTIFACTS.exists():
            shutil.rmtree(ARTIFACTS)
        result = subprocess.run(
            ["node", str(ROOT / "tests" / "e2e" / "api_docs.mjs"), "--base", server.base_url,
             "--out", str(ARTIFACTS)],
            capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    assert seen["blocked"] == []
    # The one refusal: ReDoc's menu shows Redocly's logo from its CDN; the page's CSP stops
    # the load in the browser (no request is made) and ReDoc drops the image on the error.
    assert [error for error in seen["console_errors"] if REDOCLY_LOGO not in error] == []
    assert all(url.startswith("/") for url in seen["local_requests"]), seen["local_requests"]
    assert {"/docs", "/redoc", "/openapi.json", docs_pages.SWAGGER_JS, docs_pages.SWAGGER_CSS,
            docs_pages.REDOC_JS} <= set(seen["local_requests"])
    # Swagger UI: the title and every operation of the schema, one can be opened.
    assert seen["swagger_title"].startswith("Sovereign Reserve")
    assert seen["swagger_operations"] >= 20
    assert seen["swagger_expanded"] == 1
    # ReDoc: the title and its menu of operations.
    assert seen["redoc_title"].startswith("Sovereign Reserve")
    assert seen["redoc_menu_items"] >= 20
    for name in ("01-swagger-ui", "02-redoc"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 5000
