"""Smoke run of the growth benchmark with tiny ledgers (100 and 300 entries, one request a
figure): the bulk build is a ledger the service, the CLI and the verifier accept, and the
table prints every figure of issue 14's with the ratio of the sizes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import growth
from reserve.ledger import Ledger
from reserve.ledger.verify import verify_ledger
from reserve.transfers import readmodel


def test_bench_growth_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert growth.main(["--sizes", "100,300", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for label, _, _ in growth.FIGURES:
        line = next(line for line in out.splitlines() if line.startswith(f"| {label} |"))
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == 4, line  # label, 100, 300, ratio
        assert all(cell not in ("-", "times out") for cell in cells[1:]), line
    assert "| 300/100 |" in out


def test_the_bulk_build_is_a_ledger_whose_read_models_equal_a_replay(tmp_path: Path) -> None:
    _, url, tokens, digest = growth.build(tmp_path, 120)
    assert set(tokens) == {"operator", "custodian"} and len(digest) == 64
    with Ledger.open(url) as ledger:
        assert 120 <= ledger.size() < 120 + 8  # whole cycles, up to 8 entries each
        assert verify_ledger(ledger).ok
        assert readmodel.check(ledger) == []
        kinds = {entry.kind for entry in ledger.entries()}
    assert {"api.request", "proposal.created", "proposal.approved", "proposal.state",
            "proposal.cancelled"} <= kinds


def test_bench_growth_refuses_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        growth.main(["--sizes", "ten"])
    with pytest.raises(SystemExit):
        growth.main(["--sizes", "5"])
