"""Build, sign, check in and verify energy reports (the shell around report.py).

As with statements: the ledger is checkpointed first and only the entries inside that
checkpoint are read (the allocation, sites, readings, wallets and published statements),
so the report names the ledger state it used. Its mined satoshis come from a signed
public-sector statement of the same period, which must verify under its own key and be
published in the ledger (`statement.published`) by that key: the report does not take a
statement's word that the ledger never recorded. The auditor signs the body like a
reconciliation report (`{"report": body, "signature": {...}}`), and its hash, signature
and figures go into the ledger as `mining.report_published`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from reserve.errors import MiningError, ReportRejected
from reserve.events.mining import EnergyReportPublished
from reserve.events.transparency import StatementPublished
from reserve.ledger.canonical import canonical_bytes
from reserve.ledger.checkpoint import VerifierKey, parse_note
from reserve.ledger.entry import Entry, format_time
from reserve.ledger.store import Ledger
from reserve.mining.basis import Difficulty, Price
from reserve.mining.readings import recorded
from reserve.mining.record import KINDS
from reserve.mining.report import FORMAT, build_report
from reserve.mining.sites import registry
from reserve.reconcile.report import AuditorSigner, check_signature
from reserve.statement.statement import FORMAT as STATEMENT_FORMAT

READS = (*KINDS, StatementPublished.KIND)
FIGURES = ("period", "statement_blocks", "price", "difficulty", "sites", "total",
           "anomalies")


def statement_body(document: Any, entries: Iterable[Entry]) -> tuple[dict[str, Any], str]:
    """The statement's body and hash, if it verifies under its own key and the entries
    publish it with that key; MiningError otherwise."""
    try:
        key = VerifierKey.parse(str(document["signature"]["key"]))
        body = check_signature(document, [key], format_name=STATEMENT_FORMAT)
    except (KeyError, TypeError, ValueError, ReportRejected) as error:
        reason = error.args[-1] if isinstance(error, ReportRejected) else "malformed"
        raise MiningError(f"not a signed public-sector statement: {reason}") from None
    sha256 = str(document["signature"]["report_sha256"])
    for entry in entries:
        if entry.kind == StatementPublished.KIND:
            event = StatementPublished.of(entry)
            if event.statement_sha256 == sha256 and event.auditor_key == key.encode():
                return body, sha256
    raise MiningError(f"statement {sha256} is not published in the ledger "
                      "(`reserve statement build` publishes it)")


def body_of(entries: Sequence[Entry], statement: Any, start: datetime, end: datetime, *,
            price: Price | None, difficulty: Difficulty | None) -> dict[str, Any]:
    """The report's figures from `entries` (a checkpoint's) and a published statement."""
    body, sha256 = statement_body(statement, entries)
    figures = build_report(registry(entries), recorded(entries), body, start, end,
                           price=price, difficulty=difficulty)
    return {**figures, "statement_sha256": sha256}


def build(ledger: Ledger, statement: Any, start: datetime, end: datetime, *,
          price: Price | None = None, difficulty: Difficulty | None = None,
          now: datetime | None = None) -> dict[str, Any]:
    """The unsigned body over [start, end), reading the ledger at a fresh checkpoint. The
    figures are computed before the checkpoint is signed, so a refusal stores nothing, and
    again at the checkpoint's size if an entry was appended meanwhile."""
    size = ledger.size()
    figures = body_of(list(ledger.entries(0, size, kinds=READS)), statement, start, end,
                      price=price, difficulty=difficulty)
    note = ledger.checkpoint(now=now)
    checkpoint, _signatures = parse_note(note)
    if checkpoint.tree_size != size:
        figures = body_of(list(ledger.entries(0, checkpoint.tree_size, kinds=READS)),
                          statement, start, end, price=price, difficulty=difficulty)
    body = {**figures, "created": format_time(now or ledger.now()),
            "ledger": {"tree_size": checkpoint.tree_size,
                       "root_hash": checkpoint.root_hash.hex(), "note": note}}
    canonical_bytes(body)  # refuse now anything that is not canonical JSON
    return body


