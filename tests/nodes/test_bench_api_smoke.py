"""Smoke run of the API benchmark: 3 clients for 2 s on SQLite, every check must pass.

Keeps bench/api.py working (servers start, the load runs without errors, the ledger
verifies and holds every accepted request exactly once) without the full 60 s run.
"""

from __future__ import annotations

import pytest

from bench import api


def test_bench_api_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert api.main(["--backend", "sqlite", "--clients", "3", "--seconds", "2"]) == 0
    out = capsys.readouterr().out
    assert "endpoints exercised: POST /api/" in out
    assert "ratio to bare FastAPI:" in out
    assert "FAILED" not in out
    assert out.count("check: ") == 6


def test_bench_api_refuses_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        api.main(["--clients", "0"])
