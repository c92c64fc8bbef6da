"""Unit-tier fixtures: the transfer workflow on a fresh in-memory ledger.

Both come from tests/support/workflow.py, so every workflow test starts from the same
set-up: the national-btc policy registered as v1 by "lead", the clock standing at T0.
A test module that needs another ledger or service defines its own fixture of that name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reserve.ledger import Ledger
from reserve.transfers.service import WorkflowService
from tests.support.workflow import MEMORY_URL, workflow_service


@pytest.fixture()
def ledger() -> Iterator[Ledger]:
    with Ledger.open(MEMORY_URL) as opened:
        yield opened


@pytest.fixture()
def service(ledger: Ledger) -> WorkflowService:
    return workflow_service(ledger)
