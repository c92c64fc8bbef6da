"""The ledger benchmark still runs: every function on a tiny ledger, so it cannot rot."""

from __future__ import annotations

from typing import Any

import pytest

import bench.ledger as module
from bench.ledger import Results, format_results, main, make_items, run


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return run(200, 300, small=50, batch=50, checkpoint_every=100, samples=8,
               integrate_rounds=3, directory=tmp_path_factory.mktemp("bench"))


def test_benchmark_runs_small_and_reports_every_figure(results: Results) -> None:
    assert all(results.checks.values()), results.checks
    for name in ("append", "append floor", "append pymerkle", "verify", "verify floor",
                 "build small", "build big pymerkle"):
        assert results.figures[name] > 0
    for name in ("integrate (load)", "integrate (explicit)", "inclusion @300",
                 "consistency @50", "pymerkle inclusion @300", "pymerkle consistency @300"):
        assert results.latencies[name].count > 0
    text = format_results(results)
    assert "synchronous=FULL" in text and "FAILED" not in text


def test_workload_is_deterministic() -> None:
    assert make_items(3, 5) == make_items(8)[5:]


def test_main_parses_options(results: Results, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(entries: int, big: int, **options: Any) -> Results:
        seen.update(entries=entries, big=big, samples=options["samples"])
        return results

    monkeypatch.setattr(module, "run", fake_run)
    assert main(["--quick"]) == 0
    assert seen == {"entries": 10_000, "big": 50_000, "samples": 100}
    assert "append (ledger.append_many)" in capsys.readouterr().out


@pytest.mark.postgres
def test_postgresql_round_runs_and_reports_both_floors(postgres_url: str) -> None:
    seconds, ok = module.bench_pg_round(postgres_url, make_items(120), 50, 100,
                                        module.make_signer())
    assert ok and set(seconds) == {"append", "append floor", "append copy floor"}
    assert all(value > 0 for value in seconds.values())
    results = Results(120, 0, 0, 50, 100, 1, figures={name: 120 / value for name, value
                                                      in seconds.items()},
                      checks={"ledger verifies (round 1)": ok})
    text = module.format_postgresql(results)
    assert "COPY" in text and "executemany" in text and "FAILED" not in text
