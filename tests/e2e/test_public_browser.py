"""Anyone opens the public portal in a real browser, with no login.

A fresh Chromium (no cookie, no token) opens every /public page at 1400 and 390 px: each
answers 200 without a redirect to the login page, the latest checkpoint's signature is
checked in the browser (WebCrypto), the flows page draws its charts, the energy page lists the sites of its report, and no page scrolls
sideways. Screenshots in test-artifacts/public/ (`1400-holdings.png` is the front page).

Driven by tests/e2e/public.mjs (playwright-core from node_modules, Debian's chromium).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from reserve.config import PublicSettings
from tests.e2e.test_dashboard_browser import ROOT, pytestmark  # noqa: F401
from tests.support.api_server import running_server
from tests.support.public_portal import SECOND, seed

ARTIFACTS = ROOT / "test-artifacts" / "public"


def test_anyone_reads_the_portal_in_a_browser(tmp_path: Path) -> None:
    settings = PublicSettings(enabled=True, statements_dir=tmp_path / "statements",
                              energy_reports_dir=tmp_path / "mining", burst=1_000)
    with running_server(f"sqlite:///{tmp_path}/ledger.sqlite", public=settings) as server:
        seed(server, tmp_path / "statements")
        result = subprocess.run(
            ["node", str(ROOT / "tests" / "e2e" / "public.mjs"), "--base", server.base_url,
             "--out", str(ARTIFACTS), "--statement", SECOND],
            capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    for path, page in seen["pages"].items():
        assert page["status"] == 200, path
        assert "/login" not in page["url"], path
    assert seen["pages"]["/public"]["h1"] == "Public-sector holdings"
    assert seen["pages"]["/public/verify"]["h1"] == "Verify it yourself"
    assert "19.77494500 BTC" in seen["consolidated"]
    assert seen["note_check"] == "note-check ok"
    assert seen["charts"] == 4
    assert seen["pages"]["/public/energy"]["h1"] == "Electricity allocation: energy in, bitcoin out"
    assert seen["energy_sites"] == 2
    assert seen["cookies"] == 0
    for key, layout in seen["layout"].items():
        assert layout["page_overflow"] <= 0 and layout["outside"] == [], (key, layout)
    assert seen["console_errors"] == []
    assert (ARTIFACTS / "1400-holdings.png").exists()
    assert (ARTIFACTS / "390-verify.png").exists()
    assert (ARTIFACTS / "390-energy.png").exists()
