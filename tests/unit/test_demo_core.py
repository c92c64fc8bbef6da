"""The demo's pure parts: its amounts, the vault/policy consistency check, the workdir guard."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reserve.demo.custody import custody_problems, require_consistent
from reserve.demo.stage import MARKER, StoryClock, reset_workdir
from reserve.demo.story import BTC_POLICY, BTC_VAULT
from reserve.demo.summary import amount_words
from reserve.errors import ConfigError
from reserve.policy import loader
from wallets.bitcoin.vault import load_vault


def test_demo_amounts_name_the_demo_token() -> None:
    assert amount_words("BTC", 150_000_000) == "1.50000000 BTC (150,000,000 sats)"
    assert amount_words("ETH", 750 * 10**15) == "0.75 ETH (750,000,000,000,000,000 wei)"
    assert amount_words("tRGT", 10**23) == \
        "100,000 tRGT (100,000,000,000,000,000,000,000 base units)"
    assert amount_words("tRGT", 15 * 10**17) == \
        "1.5 tRGT (1,500,000,000,000,000,000 base units)"


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
