"""The answer cache of the read routes (reserve/api/answers.py), without a server.

A proposal's decision is taken at each request's time from inputs read once on a ledger
head: it must be the service's own decision at that time, also once approvals have left
the velocity window they were read in, and the cache must stay within its bounds.
"""

from __future__ import annotations

from datetime import timedelta

from reserve.api.answers import AnswerCache, DecisionInputs
from reserve.api.routes.proposals import detail_parts
from reserve.transfers.service import decide
from tests.support.workflow import T0, approve, fresh_workflow, propose

LARGE = 500_000_000  # 5 BTC: the large tier, 3 custodians of 3 institutions
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
THREE = ("finance-ministry", "central-bank", "vasp-regulator")


def test_a_decision_from_kept_inputs_is_the_services_at_every_later_time() -> None:
    with fresh_workflow() as (_, workflow):
        # 10 BTC approved at T0: the 24 h window's limit is used up until they leave it.
        for n in range(2):
            approve(workflow, propose(workflow, amount=LARGE, reference=f"R{n}"), *THREE)
        later = T0 + timedelta(minutes=5)
        waiting = propose(workflow, amount=5_000_000, at=later)
        approve(workflow, waiting, "finance-ministry", "central-bank", at=later)
        status = workflow.status(waiting.digest)
        parts = detail_parts(workflow, status, later)
        moments = [later, later + timedelta(hours=1), T0 + DAY - timedelta(seconds=1), T0 + DAY,
                   T0 + DAY + timedelta(microseconds=1), T0 + DAY + HOUR, T0 + 8 * DAY]
        answers = []
        for moment in moments:
            kept = decide(parts.inputs.policy, status, parts.inputs.history_at(moment),
                          parts.inputs.licences, moment)
            assert kept == workflow.decision(waiting.digest, moment), moment
            assert parts.answer(moment)["decision"]["explain"] == kept.explain()
            answers.append(kept.explain())
        assert answers[0] != answers[-1]  # the window did move the decision


def test_history_at_keeps_only_the_approvals_still_in_the_window() -> None:
    with fresh_workflow() as (_, workflow):
        first = propose(workflow, amount=LARGE)
        approve(workflow, first, *THREE)
        second = propose(workflow, amount=LARGE, at=T0 + HOUR)
        approve(workflow, second, *THREE, at=T0 + HOUR)
        projection = workflow.sync()
        inputs = DecisionInputs(status=projection.status(second.digest),
                                policy=projection.vault("national-btc").policy,
                                history=projection.history("national-btc", T0 + HOUR),
                                licences={}, read_at=T0 + HOUR)
        for moment in (T0 + HOUR, T0 + 7 * DAY, T0 + 7 * DAY + HOUR, T0 + 9 * DAY):
            assert inputs.history_at(moment) == projection.history("national-btc", moment)


def test_the_cache_keeps_its_bounds() -> None:
    cache = AnswerCache(entries_max=3, bytes_max=400)
    for n in range(5):
        cache.put(n, f"v{n}", 10)
    assert len(cache) == 3 and cache.get(0) is None and cache.get(4) == "v4"
    cache.put("big", "x", 101)  # over a quarter of the byte budget: not kept
    assert cache.get("big") is None
    for n in range(5, 9):
        cache.put(n, n, 99)
    assert len(cache) <= 3 and sum(99 for n in range(5, 9) if cache.get(n) is not None) <= 400
