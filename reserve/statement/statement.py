"""The consolidated statement: its body, figures, signature, ledger entry and checks.

The body is RFC 8785 canonical JSON (reserve.ledger.canonical). It pins what it was
computed from: the blocks (first and last of the period with their hashes, and where the
walk began), the ledger checkpoint it read, the registered wallets with their descriptors,
and the ledger's decisions that classified the period's flows (declared classes and
confirmed attributions, each naming its entries). So anyone holding it and a node can
compute it again (`verify`). The auditor signs it exactly as a reconciliation report
(reserve.reconcile.report.AuditorSigner: `{"report": body, "signature": {...}}`), and its
hash, signature and figures go into the ledger as `statement.published`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reserve.errors import StatementError, StatementRejected
from reserve.events.transparency import StatementPublished
from reserve.ledger.canonical import canonical_bytes
from reserve.ledger.checkpoint import VerifierKey
from reserve.ledger.entry import Entry
from reserve.ledger.store import Ledger
from reserve.reconcile.report import check_signature
from reserve.statement.chain import Pin, Walk
from reserve.statement.commitments import Commitment, evaluate
from reserve.statement.flows import (
    Decided,
    MiningWallet,
    Movement,
    check_account,
    classify,
    consolidate,
)
from reserve.statement.records import Attributions
from reserve.statement.wallets import PublicWallet

FORMAT = "reserve-public-statement/1"
ENTRY_KIND = StatementPublished.KIND
FIGURES = ("wallets", "consolidated", "movements", "commitments")


def _coins(rows: Sequence[tuple[str, int, int]]) -> list[list[Any]]:
    return [[txid, vout, sats] for txid, vout, sats in rows]


def mining_wallets(sites: Sequence[Mapping[str, Any]]) -> dict[str, MiningWallet]:
    """wallet -> its mining site, from the body's `mining_sites`."""
    return {wallet: MiningWallet(str(site["site"]), frozenset(site["pool_payers"]))
            for site in sites for wallet in site["payout_wallets"]}


