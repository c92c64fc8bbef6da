"""Commitments: parsed strictly, and each rule kept exactly when its arithmetic says so."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reserve.errors import StatementError
from reserve.flow_classes import FLOW_CLASSES
from reserve.statement import commitments
from reserve.statement.commitments import Commitment, evaluate, findings_of, parse

NO_PURCHASES = {"id": "no-purchases", "text": "No purchases", "rule": "no_flow",
                "classes": ["purchase"]}


@pytest.mark.parametrize(("items", "message"), [
    ("nope", "must be a list of tables"),
    ([1], "commitment 1 is not a table"),
    ([{"text": "x", "rule": "no_flow", "classes": ["purchase"]}], "needs an id"),
    ([{**NO_PURCHASES, "text": ""}], "needs its text"),
    ([{**NO_PURCHASES, "rule": "be nice"}], "rule 'be nice' is not one of"),
    ([{**NO_PURCHASES, "classes": ["gift"]}], "gift is not a flow class"),
    ([{**NO_PURCHASES, "classes": []}], "non-empty list"),
    ([{**NO_PURCHASES, "sats_max": 5}], "takes classes, not sats_max"),
    ([{"id": "o", "text": "t", "rule": "outflow_max", "sats_max": -1}], "whole number"),
    ([{"id": "o", "text": "t", "rule": "outflow_max", "sats_max": True}], "whole number"),
    ([{"id": "o", "text": "t", "rule": "outflow_max", "sats_max": 1.5}], "whole number"),
    ([{**NO_PURCHASES, "colour": "red"}], "unknown keys: colour"),
    ([NO_PURCHASES, NO_PURCHASES], "must be unique"),
])
def test_a_malformed_commitment_is_refused_with_its_reason(items: Any, message: str) -> None:
    with pytest.raises(StatementError, match=message):
        parse(items)


def test_the_recorded_outcome_parses_back_to_the_same_commitments() -> None:
    declared = parse([NO_PURCHASES, {"id": "o", "text": "t", "rule": "outflow_max",
                                     "sats_max": 10}])
    recorded = evaluate(declared, {"opening_sats": 0, "closing_sats": 0, "flows": []}, [])
    assert parse(recorded) == declared and parse(None) == ()
    assert commitments.breaches(recorded) == []


flows = st.dictionaries(st.sampled_from(FLOW_CLASSES), st.integers(-10**9, 10**9))


@given(flows=flows, opening=st.integers(0, 10**12),
       allowed=st.sets(st.sampled_from(FLOW_CLASSES), min_size=1))
def test_each_rule_is_its_arithmetic(flows: dict[str, int], opening: int,
                                     allowed: set[str]) -> None:
    external = {c: s for c, s in flows.items() if c != "internal_transfer"}
    account = {"opening_sats": opening, "closing_sats": opening + sum(external.values()),
               "flows": [{"class": c, "sats": s} for c, s in external.items()]}
    classes = tuple(sorted(allowed))
    no_flow = Commitment("n", "t", "no_flow", classes=classes)
    assert (findings_of(no_flow, account, []) == []) == \
        all(not external.get(c) for c in classes)
    grows = Commitment("g", "t", "stock_grows_only_through", classes=classes)
    outside = sum(s for c, s in external.items() if c not in allowed)
    assert (findings_of(grows, account, []) == []) == (outside <= 0)


@given(outs=st.lists(st.tuples(st.sampled_from(FLOW_CLASSES), st.integers(-10**9, 10**9)),
                     max_size=8), limit=st.integers(0, 10**9))
def test_an_outflow_over_the_limit_is_each_a_finding(outs: list[tuple[str, int]],
                                                     limit: int) -> None:
    movements = [{"txid": f"{n:064x}", "wallet": "w", "class": c, "sats": s}
                 for n, (c, s) in enumerate(outs)]
    rule = Commitment("o", "t", "outflow_max", sats_max=limit)
    over = [m for m in movements if m["sats"] < -limit
            and m["class"] not in ("internal_transfer", "fee")]
    account = {"opening_sats": 0, "closing_sats": 0, "flows": []}
    assert len(findings_of(rule, account, movements)) == len(over)
