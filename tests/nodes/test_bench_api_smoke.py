"""Smoke run of the API benchmark (`--smoke`: SQLite, one worker, 4 wrk connections, 1 s a
case); every check must pass.

Keeps bench/api.py working (wrk and its Lua script drive both servers, the signed votes
are accepted, the ledger verifies and holds every acknowledged write exactly once)
without the full run.
"""

from __future__ import annotations

import shutil

import pytest

from bench import api


def test_bench_api_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert shutil.which("wrk"), "wrk is not on PATH: run scripts/setup.sh"
    assert api.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "API benchmark (wrk): sqlite" in out
    for case in ("bare FastAPI GET", "bare FastAPI POST", "bare FastAPI GET (async route)",
                 "bare FastAPI POST (async route)",
                 "POST /api/proposals ",
                 "POST /api/proposals/{d}/approvals", "GET /api/vaults",
                 "GET /api/ledger/entries (page)", "GET /api/proposals/{digest}"):
        assert case in out, case
    assert "FAILED" not in out
    assert out.count("check: ") == 7
    approvals = next(line for line in out.splitlines() if "approvals" in line)
    assert int(approvals.split()[-3].replace(",", "")) > 0  # votes were accepted


def test_bench_api_refuses_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        api.main(["--connections", "0"])
    with pytest.raises(SystemExit):
        api.main(["--pg-workers", "one"])
