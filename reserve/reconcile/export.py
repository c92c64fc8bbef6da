"""Exports of a signed report: JSON (the signed document itself), CSV of findings, HTML.

The HTML page puts first what a reader needs first: the overall status, then per vault and
asset the ledger balance, the chain balance and the difference, then the findings with
the most serious at the top, and last what it was computed against (block, checkpoint,
signature). Everything is escaped; amounts are shown in satoshis and BTC, exactly.
"""

from __future__ import annotations

import csv
import io
import json
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


def _amount(sats: int) -> str:
    return present.base_units_words(sats, present.BTC)


def _evm_html(evm: dict[str, Any] | None) -> str:
    """EVM vaults (amounts in wei, as decimal strings): balances, then findings."""
    if not evm:
        return ""
    rows = "".join(
        f"<tr class='{escape(r['status'])}'><td>{escape(r['vault_id'])}</td>"
        f"<td>{escape(r['asset'])}</td><td>{escape(r['ledger'])}</td><td>{escape(r['chain'])}"
        f"</td><td><b>{escape(r['difference'])}</b></td><td>{escape(r['status'])}</td></tr>"
        for r in evm["summary"])
    findings = "".join(
        f"<tr class='{escape(f['severity'])}'><td>{escape(f['severity'])}</td>"
        f"<td>{escape(f['kind'])}</td><td>{escape(f['vault_id'])}</td>"
        f"<td>{escape(f['difference'])}</td><td>{escape(f['detail'])}</td>"
        f"<td><code>{escape(f['txid'] or '')}</code></td></tr>" for f in evm["findings"])
    block = evm["block"]
    return (f"<h2>EVM vaults (wei) at block {block['number']} <code>{escape(block['hash'])}"
            f"</code>, chain {block['chain_id']}</h2><table><tr><th>Vault</th><th>Asset</th>"
            f"<th>Ledger</th><th>Chain</th><th>Difference</th><th>Status</th></tr>{rows}"
            f"</table><table><tr><th>Severity</th><th>Kind</th><th>Vault</th><th>Difference"
            f"</th><th>What</th><th>Transaction</th></tr>"
            f"{findings or '<tr><td colspan=6>none</td></tr>'}</table>")


def to_html(document: dict[str, Any]) -> str:
    body, signature = document["report"], document["signature"]
    status = overall_status(body)
    rows = "".join(
        f"<tr class='{escape(r['status'])}'><td>{escape(r['vault_id'])}</td>"
        f"<td>{escape(r['asset'])}</td><td>{_amount(r['ledger'])}</td>"
        f"<td>{_amount(r['chain'])}</td><td><b>{_amount(r['difference'])}</b></td>"
        f"<td>{escape(r['status'])}</td></tr>" for r in body["summary"])
    findings = "".join(
        f"<tr class='{escape(f['severity'])}'><td>{escape(f['severity'])}</td>"
        f"<td>{escape(f['kind'])}</td><td>{escape(f['vault_id'])}</td>"
        f"<td>{_amount(f['difference_sats'])}</td><td>{escape(f['detail'])}</td>"
        f"<td><code>{escape(f['txid'] or '')}</code></td></tr>" for f in body["findings"])
    block, ledger = body["block"], body["ledger"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reconciliation report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.critical{{background:#fdd}}
.discrepancy,.high{{background:#ffe9c7}}.ok{{background:#e6f6e6}}</style></head><body>
<h1>Reconciliation: <span class="{escape(status)}">{escape(status.upper())}</span></h1>
<p>{len(body['findings'])} finding(s) at block {block['height']} ({escape(block['network'])}),
report SHA-256 <code>{escape(signature['report_sha256'])}</code></p>
<h2>Balances</h2><table><tr><th>Vault</th><th>Asset</th><th>Ledger</th><th>Chain</th>
<th>Difference</th><th>Status</th></tr>{rows}</table>
{_evm_html(body.get("evm"))}<h2>Findings</h2><table><tr><th>Severity</th><th>Kind</th><th>Vault</th><th>Difference</th>
<th>What</th><th>Transaction</th></tr>{findings or '<tr><td colspan=6>none</td></tr>'}</table>
<h2>Computed against</h2><ul>
<li>Block {block['height']} <code>{escape(block['blockhash'])}</code></li>
<li>Ledger checkpoint: {ledger['tree_size']} entries, root <code>{escape(ledger['root_hash'])}</code></li>
<li>Created {escape(body['created'])}; signed by <code>{escape(signature['key'])}</code></li>
</ul><pre>{escape(ledger['note'])}</pre></body></html>
"""


def write_exports(document: dict[str, Any], folder: Path) -> Path:
    """Write the report's JSON, CSV and HTML exports into `folder`; returns their common
    stem (`report-<first 16 hex of the report hash>`)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"report-{document['signature']['report_sha256'][:16]}"
    stem.with_suffix(".json").write_text(to_json(document))
    stem.with_suffix(".csv").write_text(findings_csv(document))
    stem.with_suffix(".html").write_text(to_html(document))
    return stem