def figures(wallets: Sequence[PublicWallet], walk: Walk, declared: Mapping[str, Decided],
            attributed: Attributions, commitments: Sequence[Commitment] = (),
            mining_sites: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Per wallet and consolidated accounts, the classified movements and whether they keep
    `commitments` (pure). Raises StatementError when the flows do not explain a closing
    stock (a bug, never data)."""
    movements: list[Movement] = []
    mining = mining_wallets(mining_sites)
    for tx in walk.transactions:
        movements.extend(classify(tx, declared.get(tx.txid), attributed.get(tx.txid), mining))
    openings = {w.name: sum(s for _t, _v, s in walk.opening.get(w.name, [])) for w in wallets}
    closings = {w.name: sum(s for _t, _v, s in walk.closing[w.name]) for w in wallets}
    try:
        accounts, public = consolidate(openings, movements)
        for name, found in accounts.items():
            check_account(found, closings[name], f"wallet {name}")
        check_account(public, sum(closings.values()), "the public sector")
    except ValueError as error:
        raise StatementError(f"the statement does not add up: {error}") from None
    consolidated = public.to_json()
    moved = [m.to_json() for m in movements]
    return {"wallets": [{"wallet": w.name, **accounts[w.name].to_json(),
                         "opening_coins": _coins(walk.opening.get(w.name, [])),
                         "closing_coins": _coins(walk.closing[w.name])} for w in wallets],
            "consolidated": consolidated, "movements": moved,
            "commitments": evaluate(commitments, consolidated, moved)}


def decisions_used(walk: Walk, declared: Mapping[str, Decided],
                   attributed: Attributions) -> dict[str, Any]:
    """The ledger's decisions about the period's transactions, as the body records them."""
    txids = {tx.txid for tx in walk.transactions}
    return {"declared": [{"txid": t, "class": d.flow_class, "evidence": d.evidence}
                         for t, d in sorted(declared.items()) if t in txids],
            "attributed": [{"txid": t, "wallet": w, "class": d.flow_class,
                            "evidence": d.evidence}
                           for t, by_wallet in sorted(attributed.items()) if t in txids
                           for w, d in sorted(by_wallet.items())]}


def decisions_of(body: Mapping[str, Any]) -> tuple[dict[str, Decided], Attributions]:
    """The declared classes and attributions a body recorded (for verify)."""
    declared = {d["txid"]: Decided(d["class"], d["evidence"])
                for d in body["decisions"]["declared"]}
    attributed: Attributions = {}
    for item in body["decisions"]["attributed"]:
        attributed.setdefault(item["txid"], {})[item["wallet"]] = Decided(item["class"],
                                                                          item["evidence"])
    return declared, attributed


def build_body(*, created: str, period: Mapping[str, str | None], pin: Pin,
               ledger: Mapping[str, Any], wallets: Sequence[PublicWallet], walk: Walk,
               declared: Mapping[str, Decided], attributed: Attributions,
               commitments: Sequence[Commitment] = (),
               mining_sites: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    body = {"format": FORMAT, "created": created, "period": dict(period),
            "blocks": pin.to_json(), "ledger": dict(ledger),
            "registry": [w.to_json() for w in wallets],
            "mining_sites": [dict(s) for s in mining_sites],
            "decisions": decisions_used(walk, declared, attributed),
            **figures(wallets, walk, declared, attributed, commitments, mining_sites)}
    canonical_bytes(body)  # refuse now anything that is not canonical JSON
    return body


def _summary(account: Mapping[str, Any]) -> dict[str, Any]:
    return {"opening_sats": account["opening_sats"], "closing_sats": account["closing_sats"],
            "flows": [{"class": f["class"], "sats": f["sats"]} for f in account["flows"]]}


def entry_event(document: Mapping[str, Any]) -> StatementPublished:
    body, signature = document["report"], document["signature"]
    return StatementPublished(
        statement_sha256=signature["report_sha256"], auditor_key=signature["key"],
        signature=signature["value"], period_start=body["period"].get("start") or "",
        period_end=body["period"].get("end") or "", blocks=body["blocks"],
        consolidated=_summary(body["consolidated"]),
        wallets=[{"wallet": w["wallet"], **_summary(w)} for w in body["wallets"]],
        commitments=[{k: c[k] for k in ("id", "text", "kept", "findings")}
                     for c in body.get("commitments", [])])


def check_in(ledger: Ledger, document: dict[str, Any], actor: str) -> Entry:
    """Append the statement's `statement.published` entry (its own signature checked)."""
    key = VerifierKey.parse(document["signature"]["key"])
    check_signature(document, [key], format_name=FORMAT)
    event = entry_event(document)
    return ledger.append(event.KIND, actor, event.to_payload())


def published(entries: Iterable[Entry]) -> list[tuple[Entry, StatementPublished]]:
    return [(e, StatementPublished.of(e)) for e in entries if e.kind == ENTRY_KIND]


def latest(ledger: Ledger) -> dict[str, Any] | None:
    """The latest published statement's entry: hash, signature, pins and figures (the
    hook a public page reads), or None before the first. One indexed lookup (the kind
    index), whatever the ledger's size."""
    found = ledger.kind_sequences((ENTRY_KIND,), newest_first=True, limit=1)
    if not found:
        return None
    entry = ledger.entry(found[0])
    event = StatementPublished.of(entry)
    return {"seq": entry.seq, "time": entry.time, **event.to_payload()}


def holdings(ledger: Ledger) -> list[dict[str, Any]]:
    """Per registered wallet, its closing stock in the latest statement (integer sats),
    with the statement's end block; empty before the first statement."""
    found = latest(ledger)
    if found is None:
        return []
    return [{"wallet": w["wallet"], "asset": "BTC", "sats": w["closing_sats"],
             "height": found["blocks"]["end_height"], "statement": found["statement_sha256"]}
            for w in found["wallets"]]


def compare(body: Mapping[str, Any], again: Mapping[str, Any]) -> None:
    """StatementRejected naming the first figure where `body` and `again` differ."""
    for key in FIGURES:
        if key == "commitments" and key not in body and not again[key]:
            continue  # a statement from before commitments, with none declared
        if body.get(key) != again[key]:
            stated, derived = body.get(key), again[key]
            if isinstance(stated, list) and isinstance(derived, list):
                for index, (a, b) in enumerate(zip(stated, derived, strict=False)):
                    if a != b:
                        raise StatementRejected("mismatch", f"{key}[{index}]: the statement "
                                                f"says {a}, the chain gives {b}")
            raise StatementRejected("mismatch", f"{key}: the statement says {stated}, the "
                                                f"chain gives {derived}")

