"""The demo's pure parts: exact amounts, the vault/policy consistency check, the workdir guard."""

from __future__ import annotations

import dataclasses
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reserve.demo import amounts
from reserve.demo.custody import custody_problems, require_consistent
from reserve.demo.stage import MARKER, StoryClock, reset_workdir
from reserve.demo.story import BTC_POLICY, BTC_VAULT
from reserve.errors import ConfigError
from reserve.policy import loader
from wallets.bitcoin.vault import load_vault


def test_amounts_read_as_people_expect() -> None:
    assert amounts.btc(150_000_000) == "1.50000000 BTC (150,000,000 sats)"
    assert amounts.btc(1) == "0.00000001 BTC (1 sats)"
    assert amounts.eth(750 * 10**15) == "0.75 ETH (750,000,000,000,000,000 wei)"
    assert amounts.eth(50 * 10**18) == "50.00 ETH (50,000,000,000,000,000,000 wei)"
    assert amounts.of_asset("tRGT", 10**23, "tRGT").startswith("100,000 tRGT (")
    assert amounts.decimal_text(-5, 2) == "-0.05"


@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(0, 18))
def test_decimal_text_is_exact(amount: int, decimals: int) -> None:
    text = amounts.decimal_text(amount, decimals).replace(",", "")
    with localcontext() as exact:
        exact.prec = 100  # wei-sized numbers exceed Decimal's default 28 digits
        assert Decimal(text) * (10**decimals) == amount


def test_amounts_refuse_floats() -> None:
    with pytest.raises(TypeError):
        amounts.decimal_text(1.5, 8)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        amounts.btc(True)


def test_shipped_vault_and_policy_agree() -> None:
    vault, policy = load_vault(BTC_VAULT), loader.load_file(BTC_POLICY)
    assert custody_problems(vault, policy) == []
    assert {c.institution for c in policy.custodians} == {
        "Ministry of Finance", "Central Bank", "Virtual Assets Regulatory Authority",
        "Office of the Auditor-General", "National Crypto Council"}


def test_disagreeing_vault_and_policy_are_refused() -> None:
    vault, policy = load_vault(BTC_VAULT), loader.load_file(BTC_POLICY)
    moved = dataclasses.replace(policy.custodians[2], institution="Central Bank")
    other = dataclasses.replace(policy, vault="another-vault",
                                custodians=(*policy.custodians[:2], moved,
                                            *policy.custodians[3:]))
    problems = custody_problems(vault, other)
    assert len(problems) == 3  # vault id, custodian institutions, four institutions only
    with pytest.raises(ConfigError, match="disagree"):
        require_consistent(vault, other)


def test_workdir_is_wiped_only_when_the_demo_made_it(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    with pytest.raises(ConfigError, match="refusing to wipe"):
        reset_workdir(foreign)
    assert (foreign / "thesis.txt").read_text() == "precious"
    made = reset_workdir(tmp_path / "demo")
    (made / "old-ledger.sqlite").write_text("x")
    again = reset_workdir(made)
    assert sorted(p.name for p in again.iterdir()) == [MARKER]


def test_story_clock_only_moves_forward() -> None:
    clock = StoryClock()
    before = clock()
    after = clock.advance(86400)
    assert (after - before).total_seconds() >= 86400
    with pytest.raises(ValueError):
        clock.advance(0)
