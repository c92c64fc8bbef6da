"""What the anonymous portal shows, built from the ledger alone (docs/public-portal.md).

Each function returns plain JSON-ready data and decides here, once, what may leave the
service: no actor, token id, request id or person's name is ever copied out of an entry.
Amounts are integer base units as strings (JSON numbers lose precision past 2**53), with
their decimal text beside them; with `show_amounts` off they are left out (null). The
names of a vault's custodians appear only with `show_custodians`. No node is called.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from reserve import present
from reserve.api import ledger_views
from reserve.api import reserve_views as views
from reserve.config import PublicSettings
from reserve.errors import EventError
from reserve.events.custody import BitcoinVaultRegistered, VaultRegistered
from reserve.events.mining import EnergyReportPublished
from reserve.events.records import CheckpointAnchored, LedgerAnchor
from reserve.events.transparency import StatementPublished, WalletRegistered
from reserve.transfers import readmodel

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
STATEMENTS_MAX = 500
ENERGY_REPORTS_MAX = 100


def _amount(value: int, asset: str, tokens: Any, shown: bool) -> dict[str, Any]:
    unit = present.unit_of(asset, tokens)
    if not shown:
        return {"base_units": None, "units": None, "symbol": unit.symbol,
                "decimals": unit.decimals}
    return {"base_units": str(value), "units": present.decimal_text(
        value, unit.decimals, unit.decimals, grouped=False), "symbol": unit.symbol,
        "decimals": unit.decimals}


def registry(ledger: Any) -> list[dict[str, Any]]:
    """Every registered public-sector wallet, in registration order: what a monitor needs."""
    found = []
    for entry in ledger.entries(kinds=(WalletRegistered.KIND,)):
        try:
            wallet = WalletRegistered.of(entry)
        except EventError:
            continue
        found.append({"wallet": wallet.name, "institution": wallet.institution,
                      "role": wallet.role, "custody": wallet.custody, "chain": wallet.chain,
                      "network": wallet.network, "descriptors": list(wallet.descriptors),
                      "addresses": [d[5:d.index(")")] for d in wallet.descriptors
                                    if d.startswith("addr(") and ")" in d],
                      "range_end": wallet.range_end, "birth_height": wallet.birth_height,
                      "registered": {"seq": entry.seq, "time": entry.time}})
    return found


def custodians(ledger: Any) -> list[dict[str, Any]]:
    """Each Bitcoin vault's custodians by name and institution (only with show_custodians)."""
    found = []
    for entry in ledger.entries(kinds=(VaultRegistered.KIND,)):
        try:
            vault = VaultRegistered.of(entry)
        except EventError:
            continue
        if isinstance(vault, BitcoinVaultRegistered):
            found.append({"vault": vault.vault, "threshold": vault.threshold,
                          "custodians": [{"name": str(c.get("name", "")),
                                          "institution": str(c.get("institution", ""))}
                                         for c in vault.custodians if isinstance(c, dict)]})
    return found


def wallets(ledger: Any, settings: PublicSettings) -> dict[str, Any]:
    answer: dict[str, Any] = {"wallets": registry(ledger)}
    if settings.show_custodians:
        answer["vault_custodians"] = custodians(ledger)
    return answer


def _flows(flows: Any, shown: bool) -> list[dict[str, Any]]:
    return [{"class": f["class"], **_amount(int(f["sats"]), "BTC", None, shown)}
            for f in flows]


def _statement(seq: int, time: str, event: StatementPublished, shown: bool) -> dict[str, Any]:
    consolidated = event.consolidated
    return {"statement_sha256": event.statement_sha256, "seq": seq, "published": time,
            "period": {"start": event.period_start or None, "end": event.period_end or None},
            "blocks": dict(event.blocks),
            "signature": {"algorithm": "ed25519", "key": event.auditor_key,
                          "value": event.signature},
            "consolidated": {
                "opening": _amount(int(consolidated["opening_sats"]), "BTC", None, shown),
                "closing": _amount(int(consolidated["closing_sats"]), "BTC", None, shown),
                "flows": _flows(consolidated["flows"], shown)},
            "wallets": [{"wallet": w["wallet"],
                         "opening": _amount(int(w["opening_sats"]), "BTC", None, shown),
                         "closing": _amount(int(w["closing_sats"]), "BTC", None, shown),
                         "flows": _flows(w["flows"], shown)} for w in event.wallets],
            # The state's commitments and whether this statement keeps them; findings name
            # amounts, so they follow show_amounts.
            "commitments": [{"id": str(c.get("id", "")), "text": str(c.get("text", "")),
                             "kept": bool(c.get("kept")),
                             "findings": [str(f) for f in c.get("findings", [])] if shown
                             else []}
                            for c in (event.commitments if isinstance(event.commitments, list)
                                      else []) if isinstance(c, dict)]}


