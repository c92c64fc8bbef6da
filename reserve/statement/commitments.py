"""Declarative commitments and whether a statement's figures keep them (pure).

A commitment is what the state has promised its lenders and the public about the reserve,
written down so that every statement checks it (docs/transparency.md#commitments):

- `no_flow`: no flow of `classes` at all (e.g. "no purchases": classes = ["purchase"]);
- `stock_grows_only_through`: the public sector's stock does not grow except through
  `classes` (e.g. ["mining", "seizure"]): closing minus opening, less those classes'
  flows, is at most zero;
- `outflow_max`: no single outflow from the public sector larger than `sats_max`.

The declared commitments go into the signed statement body with their outcome, so
`reserve statement verify` evaluates them again on the figures it re-derives; a breach is
a finding of the statement (and of the public portal, which shows the published entry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reserve.errors import StatementError
from reserve.flow_classes import FLOW_CLASSES

RULES = ("no_flow", "stock_grows_only_through", "outflow_max")
INTERNAL = "internal_transfer"
TEXT_MAX = 300


@dataclass(frozen=True)
class Commitment:
    id: str
    text: str
    rule: str
    classes: tuple[str, ...] = ()
    sats_max: int | None = None

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"id": self.id, "text": self.text, "rule": self.rule}
        if self.rule != "outflow_max":
            found["classes"] = list(self.classes)
        else:
            found["sats_max"] = self.sats_max
        return found


def parse(items: Any) -> tuple[Commitment, ...]:
    """Commitments from a list of tables (`[[statement.commitments]]` in the service's
    config, or the `commitments` a statement body recorded). StatementError, naming the
    commitment, for anything that is not one."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise StatementError("commitments must be a list of tables ([[statement.commitments]])")
    found: list[Commitment] = []
    for number, item in enumerate(items, 1):
        where = f"commitment {number}"
        if not isinstance(item, Mapping):
            raise StatementError(f"{where} is not a table")
        unknown = sorted(set(item) - {"id", "text", "rule", "classes", "sats_max", "kept",
                                      "findings"})
        if unknown:
            raise StatementError(f"{where} has unknown keys: {', '.join(unknown)}")
        ident, text, rule = item.get("id"), item.get("text"), item.get("rule")
        if not isinstance(ident, str) or not ident.strip() or len(ident) > 64:
            raise StatementError(f"{where} needs an id (1 to 64 characters)")
        where = f"commitment {ident!r}"
        if not isinstance(text, str) or not text.strip() or len(text) > TEXT_MAX:
            raise StatementError(f"{where} needs its text, as published (1 to {TEXT_MAX} "
                                 "characters)")
        if rule not in RULES:
            raise StatementError(f"{where}: rule {rule!r} is not one of {', '.join(RULES)}")
        if rule == "outflow_max":
            sats = item.get("sats_max")
            if isinstance(sats, bool) or not isinstance(sats, int) or sats < 0:
                raise StatementError(f"{where}: sats_max must be a whole number of satoshis "
                                     "(0 or more)")
            if "classes" in item:
                raise StatementError(f"{where}: outflow_max takes sats_max, not classes")
            found.append(Commitment(ident, text, rule, sats_max=sats))
            continue
        classes = item.get("classes")
        if not isinstance(classes, list) or not classes or \
                not all(isinstance(c, str) for c in classes):
            raise StatementError(f"{where}: classes must be a non-empty list of flow classes")
        wrong = sorted(set(classes) - set(FLOW_CLASSES))
        if wrong:
            raise StatementError(f"{where}: {', '.join(wrong)} is not a flow class; the "
                                 f"classes are {', '.join(FLOW_CLASSES)}")
        if "sats_max" in item:
            raise StatementError(f"{where}: {rule} takes classes, not sats_max")
        found.append(Commitment(ident, text, rule, classes=tuple(classes)))
    ids = [c.id for c in found]
    if len(set(ids)) != len(ids):
        raise StatementError(f"commitment ids must be unique: {', '.join(ids)}")
    return tuple(found)


def _flows(consolidated: Mapping[str, Any]) -> dict[str, int]:
    return {str(f["class"]): int(f["sats"]) for f in consolidated["flows"]}


def _outflows(movements: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, int]]:
    """(txid, wallet, sats out) of each movement that left the public sector."""
    return [(str(m["txid"]), str(m["wallet"]), -int(m["sats"])) for m in movements
            if int(m["sats"]) < 0 and m["class"] not in (INTERNAL, "fee")]


def findings_of(commitment: Commitment, consolidated: Mapping[str, Any],
                movements: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why the figures break `commitment` (empty: kept)."""
    flows = _flows(consolidated)
    if commitment.rule == "no_flow":
        return [f"{flow_class} flows of {flows[flow_class]} sats"
                for flow_class in commitment.classes if flows.get(flow_class)]
    if commitment.rule == "stock_grows_only_through":
        growth = int(consolidated["closing_sats"]) - int(consolidated["opening_sats"])
        allowed = sum(flows.get(c, 0) for c in commitment.classes)
        if growth - allowed > 0:
            return [f"the stock grew by {growth} sats, {growth - allowed} of them outside "
                    f"{', '.join(commitment.classes)}"]
        return []
    limit = commitment.sats_max if commitment.sats_max is not None else 0
    return [f"{txid}: {sats} sats left {wallet}, over {limit}"
            for txid, wallet, sats in _outflows(movements) if sats > limit]


def evaluate(commitments: Sequence[Commitment], consolidated: Mapping[str, Any],
             movements: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each commitment with `kept` and its `findings`, as the statement body records it."""
    results = []
    for commitment in commitments:
        findings = findings_of(commitment, consolidated, movements)
        results.append({**commitment.to_json(), "kept": not findings, "findings": findings})
    return results


def breaches(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per broken commitment: `id: text: findings`."""
    return [f"{r['id']} ({r['text']}): {'; '.join(r['findings'])}"
            for r in results if not r["kept"]]