def entry_event(document: dict[str, Any]) -> EnergyReportPublished:
    body, signature = document["report"], document["signature"]
    return EnergyReportPublished(
        report_sha256=signature["report_sha256"], signature=signature["value"],
        auditor_key=signature["key"], period=body["period"],
        statement_sha256=body["statement_sha256"],
        ledger={k: body["ledger"][k] for k in ("tree_size", "root_hash")},
        price=body["price"], difficulty=body["difficulty"],
        sites=[{k: row[k] for k in ("site", "kind", "operator", "capacity_kw", "energy_kwh",
                                    "energy_mwh", "allocated_kwh", "utilisation_bp",
                                    "mined_sats", "sats_per_mwh", "tariff_per_mwh_minor",
                                    "currency", "revenue_per_mwh_minor", "yield_bp")}
               for row in body["sites"]],
        total=body["total"],
        anomalies=[{"kind": a["kind"], "site": a["site"], "detail": a["detail"]}
                   for a in body["anomalies"]])


def check_in(ledger: Ledger, document: dict[str, Any], actor: str) -> Entry:
    """Append the report's `mining.report_published` entry (its own signature checked)."""
    key = VerifierKey.parse(document["signature"]["key"])
    check_signature(document, [key], format_name=FORMAT)
    event = entry_event(document)
    return ledger.append(event.KIND, actor, event.to_payload())


def publish(ledger: Ledger, signer: AuditorSigner, statement: Any, start: datetime,
            end: datetime, *, price: Price | None = None,
            difficulty: Difficulty | None = None,
            now: datetime | None = None) -> tuple[dict[str, Any], Entry]:
    """Build, sign and check in a report; the signed document and its entry."""
    document = signer.sign(build(ledger, statement, start, end, price=price,
                                 difficulty=difficulty, now=now))
    return document, check_in(ledger, document, f"auditor:{signer.verifier.name}")


def _stated(body: dict[str, Any]) -> tuple[Price | None, Difficulty | None]:
    price, difficulty = body.get("price"), body.get("difficulty")
    if price is not None:
        digits = int(price["minor_digits"])
        whole, part = divmod(int(price["minor_per_btc"]), 10 ** digits)
        price = Price.parse(f"{whole}.{part:0{digits}d}" if digits else str(whole),
                            price["currency"], price["source"])
    if difficulty is not None:
        difficulty = Difficulty.parse(difficulty["difficulty"],
                                      difficulty["block_reward_sats"], difficulty["source"])
    return price, difficulty


def verify(document: Any, auditors: Iterable[VerifierKey], statement: Any,
           entries: Sequence[Entry]) -> dict[str, Any]:
    """The report's body if it holds: signed by one of `auditors`, published in `entries`
    (a ledger export's), and its figures what the entries at its checkpoint and
    `statement` (the one it names) give again. ReportRejected (reason, message) if not."""
    body = check_signature(document, auditors, format_name=FORMAT)
    sha256 = document["signature"]["report_sha256"]
    try:
        size = int(body["ledger"]["tree_size"])
        start, end = (datetime.fromisoformat(body["period"][k].replace("Z", "+00:00"))
                      for k in ("start", "end"))
        price, difficulty = _stated(body)
    except (KeyError, TypeError, ValueError, AttributeError, MiningError) as error:
        raise ReportRejected("malformed", f"the report is malformed: {error}") from None
    if not any(e.kind == EnergyReportPublished.KIND
               and EnergyReportPublished.of(e).report_sha256 == sha256 for e in entries):
        raise ReportRejected("not_published", f"report {sha256} is not published in the "
                                              "ledger")
    read = [e for e in entries[:size] if e.kind in READS]
    try:
        again = body_of(read, statement, start, end, price=price, difficulty=difficulty)
    except MiningError as error:
        raise ReportRejected("statement", str(error)) from None
    if again["statement_sha256"] != body.get("statement_sha256"):
        raise ReportRejected("statement", f"the report is of statement "
                                          f"{body.get('statement_sha256')}, not of "
                                          f"{again['statement_sha256']}")
    for key in FIGURES:
        if body.get(key) != again[key]:
            raise ReportRejected("mismatch", f"{key}: the report says {body.get(key)}, the "
                                             f"ledger and the statement give {again[key]}")
    return body
