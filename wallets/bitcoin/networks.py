"""Network safety: which Bitcoin network a vault runs on, and which addresses belong to it.

Every address that enters the system (a transfer destination, a change output read back from a
PSBT, an address the node hands out) passes `require_address`, so a mainnet address can never
be paid from a test vault or the other way round. Decoding and checksum validation use
bitcoinlib (the brief's Bitcoin library); embit then gives the scriptPubKey that goes in the
transaction, and the two must agree on the witness program.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bitcoinlib.keys import deserialize_address
from embit import script as embit_script
from embit.networks import NETWORKS

from reserve.errors import NetworkSafetyError

NETWORK_NAMES = ("regtest", "signet", "testnet4", "testnet", "mainnet")
# bech32 human-readable parts, and base58 version bytes, per network.
_BECH32_HRP = {"mainnet": "bc", "testnet": "tb", "testnet4": "tb", "signet": "tb",
               "regtest": "bcrt"}
_BASE58_VERSIONS = {"mainnet": {0x00, 0x05}}
_TEST_BASE58_VERSIONS = {0x6F, 0xC4}
# bitcoinlib's network names for the same chains; it treats regtest base58 like testnet.
_BITCOINLIB_NAMES = {"mainnet": {"bitcoin"}, "testnet": {"testnet"}, "testnet4": {"testnet4"},
                     "signet": {"signet"}, "regtest": {"regtest", "testnet"}}


@dataclass(frozen=True)
class ChainParams:
    name: str
    coin_type: int  # BIP 44/48 coin type: 0 on mainnet, 1 on every test network
    embit: dict[str, Any]

    @property
    def hrp(self) -> str:
        return _BECH32_HRP[self.name]


def params(network: str) -> ChainParams:
    """Chain parameters for a network name; unknown names are refused."""
    if network not in NETWORK_NAMES:
        raise NetworkSafetyError(f"unknown Bitcoin network {network!r}; "
                                 f"expected one of {list(NETWORK_NAMES)}")
    embit_name = {"mainnet": "main", "testnet": "test", "testnet4": "test",
                  "signet": "signet", "regtest": "regtest"}[network]
    return ChainParams(name=network, coin_type=0 if network == "mainnet" else 1,
                       embit=NETWORKS[embit_name])


def require_network_allowed(network: str, *, mainnet_enabled: bool,
                            mainnet_flag: bool) -> ChainParams:
    """Refuse mainnet unless it is enabled in the config AND asked for on the command line."""
    chain = params(network)
    if network == "mainnet" and not (mainnet_enabled and mainnet_flag):
        raise NetworkSafetyError(
            "mainnet refused: set mainnet_enabled = true in the config and pass --mainnet "
            f"(config enabled={mainnet_enabled}, flag={mainnet_flag})")
    return chain


def _is_bech32(address: str) -> bool:
    return address.lower().startswith(("bc1", "tb1", "bcrt1"))


def address_networks(address: str) -> frozenset[str]:
    """The networks an address is valid on; raises NetworkSafetyError if it does not decode."""
    if not isinstance(address, str) or not 14 <= len(address) <= 90:
        raise NetworkSafetyError(f"not a Bitcoin address: {address!r}")
    try:
        decoded = deserialize_address(address)
    except Exception as error:  # bitcoinlib raises several unrelated types
        raise NetworkSafetyError(f"not a valid Bitcoin address {address!r}: {error}") from None
    if _is_bech32(address):
        hrp = address.lower().rsplit("1", 1)[0]
        names = {name for name, value in _BECH32_HRP.items() if value == hrp}
    else:
        version = _base58_version(address)
        names = ({"mainnet"} if version in _BASE58_VERSIONS["mainnet"] else
                 {"testnet", "testnet4", "signet", "regtest"}
                 if version in _TEST_BASE58_VERSIONS else set())
    bitcoinlib_names = set(decoded.get("networks") or [decoded.get("network")])
    agreed = {name for name in names if _BITCOINLIB_NAMES[name] & bitcoinlib_names}
    if not agreed:
        raise NetworkSafetyError(f"address {address!r} belongs to no known network")
    return frozenset(agreed)


def _base58_version(address: str) -> int:
    from embit.base58 import decode_check

    try:
        version: int = decode_check(address)[0]
    except Exception:
        raise NetworkSafetyError(f"not a valid base58 address {address!r}") from None
    return version


def require_address(address: str, network: str) -> bytes:
    """The scriptPubKey of `address`, refusing addresses of any other network."""
    networks = address_networks(address)
    if network not in networks:
        raise NetworkSafetyError(
            f"address {address!r} is for {sorted(networks)}, not for {network}")
    try:
        script_pubkey: bytes = embit_script.address_to_scriptpubkey(address).data
    except Exception as error:
        raise NetworkSafetyError(f"cannot encode address {address!r}: {error}") from None
    return script_pubkey
