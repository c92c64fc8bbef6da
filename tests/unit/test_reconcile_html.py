"""The HTML reconciliation report: the dashboard's look, real units, no empty sections.

Built from hand-made report documents shaped as `run_report` writes them (the Bitcoin
section in satoshis, the EVM section in wei as decimal strings, a token as its contract
address), so each property is checked on its own: the page stands alone with the
dashboard's stylesheet inlined; BTC, ETH and the token read in their own units (the
token by the symbol and decimals its contract reports, never "wei" or its address); the
base units stay on the page, exactly; a report without findings or without EVM vaults has
no such section; and everything from the document is escaped.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from reserve import present
from reserve.reconcile import export

TOKEN = "0xb1E5Ad2F5c6B3dE0d9F5d0a9c5f9e0f3b7a803aF"
TOKENS = {TOKEN: present.token_unit("tRGT", 18)}


def document(findings: bool = False, evm: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "summary": [{"vault_id": "national-btc", "asset": "BTC", "ledger": 15_094_999_100,
                     "chain": 15_094_999_100, "difference": 0, "status": "ok"}],
        "findings": [],
        "block": {"network": "regtest", "height": 212, "blockhash": "ab" * 32},
        "ledger": {"tree_size": 77, "root_hash": "cd" * 32, "note": "origin\n77\nroot\n"},
        "created": "2026-12-03T10:00:00Z"}
    if evm:
        body["evm"] = {
            "block": {"chain_id": 31337, "number": 41, "hash": "0x" + "ef" * 32},
            "vaults": [{"vault_id": "reserve-safe", "safe": "0x" + "11" * 20,
                        "assets": ["ETH", TOKEN], "from_block": 3}],
            "summary": [
                {"vault_id": "reserve-safe", "asset": "ETH", "ledger": str(49_250 * 10**15),
                 "chain": str(49_250 * 10**15), "difference": "0", "status": "ok",
                 "unit": "wei"},
                {"vault_id": "reserve-safe", "asset": TOKEN, "ledger": str(10**23),
                 "chain": str(10**23), "difference": "0", "status": "ok", "unit": "wei"}],
            "findings": []}
    if findings:
        body["summary"][0].update(chain=15_095_002_100, difference=3_000, status="discrepancy")
        body["findings"].append({
            "severity": "high", "kind": "unrecorded_deposit", "vault_id": "national-btc",
            "asset": "BTC", "txid": "99" * 32, "amount_sats": 3_000, "difference_sats": 3_000,
            "outpoints": [], "ledger_seqs": [], "detail": "a deposit <not> in the ledger"})
    return {"report": body, "signature": {"report_sha256": "12" * 32, "key": "auditor+key"}}


def test_the_page_stands_alone_in_the_dashboards_look() -> None:
    page = export.to_html(document(), TOKENS)
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL)
    assert style is not None
    assert export.DASHBOARD_CSS.read_text().strip() in style.group(1)
    assert 'class="top"' in page and "class='card'" in page and 'class="facts"' in page
    # The dashboard's own pieces: status badges, tables that scroll or reflow in their panel.
    assert "<span class='badge status-ok'>ok</span>" in page
    assert "<div class='table-wrap'><table class='reflow'>" in page
    # Status classes of its own: the dashboard's .ok/.bad would recolour whole rows.
    assert "<tr class='status-ok'>" in page and "class='ok'" not in page
    # Nothing is fetched: no stylesheet link, no script, no image.
    assert "<link" not in page and "<script" not in page and "<img" not in page


def test_amounts_read_in_their_own_units_with_base_units_kept() -> None:
    page = export.to_html(document(), TOKENS)
    assert "150.94999100 BTC<small>15,094,999,100 sats</small>" in page
    assert "49.25 ETH<small>49,250,000,000,000,000,000 wei</small>" in page
    assert "100,000 tRGT<small>100,000,000,000,000,000,000,000 base units</small>" in page
    # The token is named by its symbol, never by its contract address or as "wei".
    assert TOKEN not in page
    assert page.count(" wei</small>") == 3  # the ETH row only: ledger, chain, difference
    assert "EVM vaults (wei)" not in page


def test_a_token_the_caller_could_not_name_stays_in_base_units_under_its_address() -> None:
    page = export.to_html(document())
    assert f"<td data-label='asset'>{TOKEN}</td>" in page
    assert "100,000,000,000,000,000,000,000 base units</td>" in page
    assert "base units</small>" not in page


def test_a_clean_report_has_no_findings_section() -> None:
    page = export.to_html(document(), TOKENS)
    assert "<h2>Findings</h2>" not in page and "none</td>" not in page
    assert "0 finding(s)" in page and 'class="badge status-ok">OK</span>' in page


def test_findings_are_listed_once_with_the_status_first() -> None:
    page = export.to_html(document(findings=True), TOKENS)
    assert page.count("<h2>Findings</h2>") == 1
    assert page.index("DISCREPANCY") < page.index("<h2>Findings</h2>")
    assert "<tr class='status-high'><td data-label='severity'>high</td>" in page
    assert "0.00003000 BTC<small>3,000 sats</small>" in page
    assert "a deposit &lt;not&gt; in the ledger" in page


def test_a_bitcoin_only_report_has_no_evm_section() -> None:
    page = export.to_html(document(evm=False))
    assert "EVM" not in page
    assert page.count("<table") == 1


def test_an_evm_finding_names_the_token_too() -> None:
    report = document()
    report["report"]["evm"]["findings"].append({
        "severity": "critical", "kind": "unauthorised_outflow", "vault_id": "reserve-safe",
        "asset": TOKEN, "txid": "0x" + "77" * 32, "amount": str(5 * 10**17),
        "difference": str(-5 * 10**17), "unit": "wei", "detail": "sent without approval",
        "ledger_seqs": [3]})
    page = export.to_html(report, TOKENS)
    assert "<tr class='status-critical'><td data-label='severity'>critical</td>" in page
    assert "<td data-label='asset'>tRGT</td>" in page
    assert "-0.5 tRGT<small>-500,000,000,000,000,000 base units</small>" in page
    assert "1 finding(s)" in page


def test_the_document_is_not_changed_and_the_exports_agree(tmp_path: Any) -> None:
    report = document(findings=True)
    before = copy.deepcopy(report)
    stem = export.write_exports(report, tmp_path, TOKENS)
    assert report == before
    assert stem.with_suffix(".html").read_text() == export.to_html(report, TOKENS)