def statements(ledger: Any, settings: PublicSettings) -> list[dict[str, Any]]:
    """Every published statement, oldest first (the latest STATEMENTS_MAX)."""
    found = []
    for entry in ledger.entries(kinds=(StatementPublished.KIND,)):
        try:
            event = StatementPublished.of(entry)
        except EventError:
            continue
        found.append(_statement(entry.seq, entry.time, event, settings.show_amounts))
    return found[-STATEMENTS_MAX:]


def statement_document(settings: PublicSettings, sha256: str) -> bytes | None:
    """The signed document `reserve statement build` exported for `sha256`, if it is in
    the statements folder and really is that statement; else None."""
    return _document(settings.statements_dir, f"statement-{sha256[:16]}.json", sha256)


def _document(folder: Path | None, name: str, sha256: str) -> bytes | None:
    if folder is None or not SHA256_HEX.match(sha256):
        return None
    path = Path(folder) / name
    try:
        data = path.read_bytes()
        document = json.loads(data)
        named = document["signature"]["report_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if named == sha256 else None


def _energy_report(seq: int, time: str, event: EnergyReportPublished,
                   shown: bool) -> dict[str, Any]:
    """One published energy report: energy is always public; mined coins, revenue and the
    anomalies' details (they name amounts) follow show_amounts."""
    def mined(value: Any) -> dict[str, Any] | None:
        return None if value is None else _amount(int(value), "BTC", None, shown)
    total = event.total
    return {"report_sha256": event.report_sha256, "seq": seq, "published": time,
            "period": dict(event.period), "statement_sha256": event.statement_sha256,
            "signature": {"algorithm": "ed25519", "key": event.auditor_key,
                          "value": event.signature},
            "price": event.price if shown else None,
            "sites": [{"site": r["site"], "kind": r["kind"], "operator": r["operator"],
                       "capacity_kw": r["capacity_kw"], "energy_kwh": r["energy_kwh"],
                       "energy_mwh": r["energy_mwh"], "allocated_kwh": r["allocated_kwh"],
                       "utilisation_bp": r["utilisation_bp"],
                       "utilisation": _percent(r["utilisation_bp"]),
                       "mined": mined(r["mined_sats"]),
                       "sats_per_mwh": r["sats_per_mwh"] if shown else None,
                       "tariff_per_mwh_minor": r["tariff_per_mwh_minor"],
                       "currency": r["currency"],
                       "revenue_per_mwh_minor": r["revenue_per_mwh_minor"] if shown else None,
                       "yield": _percent(r["yield_bp"])}
                      for r in event.sites],
            "total": {"energy_kwh": total["energy_kwh"], "energy_mwh": total["energy_mwh"],
                      "allocated_kwh": total["allocated_kwh"],
                      "mined": mined(total["mined_sats"]),
                      "matches_statement": bool(total["matches_statement"])},
            "anomalies": [{"kind": a["kind"], "site": a["site"],
                           "detail": a["detail"] if shown else None}
                          for a in event.anomalies]}


def _percent(bp: Any) -> str | None:
    return None if bp is None else f"{int(bp) // 100}.{int(bp) % 100:02d}%"


def energy_reports(ledger: Any, settings: PublicSettings) -> list[dict[str, Any]]:
    """The latest ENERGY_REPORTS_MAX published energy reports, newest first: one lookup
    in the kind index and one read per report, whatever the ledger's size."""
    found = []
    for seq in ledger.kind_sequences((EnergyReportPublished.KIND,), newest_first=True,
                                     limit=ENERGY_REPORTS_MAX):
        entry = ledger.entry(seq)
        try:
            event = EnergyReportPublished.of(entry)
        except EventError:
            continue
        found.append(_energy_report(entry.seq, entry.time, event, settings.show_amounts))
    return found


def energy_report_document(settings: PublicSettings, sha256: str) -> bytes | None:
    """The signed document `reserve mining report` exported for `sha256`, if it is in the
    energy reports folder and really is that report; else None."""
    return _document(settings.energy_reports_dir, f"energy-report-{sha256[:16]}.json", sha256)


def energy_report_exported(settings: PublicSettings, sha256: str) -> bool:
    """Whether the folder holds a file named for `sha256` (a cheap test for a page's link;
    the document route itself checks the file is that report)."""
    folder = settings.energy_reports_dir
    return folder is not None and SHA256_HEX.match(sha256) is not None and \
        (Path(folder) / f"energy-report-{sha256[:16]}.json").is_file()


def holdings(ledger: Any, settings: PublicSettings) -> dict[str, Any]:
    """Per wallet and asset, and consolidated: the latest statement's closing stock of each
    registered wallet (Bitcoin, at its pinned block), and each vault's balance as the
    ledger records it (every asset, from the holdings read model)."""
    shown = settings.show_amounts
    listed = statements(ledger, settings)
    latest = listed[-1] if listed else None
    known = {w["wallet"]: w for w in registry(ledger)}
    statement: dict[str, Any] | None = None
    if latest is not None:
        statement = {
            "statement_sha256": latest["statement_sha256"], "blocks": latest["blocks"],
            "period": latest["period"],
            "wallets": [{"wallet": w["wallet"], "asset": "BTC",
                         "institution": known.get(w["wallet"], {}).get("institution"),
                         "role": known.get(w["wallet"], {}).get("role"),
                         "custody": known.get(w["wallet"], {}).get("custody"),
                         **w["closing"]} for w in latest["wallets"]],
            "consolidated": [{"asset": "BTC", **latest["consolidated"]["closing"]}]}
    rows = readmodel.holdings(ledger)
    tokens = views.token_units(ledger) if rows else {}
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.asset] = totals.get(row.asset, 0) + row.balance
    return {"show_amounts": shown, "statement": statement,
            "vaults": [{"vault": row.vault, "asset": row.asset,
                        **_amount(row.balance, row.asset, tokens, shown)} for row in rows],
            "vaults_consolidated": [{"asset": asset,
                                     **_amount(amount, asset, tokens, shown)}
                                    for asset, amount in sorted(totals.items())]}


