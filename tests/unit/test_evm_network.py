"""EVM network safety: anvil always, testnets by config, mainnet only when enabled twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from reserve.errors import ConfigError, NetworkSafetyError
from wallets.evm.network import load_networks, require_chain_allowed

PROJECT = Path(__file__).resolve().parents[2]


def test_project_config_loads() -> None:
    networks = load_networks(PROJECT / "config/evm/networks.toml")
    assert {network.name for network in networks.values()} >= {"anvil", "sepolia"}
    assert networks[11155111].confirmations >= 1


def test_rules() -> None:
    networks = load_networks(PROJECT / "config/evm/networks.toml")
    assert require_chain_allowed(31337, {}) == "anvil"
    assert require_chain_allowed(11155111, networks) == "sepolia"
    with pytest.raises(NetworkSafetyError, match="sepolia: add it"):
        require_chain_allowed(11155111, {})
    with pytest.raises(NetworkSafetyError, match="not a configured network"):
        require_chain_allowed(424242, networks)
    for enabled, flag in ((False, False), (True, False), (False, True)):
        with pytest.raises(NetworkSafetyError, match="mainnet"):
            require_chain_allowed(1, networks, mainnet_enabled=enabled, mainnet_flag=flag)
    assert require_chain_allowed(1, networks, mainnet_enabled=True, mainnet_flag=True) \
        == "mainnet"


@pytest.mark.parametrize("body,message", [
    ("[networks.main]\nchain_id = 1\n", "mainnet is never configured"),
    ("[networks.x]\nchain_id = 424242\n", "not a known testnet"),
    ("[networks.x]\nchain_id = 0\n", "positive integer"),
    ("[networks.x]\nchain_id = 17000\nconfirmations = 0\n", "confirmations"),
    ("[networks.a]\nchain_id = 17000\n[networks.b]\nchain_id = 17000\n", "twice"),
    ("networks = [", "invalid TOML"),
])
def test_bad_configs_are_refused(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "networks.toml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=message):
        load_networks(path)


def test_custom_testnet_needs_to_be_vouched_for(tmp_path: Path) -> None:
    path = tmp_path / "networks.toml"
    path.write_text("[networks.devnet]\nchain_id = 424242\ntestnet = true\n")
    assert require_chain_allowed(424242, load_networks(path)) == "devnet"
