"""Exports of a signed energy report: JSON (the signed document itself), CSV of every
site's figures, and one readable HTML page.

Every figure stays an integer in the JSON and the CSV; the page shows energy in MWh
(from kWh, exactly), mined coins in BTC with satoshis beneath, money in the currency's
units from its minor units, and percentages from basis points. Everything is escaped.
"""

from __future__ import annotations

import csv
import io
from html import escape
from pathlib import Path
from typing import Any

from reserve import present
from reserve.mining.basis import minor_digits
from reserve.reconcile.export import _stylesheet, write_files
from reserve.statement.export import to_json

CSV_FIELDS = ("site", "kind", "operator", "capacity_kw", "energy_kwh", "allocated_kwh",
              "utilisation_bp", "readings", "straddling_readings", "tariff_minor_per_kwh",
              "currency", "tariff_paid_minor", "mined_sats", "payouts", "sats_per_mwh",
              "revenue_minor", "revenue_per_mwh_minor", "margin_per_mwh_minor",
              "efficiency_mj_per_th", "expected_sats", "yield_bp")

__all__ = ["to_csv", "to_html", "to_json", "write_exports"]


def to_csv(document: dict[str, Any]) -> str:
    """One row per site, then a `total` row (empty where a total means nothing)."""
    body = document["report"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in body["sites"]:
        writer.writerow(["" if row.get(k) is None else row[k] for k in CSV_FIELDS])
    total = body["total"]
    writer.writerow(["total", "", "", "", total["energy_kwh"], total["allocated_kwh"], "", "",
                     "", "", "", "", total["mined_sats"], "", total["sats_per_mwh"] or "",
                     "", "", "", "", "", ""])
    return out.getvalue()


def money(minor: int | None, currency: str) -> str:
    """Minor units as the currency's units, exactly: 712345 USD -> 7,123.45 USD."""
    if minor is None:
        return "-"
    digits = minor_digits(currency)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10 ** digits)
    return f"{sign}{whole:,}" + (f".{part:0{digits}d}" if digits else "") + f" {currency}"


def percent(bp: int | None) -> str:
    return "-" if bp is None else f"{bp // 100}.{bp % 100:02d}%"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _btc(sats: int | None) -> str:
    if sats is None:
        return "-"
    return f"{escape(present.format_amount(sats, 'BTC'))}<small>{sats} sat</small>"


def _site_rows(body: dict[str, Any]) -> str:
    price = body.get("price")
    rows = []
    for row in body["sites"]:
        currency = price["currency"] if price else row["currency"]
        rows.append(
            f"<tr><td>{escape(row['site'])}<br><small>{escape(row['operator'])}</small></td>"
            f"<td>{escape(row['kind'])}</td>"
            f"<td class='num'>{row['capacity_kw']:,} kW</td>"
            f"<td class='num'>{escape(row['energy_mwh'])}</td>"
            f"<td class='num'>{percent(row['utilisation_bp'])}</td>"
            f"<td class='num'>{_btc(row['mined_sats'])}</td>"
            f"<td class='num'>{_count(row['sats_per_mwh'])}</td>"
            f"<td class='num'>{escape(money(row['revenue_per_mwh_minor'], currency))}</td>"
            f"<td class='num'>{escape(money(row['tariff_per_mwh_minor'], row['currency']))}</td>"
            f"<td class='num'>{percent(row['yield_bp'])}</td></tr>")
    return "".join(rows)


def to_html(document: dict[str, Any]) -> str:
    body, signature = document["report"], document["signature"]
    period, total, ledger = body["period"], body["total"], body["ledger"]
    price, difficulty = body.get("price"), body.get("difficulty")
    anomalies = "".join(f"<li><strong>{escape(a['kind'].replace('_', ' '))}</strong>: "
                        f"{escape(a['detail'])}</li>" for a in body["anomalies"])
    stated = []
    if price:
        stated.append(f"<dt>BTC price</dt><dd>{escape(price['text'])} "
                      f"(source: {escape(price['source'])})</dd>")
    if difficulty:
        stated.append(f"<dt>Network difficulty</dt><dd>{escape(difficulty['difficulty'])}, "
                      f"block reward {difficulty['block_reward_sats']:,} sat "
                      f"(source: {escape(difficulty['source'])})</dd>")
    matches = "equal to" if total["matches_statement"] else "NOT equal to"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Energy report {escape(signature['report_sha256'][:16])}</title>
<style>{_stylesheet()}</style></head><body>
<header class="top"><span class="brand">Sovereign Reserve Ledger</span>
<span>Energy report</span></header>
<main>
<h1>Electricity allocation: energy in, bitcoin out</h1>
<p>{escape(period['start'])} to {escape(period['end'])}; report SHA-256
<code class="hash">{escape(signature['report_sha256'])}</code></p>
<section class="card"><h2>Per site</h2>
<table><thead><tr><th>Site</th><th>Kind</th><th>Capacity</th><th>Energy</th>
<th>Utilisation</th><th>Mined</th><th>sat/MWh</th><th>Revenue/MWh</th><th>Tariff/MWh</th>
<th>Yield vs expected</th></tr></thead><tbody>{_site_rows(body)}</tbody></table>
<p>Total {escape(total['energy_mwh'])} of {total['allocated_kwh']:,} kWh allocated; mined
{escape(present.amount_words(total['mined_sats'], present.BTC))}, {matches} the statement's
mining flow of {escape(present.amount_words(total['statement_mining_sats'], present.BTC))}.
</p></section>
<section class="card"><h2>Anomalies ({len(body['anomalies'])})</h2>
{f'<ul>{anomalies}</ul>' if anomalies else '<p>None.</p>'}</section>
<section class="card"><h2>Computed against</h2><dl class="facts">
<dt>Statement</dt><dd><code class="hash">{escape(body['statement_sha256'])}</code></dd>
<dt>Ledger checkpoint</dt><dd>{ledger['tree_size']} entries, root <code class="hash">{escape(ledger['root_hash'])}</code></dd>
{''.join(stated)}
<dt>Created</dt><dd>{escape(body['created'])}</dd>
<dt>Signed by</dt><dd><code class="hash">{escape(signature['key'])}</code></dd>
</dl></section>
</main>
<footer>Signed by the auditor; check it with <code>reserve mining verify</code>.</footer>
</body></html>
"""


def write_exports(document: dict[str, Any], folder: Path) -> Path:
    """JSON, CSV and HTML into `folder`; returns their stem `energy-report-<16 hex>`."""
    return write_files(folder, f"energy-report-{document['signature']['report_sha256'][:16]}",
                       to_json(document), to_csv(document), to_html(document))
