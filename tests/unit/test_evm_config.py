"""EVM vault config: parsed strictly, and consistent with the vault's custody policy."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from reserve.errors import ConfigError
from wallets.evm import testkeys
from wallets.evm.config import load_vaults

PROJECT = Path(__file__).resolve().parents[2]


def test_demo_vault_matches_its_policy() -> None:
    vault = load_vaults(PROJECT / "config/evm/vaults.toml")["reserve-safe"]
    policy = tomllib.loads((PROJECT / vault.policy).read_text())
    assert policy["vault"] == vault.id
    assert [owner.custodian for owner in vault.owners] == \
        [custodian["id"] for custodian in policy["custodians"]]
    # The guard allows no destination the policy does not list.
    listed = {d["address"] for d in policy["destinations"] if d["asset"] == "ETH"}
    assert set(vault.guard.destinations) <= listed
    # The guard's ETH limits are never tighter than what the policy lets through.
    (eth,) = [limit for limit in vault.guard.limits if limit.asset == "ETH"]
    daily = min(int(v["amount_max"]) for v in policy["assets"][0]["velocity"]
                if v["window_seconds"] == 86400)
    assert eth.daily_wei >= daily
    assert vault.owners[0].address == testkeys.custodian_account(1).address
    assert 1 <= vault.threshold <= len(vault.owners)


@pytest.mark.parametrize("body,message", [
    ('[[vaults]]\nid = "v"\nnetwork = "anvil"\nthreshold = 2\n'
     '[[vaults.owners]]\ncustodian = "a"\ntest_key = 1\n'
     '[vaults.guard]\nlimits = []\n', "threshold"),
    ('[[vaults]]\nid = "v"\nnetwork = "anvil"\nthreshold = 1\n'
     '[[vaults.owners]]\ncustodian = "a"\ntest_key = 1\n'
     '[[vaults.owners]]\ncustodian = "b"\ntest_key = 1\n'
     '[vaults.guard]\nlimits = []\n', "distinct"),
    ('[[vaults]]\nid = "v"\nnetwork = "anvil"\nthreshold = 1\n'
     '[[vaults.owners]]\ncustodian = "a"\naddress = "0x12"\n'
     '[vaults.guard]\nlimits = []\n', "not an EVM address"),
    ('[[vaults]]\nid = "v"\nnetwork = "anvil"\nthreshold = 1\n'
     '[[vaults.owners]]\ncustodian = "a"\ntest_key = 1\n'
     '[vaults.guard]\n[[vaults.guard.limits]]\nasset = "ETH"\nper_transaction = 5\n'
     'daily = "9"\n', "decimal strings"),
    ('[[vaults]]\nid = "v"\nnetwork = "anvil"\nthreshold = 1\n'
     '[[vaults.owners]]\ncustodian = "a"\ntest_key = 1\n'
     '[vaults.guard]\n[[vaults.guard.limits]]\nasset = "ETH"\nper_transaction = "10"\n'
     'daily = "9"\n', "exceeds daily"),
    ('[[vaults]]\nid = "v"\n', "network"),
])
def test_bad_vault_configs_are_refused(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "vaults.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_vaults(path)
