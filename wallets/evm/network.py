"""Network safety for EVM chains: which chain ids this deployment may touch. Pure.

As for Bitcoin: the local anvil chain (31337) is always allowed for tests and demos, public
testnets only when the EVM network config names them, and Ethereum mainnet (chain id 1) is
refused unless mainnet is enabled in the config AND explicitly requested. The chain id is
always the one the node reports, never one typed by a user.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reserve.errors import ConfigError, NetworkSafetyError

LOCAL_CHAIN_ID = 31337
MAINNET_CHAIN_ID = 1
# Well-known public test networks, recognised by chain id so a misnamed one is caught.
KNOWN_TESTNETS = {11155111: "sepolia", 17000: "holesky", 560048: "hoodi"}


@dataclass(frozen=True)
class EVMNetwork:
    name: str
    chain_id: int
    rpc_url: str
    confirmations: int


def require_chain_allowed(chain_id: int, configured: dict[int, EVMNetwork], *,
                          mainnet_enabled: bool = False, mainnet_flag: bool = False) -> str:
    """The network's name if `chain_id` may be used here, else NetworkSafetyError."""
    if chain_id == MAINNET_CHAIN_ID:
        if mainnet_enabled and mainnet_flag:
            return "mainnet"
        raise NetworkSafetyError(
            "Ethereum mainnet (chain id 1) refused: set mainnet_enabled = true in the config "
            f"and pass --mainnet (config enabled={mainnet_enabled}, flag={mainnet_flag})")
    if chain_id == LOCAL_CHAIN_ID:
        return "anvil"
    if chain_id in configured:
        return configured[chain_id].name
    known = KNOWN_TESTNETS.get(chain_id)
    hint = f" ({known}: add it to config/evm/networks.toml)" if known else ""
    raise NetworkSafetyError(f"chain id {chain_id} is not a configured network{hint}")


def _network(name: str, table: dict[str, Any]) -> EVMNetwork:
    chain_id = table.get("chain_id")
    confirmations = table.get("confirmations", 1)
    if not isinstance(chain_id, int) or chain_id <= 0:
        raise ConfigError(f"networks.{name}.chain_id must be a positive integer")
    if not isinstance(confirmations, int) or not 1 <= confirmations <= 1000:
        raise ConfigError(f"networks.{name}.confirmations must be an integer in 1..1000")
    if chain_id == MAINNET_CHAIN_ID:
        raise ConfigError(f"networks.{name}: mainnet is never configured here; "
                          "it needs mainnet_enabled in config/reserve.toml and --mainnet")
    if chain_id not in KNOWN_TESTNETS and chain_id != LOCAL_CHAIN_ID \
            and table.get("testnet") is not True:
        raise ConfigError(f"networks.{name}: chain id {chain_id} is not a known testnet; "
                          "set testnet = true to vouch that it is one")
    return EVMNetwork(name=name, chain_id=chain_id, rpc_url=str(table.get("rpc_url", "")),
                      confirmations=confirmations)


def load_networks(path: Path) -> dict[int, EVMNetwork]:
    """Networks from a TOML file with one [networks.NAME] table each, keyed by chain id."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"EVM network config not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    networks = raw.get("networks", {})
    if not isinstance(networks, dict):
        raise ConfigError(f"{path}: [networks] must be a table")
    result: dict[int, EVMNetwork] = {}
    for name, table in networks.items():
        network = _network(name, table)
        if network.chain_id in result:
            raise ConfigError(f"{path}: chain id {network.chain_id} configured twice")
        result[network.chain_id] = network
    return result
