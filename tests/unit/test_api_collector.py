"""The collector rule of a serving app (reserve/api/collector.py): once an app has
started, what it built is frozen out of the collector's generations and young collections
are rarer; when the last app serving stops, the process's collector is as it was."""

from __future__ import annotations

import gc
from pathlib import Path

from fastapi.testclient import TestClient

from reserve.api import collector
from reserve.api.app import create_app


def test_a_started_app_freezes_its_start_up_objects_and_raises_the_young_threshold(
        tmp_path: Path) -> None:
    before_threshold, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    app = create_app(f"sqlite:///{tmp_path}/ledger.sqlite")
    with TestClient(app) as client:
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] >= collector.YOUNG_THRESHOLD
        assert gc.get_threshold()[1:] == before_threshold[1:]
        assert client.get("/api/health").status_code == 200
    assert gc.get_threshold() == before_threshold
    assert gc.get_freeze_count() <= before_frozen  # unfrozen once no app serves


def test_the_collector_is_restored_only_when_the_last_app_serving_stops(
        tmp_path: Path) -> None:
    before_threshold = gc.get_threshold()
    first = create_app(f"sqlite:///{tmp_path}/first.sqlite")
    second = create_app(f"sqlite:///{tmp_path}/second.sqlite")
    with TestClient(first):
        with TestClient(second):
            assert gc.get_threshold()[0] >= collector.YOUNG_THRESHOLD
        # The first app still serves: its objects stay frozen, the threshold raised.
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] >= collector.YOUNG_THRESHOLD
    assert gc.get_threshold() == before_threshold
    assert gc.get_freeze_count() == 0