def anchors(ledger: Any, scan_entries: int) -> dict[int, dict[str, Any]]:
    """tree size -> its newest on-chain anchor among the last `scan_entries` entries."""
    size = ledger.size()
    found: dict[int, dict[str, Any]] = {}
    for entry in ledger.entries(max(0, size - scan_entries), size, {"ledger.anchor"}):
        try:
            anchor = LedgerAnchor.of(entry)
        except EventError:
            continue
        if isinstance(anchor, CheckpointAnchored):
            found[anchor.tree_size] = {"seq": entry.seq, "time": entry.time,
                                       "tree_size": anchor.tree_size, "index": anchor.index,
                                       "chain_id": anchor.chain_id,
                                       "registry": anchor.registry,
                                       "block_number": anchor.block_number,
                                       "block_hash": anchor.block_hash,
                                       "tx_hash": anchor.tx_hash,
                                       "root_hash": anchor.root_hash}
    return found


def checkpoint(ledger: Any, scan_entries: int) -> dict[str, Any]:
    """The latest signed checkpoint (C2SP note, key) and the anchors of any checkpoint."""
    latest = ledger_views.latest_checkpoint(ledger)
    found = anchors(ledger, scan_entries)
    listed = sorted(found.values(), key=lambda a: a["seq"], reverse=True)
    if latest is not None:
        mine = found.get(latest["tree_size"])
        latest["anchor"] = mine
        latest["anchor_matches"] = mine is not None and mine["root_hash"] == latest["root_hash"]
    return {"ledger_size": ledger.size(), "checkpoint": latest, "anchors": listed[:20]}


def flow_series(listed: list[dict[str, Any]]) -> dict[str, list[tuple[str, int]]]:
    """class -> [(period end or publication time, consolidated sats)] over the statements,
    and 'closing stock' -> the consolidated closing stock (needs show_amounts)."""
    classes = sorted({f["class"] for item in listed for f in item["consolidated"]["flows"]})
    series: dict[str, list[tuple[str, int]]] = {}
    for item in listed:
        when = item["period"]["end"] or item["published"]
        closing = item["consolidated"]["closing"]["base_units"]
        if closing is None:
            return {}
        series.setdefault("closing stock", []).append((when, int(closing)))
        sums = {f["class"]: int(f["base_units"]) for f in item["consolidated"]["flows"]}
        for name in classes:
            series.setdefault(name, []).append((when, sums.get(name, 0)))
    return series
