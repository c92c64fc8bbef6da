"""Exports of a signed statement: JSON (the signed document itself), CSV of every figure
with its transactions, and one readable HTML page.

The page shows first the public sector's consolidated account (opening stock, each class
of flow, closing stock), then each wallet's, then what it was computed from (blocks,
checkpoint, signature). Amounts are shown in BTC, exactly, with satoshis beneath; the CSV
and JSON keep integer satoshis. Everything is escaped.
"""

from __future__ import annotations

import csv
import io
import json
from html import escape
from pathlib import Path
from typing import Any

from reserve import present
from reserve.reconcile.export import _stylesheet, write_files

CSV_FIELDS = ("scope", "wallet", "row", "class", "sats", "txids")


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _account_rows(scope: str, wallet: str, account: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [[scope, wallet, "opening", "", account["opening_sats"], ""]]
    rows += [[scope, wallet, "flow", f["class"], f["sats"], " ".join(f["txids"])]
             for f in account["flows"]]
    rows.append([scope, wallet, "closing", "", account["closing_sats"], ""])
    return rows


def to_csv(document: dict[str, Any]) -> str:
    """One row per figure: opening, each flow (with its txids), closing; consolidated
    first, then each wallet."""
    body = document["report"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    writer.writerows(_account_rows("consolidated", "", body["consolidated"]))
    for wallet in body["wallets"]:
        writer.writerows(_account_rows("wallet", wallet["wallet"], wallet))
    return out.getvalue()


def _btc(sats: int) -> str:
    return f"{escape(present.format_amount(sats, 'BTC'))}<small>{sats} sat</small>"


def _table(account: dict[str, Any]) -> str:
    rows = [f"<tr><th>Opening stock</th><td class='num'>{_btc(account['opening_sats'])}"
            "</td><td></td></tr>"]
    for flow in account["flows"]:
        txids = " ".join(f"<code class='hash'>{escape(t)}</code>" for t in flow["txids"])
        rows.append(f"<tr><td>{escape(flow['class'])}</td><td class='num'>"
                    f"{_btc(flow['sats'])}</td><td class='small'>{txids}</td></tr>")
    rows.append(f"<tr><th>Closing stock</th><td class='num'>{_btc(account['closing_sats'])}"
                "</td><td></td></tr>")
    return ("<table><thead><tr><th>Figure</th><th>Amount</th><th>Transactions</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def to_html(document: dict[str, Any]) -> str:
    body, signature = document["report"], document["signature"]
    blocks, ledger = body["blocks"], body["ledger"]
    registry = {w["name"]: w for w in body["registry"]}
    wallets = "\n".join(
        f"<section class='card'><h2>{escape(w['wallet'])}</h2><p>"
        f"{escape(registry[w['wallet']]['institution'])}, "
        f"{escape(registry[w['wallet']]['role'])} "
        f"({escape(registry[w['wallet']]['custody'])})</p>{_table(w)}</section>"
        for w in body["wallets"])
    promised = "".join(
        f"<li><strong>{'kept' if c['kept'] else 'BROKEN'}</strong>: {escape(c['text'])}"
        + ("" if c["kept"] else " (" + escape("; ".join(c["findings"])) + ")") + "</li>"
        for c in body.get("commitments", []))
    commitments = (f"<section class='card'><h2>Commitments</h2><ul>{promised}</ul></section>"
                   if promised else "")
    period = body["period"]
    when = (f"{escape(period['start'])} to {escape(period['end'])}"
            if period.get("start") else "by block height")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Public-sector statement {escape(signature['report_sha256'][:16])}</title>
<style>{_stylesheet()}</style></head><body>
<header class="top"><span class="brand">Sovereign Reserve Ledger</span>
<span>Public-sector statement</span></header>
<main>
<h1>Public-sector Bitcoin statement</h1>
<p>Blocks {blocks['start_height']} to {blocks['end_height']} ({when}); statement SHA-256
<code class="hash">{escape(signature['report_sha256'])}</code></p>
<section class="card"><h2>Consolidated (internal transfers eliminated)</h2>
{_table(body['consolidated'])}</section>
{commitments}
{wallets}
<section class="card"><h2>Computed against</h2><dl class="facts">
<dt>First block</dt><dd>{blocks['start_height']} <code class="hash">{escape(blocks['start_hash'])}</code></dd>
<dt>Last block</dt><dd>{blocks['end_height']} <code class="hash">{escape(blocks['end_hash'])}</code> ({escape(blocks['network'])})</dd>
<dt>Ledger checkpoint</dt><dd>{ledger['tree_size']} entries, root <code class="hash">{escape(ledger['root_hash'])}</code></dd>
<dt>Created</dt><dd>{escape(body['created'])}</dd>
<dt>Signed by</dt><dd><code class="hash">{escape(signature['key'])}</code></dd>
</dl></section>
</main>
<footer>Signed by the auditor; check it with <code>reserve statement verify</code>.</footer>
</body></html>
"""


def write_exports(document: dict[str, Any], folder: Path) -> Path:
    """JSON, CSV and HTML into `folder`; returns their stem `statement-<16 hex>`."""
    return write_files(folder, f"statement-{document['signature']['report_sha256'][:16]}",
                       to_json(document), to_csv(document), to_html(document))
