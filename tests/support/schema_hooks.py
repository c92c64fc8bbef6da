"""Schemathesis hooks for tests/nodes/test_api_schema.py (loaded via SCHEMATHESIS_HOOKS).

Random vault names and addresses stop every proposal at "no such vault" (404), so the
fuzzer would never reach the workflow. For schema-valid (positive) proposal bodies this
points the proposal at the seeded vault and, for transfers, at an allowlisted
destination with a small amount; the rest of the body (purpose, reference, expiry, fee,
action) stays as generated. Positive cancels name one of the seeded proposals (their
digests come in SCHEMA_HOOK_DIGESTS), so a role that may cancel reaches the workflow's
state changes; a random digest would only ever be a 404. Listings start at their first page (a random `after` cursor
is past every proposal, and the links from a listing then lead nowhere). Negative cases
are left alone, so they stay invalid.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis

from tests.support.workflow import COLD

SEEDED_VAULT = "vault-a"
PROPOSALS = "POST /api/proposals"
LISTINGS = frozenset({"GET /api/proposals", "GET /api/transfers"})
CANCEL = "POST /api/proposals/{digest}/cancel"
SEEDED_DIGESTS = [d for d in os.environ.get("SCHEMA_HOOK_DIGESTS", "").split(",") if d]


def _reaches_workflow(body: dict[str, Any]) -> dict[str, Any]:
    chosen = {**body, "vault": SEEDED_VAULT, "asset": "BTC"}
    if chosen.get("action", "transfer") == "transfer":
        chosen["outputs"] = [{"destination": COLD, "amount": str(1_000 + index)}
                             for index, _ in enumerate(chosen.get("outputs") or [None])][:3]
        chosen["fee_max"] = "20000"
    return chosen


@schemathesis.hook
def map_case(context: Any, case: schemathesis.Case) -> schemathesis.Case:
    meta = case.meta
    if (case.operation.label == PROPOSALS and isinstance(case.body, dict)
            and meta is not None and meta.generation.mode.is_positive):
        case.body = _reaches_workflow(case.body)
    if (case.operation.label == CANCEL and SEEDED_DIGESTS and meta is not None
            and meta.generation.mode.is_positive and isinstance(case.path_parameters, dict)):
        case.path_parameters = {**case.path_parameters, "digest": SEEDED_DIGESTS[0]}
    if (case.operation.label in LISTINGS and isinstance(case.query, dict)
            and meta is not None and meta.generation.mode.is_positive):
        case.query.pop("after", None)
    return case
