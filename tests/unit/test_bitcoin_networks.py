"""Network safety: addresses of another network are refused, mainnet needs two switches."""

from __future__ import annotations

import pytest

from reserve.errors import NetworkSafetyError
from wallets.bitcoin.networks import address_networks, require_address, require_network_allowed

REGTEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
TESTNET = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
MAINNET = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
MAINNET_P2PKH = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
TEST_P2SH = "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc"


@pytest.mark.parametrize("address,networks", [
    (REGTEST, {"regtest"}),
    (TESTNET, {"testnet", "testnet4", "signet"}),
    (MAINNET, {"mainnet"}),
    (MAINNET_P2PKH, {"mainnet"}),
    (TEST_P2SH, {"testnet", "testnet4", "signet", "regtest"}),
])
def test_address_networks(address: str, networks: set[str]) -> None:
    assert address_networks(address) == networks


@pytest.mark.parametrize("address,network", [(MAINNET, "regtest"), (REGTEST, "signet"),
                                             (TESTNET, "mainnet"), (MAINNET_P2PKH, "testnet4"),
                                             (TESTNET, "regtest")])
def test_address_of_another_network_is_refused(address: str, network: str) -> None:
    with pytest.raises(NetworkSafetyError, match="not for"):
        require_address(address, network)


@pytest.mark.parametrize("bad", ["", "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt081",
                                 "not an address at all", REGTEST.upper()[:-1], "1" * 40])
def test_malformed_addresses_are_refused(bad: str) -> None:
    with pytest.raises(NetworkSafetyError):
        require_address(bad, "regtest")


def test_script_pubkey_of_a_valid_address() -> None:
    assert require_address(REGTEST, "regtest").hex() == \
        "0014751e76e8199196d454941c45d1b3a323f1433bd6"


def test_mainnet_needs_config_and_flag() -> None:
    for enabled, flag in [(False, False), (True, False), (False, True)]:
        with pytest.raises(NetworkSafetyError, match="mainnet refused"):
            require_network_allowed("mainnet", mainnet_enabled=enabled, mainnet_flag=flag)
    assert require_network_allowed("mainnet", mainnet_enabled=True, mainnet_flag=True).coin_type == 0
    assert require_network_allowed("signet", mainnet_enabled=False, mainnet_flag=False).coin_type == 1
    with pytest.raises(NetworkSafetyError, match="unknown"):
        require_network_allowed("litecoin", mainnet_enabled=True, mainnet_flag=True)
