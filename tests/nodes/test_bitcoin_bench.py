"""Smoke test: the Bitcoin benchmark runs end to end with a tiny vault (figures not checked)."""

from __future__ import annotations

from bench import bitcoin
from wallets.bitcoin.regtest import RegtestNode


def test_bench_runs_with_small_n(bitcoind: RegtestNode, capsys) -> None:  # type: ignore[no-untyped-def]
    result = bitcoin.main(["--utxos", "12", "--repeat", "1", "--inputs", "3"], node=bitcoind)
    assert result["inputs"] == 3 and result["ours_build_s"] > 0 and result["core_build_s"] > 0
    assert "ratio" in capsys.readouterr().out
