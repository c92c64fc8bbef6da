"""Exports of a signed report: JSON (the signed document itself), CSV of findings, HTML.

The HTML page puts first what a reader needs first: the overall status, then per vault and
asset the ledger balance, the chain balance and the difference, then the findings with
the most serious at the top, and last what it was computed against (block, checkpoint,
signature). Everything is escaped; amounts are shown in the asset's units (BTC, ETH, a
token's symbol and decimals), exactly, with the recorded base units beneath. The page
inlines the dashboard's stylesheet, so the file stands alone and reads like the dashboard;
a section with no rows (no findings, no EVM vaults) is left out.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from reserve import present

CSV_FIELDS = ("severity", "kind", "vault_id", "asset", "txid", "amount_sats", "difference_sats",
              "outpoints", "ledger_seqs", "detail")


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def findings_csv(document: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for finding in document["report"]["findings"]:
        writer.writerow([finding["severity"], finding["kind"], finding["vault_id"],
                         finding["asset"], finding["txid"] or "", finding["amount_sats"],
                         finding["difference_sats"], " ".join(finding["outpoints"]),
                         " ".join(str(s) for s in finding["ledger_seqs"]), finding["detail"]])
    for finding in document["report"].get("evm", {}).get("findings", []):  # amounts in wei
        writer.writerow([finding["severity"], finding["kind"], finding["vault_id"],
                         finding["asset"], finding["txid"] or "", f"{finding['amount']} wei",
                         f"{finding['difference']} wei", "",
                         " ".join(str(s) for s in finding["ledger_seqs"]), finding["detail"]])
    return out.getvalue()


def overall_status(body: dict[str, Any]) -> str:
    statuses = {row["status"] for row in [*body["summary"], *body.get("evm", {}).get("summary", [])]}
    return next((s for s in ("critical", "discrepancy") if s in statuses), "ok")


# The dashboard's stylesheet, inlined into each page so a report file stands alone and
# reads like the dashboard (read at export time: one look for both, however it changes).
DASHBOARD_CSS = Path(__file__).resolve().parents[1] / "api" / "static" / "app.css"
REPORT_CSS = """
h1 .badge { font-size: 20px; padding: 2px 12px; }
td.num { text-align: right; }
td.num small { display: block; color: var(--muted, #5c6670); font-size: 12px; }
tr.status-discrepancy td, tr.status-high td { background: #fff8c5; }
tr.status-critical td { background: #ffebe9; }
section.card { margin-bottom: 16px; }
"""


def _stylesheet() -> str:
    """app.css (when this installation has the dashboard's folder) and the report's own."""
    shared = DASHBOARD_CSS.read_text() if DASHBOARD_CSS.is_file() else ""
    return (shared + REPORT_CSS).replace("</", "<\\/")  # nothing can close the <style>


def _asset(asset: str, tokens: Mapping[str, present.Unit]) -> str:
    """'BTC', 'ETH', a token's symbol; an unknown token by its contract address."""
    return escape(present.unit_of(asset, tokens).symbol)


def _cell(amount: int, asset: str, tokens: Mapping[str, present.Unit], label: str,
          bold: bool = False) -> str:
    """An amount in its asset's units, exactly, with the recorded base units under it."""
    unit = present.unit_of(asset, tokens)
    base = f"{present.decimal_text(amount, 0)} {unit.base_plural}"
    if unit.decimals == 0:  # a token nobody named: its base units, its address beside
        shown, under = escape(base), ""
    else:
        shown = escape(f"{present.decimal_text(amount, unit.decimals, unit.places_min)} "
                       f"{unit.symbol}")
        under = f"<small>{escape(base)}</small>"
    return f"<td class='num' data-label='{label}'>{f'<b>{shown}</b>' if bold else shown}" \
           f"{under}</td>"


def _balances(rows: list[dict[str, Any]], tokens: Mapping[str, present.Unit]) -> str:
    return "".join(
        f"<tr class='status-{escape(r['status'])}'><td data-label='vault'>"
        f"{escape(r['vault_id'])}</td><td data-label='asset'>{_asset(r['asset'], tokens)}</td>"
        f"{_cell(int(r['ledger']), r['asset'], tokens, 'ledger')}"
        f"{_cell(int(r['chain']), r['asset'], tokens, 'chain')}"
        f"{_cell(int(r['difference']), r['asset'], tokens, 'difference', bold=True)}"
        f"<td data-label='status'><span class='badge status-{escape(r['status'])}'>"
        f"{escape(r['status'])}</span></td></tr>" for r in rows)


def _finding_rows(findings: list[dict[str, Any]], difference_key: str,
                  tokens: Mapping[str, present.Unit]) -> str:
    return "".join(
        f"<tr class='status-{escape(f['severity'])}'><td data-label='severity'>"
        f"{escape(f['severity'])}</td><td data-label='kind'>{escape(f['kind'])}</td>"
        f"<td data-label='vault'>{escape(f['vault_id'])}</td>"
        f"<td data-label='asset'>{_asset(f['asset'], tokens)}</td>"
        f"{_cell(int(f[difference_key]), f['asset'], tokens, 'difference')}"
        f"<td data-label='what'>{escape(f['detail'])}</td><td data-label='transaction'>"
        f"<code class='hash'>{escape(f['txid'] or '')}</code></td></tr>" for f in findings)


BALANCE_HEAD = ("<div class='table-wrap'><table class='reflow'><thead><tr><th>Vault</th>"
                "<th>Asset</th><th>Ledger</th><th>Chain</th><th>Difference</th><th>Status</th>"
                "</tr></thead>")
FINDING_HEAD = ("<div class='table-wrap'><table class='reflow'><thead><tr><th>Severity</th>"
                "<th>Kind</th><th>Vault</th><th>Asset</th><th>Difference</th><th>What</th>"
                "<th>Transaction</th></tr></thead>")
TABLE_END = "</table></div>"


def _sections(body: dict[str, Any], tokens: Mapping[str, present.Unit]) -> str:
    """Balances per chain, then the findings, each only when it has rows."""
    block, evm = body["block"], body.get("evm") or {}
    parts = []
    if body["summary"]:
        parts.append(f"<section class='card'><h2>Bitcoin vaults at block {block['height']} "
                     f"({escape(block['network'])})</h2>{BALANCE_HEAD}"
                     f"{_balances(body['summary'], tokens)}{TABLE_END}</section>")
    if evm.get("summary"):
        pin = evm["block"]
        parts.append(f"<section class='card'><h2>EVM vaults at block {pin['number']} (chain "
                     f"{pin['chain_id']})</h2><p class='hint'>block <code class='hash'>"
                     f"{escape(pin['hash'])}</code></p>{BALANCE_HEAD}"
                     f"{_balances(evm['summary'], tokens)}{TABLE_END}</section>")
    findings = _finding_rows(body["findings"], "difference_sats", tokens) + \
        _finding_rows(evm.get("findings", []), "difference", tokens)
    if findings:
        parts.append(f"<section class='card'><h2>Findings</h2>{FINDING_HEAD}{findings}"
                     f"{TABLE_END}</section>")
    return "\n".join(parts)


def to_html(document: dict[str, Any], tokens: Mapping[str, present.Unit] | None = None) -> str:
    """The report as one self-contained page in the dashboard's look.

    `tokens` names each token (by the contract address the report uses as its asset) with
    its symbol and decimals, as the token's contract reports them; a token not named there
    is shown in base units under its address. Empty sections are left out.
    """
    named = dict(tokens or {})
    body, signature = document["report"], document["signature"]
    status = overall_status(body)
    count = len(body["findings"]) + len((body.get("evm") or {}).get("findings", []))
    block, ledger = body["block"], body["ledger"]
    evm_block = (body.get("evm") or {}).get("block")
    evm_line = (f"<dt>EVM block</dt><dd>{evm_block['number']} <code class='hash'>"
                f"{escape(evm_block['hash'])}</code> (chain {evm_block['chain_id']})</dd>"
                if evm_block else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reconciliation report {escape(signature['report_sha256'][:16])}</title>
<style>{_stylesheet()}</style></head><body>
<header class="top"><span class="brand">Sovereign Reserve Ledger</span>
<span>Reconciliation report</span></header>
<main>
<h1>Reconciliation: <span class="badge status-{escape(status)}">{escape(status.upper())}</span></h1>
<p>{count} finding(s); report SHA-256 <code class="hash">{escape(signature['report_sha256'])}</code></p>
{_sections(body, named)}
<section class="card"><h2>Computed against</h2><dl class="facts">
<dt>Block</dt><dd>{block['height']} <code class="hash">{escape(block['blockhash'])}</code> ({escape(block['network'])})</dd>
{evm_line}<dt>Ledger checkpoint</dt><dd>{ledger['tree_size']} entries, root <code class="hash">{escape(ledger['root_hash'])}</code></dd>
<dt>Created</dt><dd>{escape(body['created'])}</dd>
<dt>Signed by</dt><dd><code class="hash">{escape(signature['key'])}</code></dd>
</dl><pre class="small">{escape(ledger['note'])}</pre></section>
</main>
<footer>Signed by the auditor; check it with <code>reserve reconcile verify</code>.</footer>
</body></html>
"""


def write_exports(document: dict[str, Any], folder: Path,
                  tokens: Mapping[str, present.Unit] | None = None) -> Path:
    """Write the report's JSON, CSV and HTML exports into `folder`; returns their common
    stem (`report-<first 16 hex of the report hash>`). `tokens`: as for `to_html`."""
    return write_files(folder, f"report-{document['signature']['report_sha256'][:16]}",
                       to_json(document), findings_csv(document), to_html(document, tokens))


def write_files(folder: Path, name: str, json_text: str, csv_text: str, html_text: str
                ) -> Path:
    """`folder/name.json`, `.csv` and `.html` (the folder made if need be); their stem."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / name
    stem.with_suffix(".json").write_text(json_text)
    stem.with_suffix(".csv").write_text(csv_text)
    stem.with_suffix(".html").write_text(html_text)
    return stem
