"""EVM vault configuration (config/evm/vaults.toml): owners, threshold, guard limits.

Parsed once into frozen values; anything malformed is a ConfigError naming the key. Owners
are given by address, or by a TEST key number for demo vaults (flagged as such).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reserve.errors import ConfigError, EVMError
from wallets.evm import testkeys
from wallets.evm.safe_tx import checksum
from wallets.evm.vault import AssetLimit, GuardConfig


@dataclass(frozen=True)
class Owner:
    custodian: str
    address: str
    test_key: int | None  # set only for TEST custodians of demo vaults


@dataclass(frozen=True)
class EVMVaultConfig:
    id: str
    policy: str
    network: str
    threshold: int
    owners: tuple[Owner, ...]
    guard: GuardConfig
    demo: dict[str, int]

    @property
    def owner_addresses(self) -> tuple[str, ...]:
        return tuple(owner.address for owner in self.owners)


def _amount(value: Any, where: str) -> int:
    if not isinstance(value, str) or not value.isdigit():
        raise ConfigError(f"{where}: amounts are decimal strings of base units, got {value!r}")
    return int(value)


def _owner(table: dict[str, Any], where: str) -> Owner:
    custodian = table.get("custodian")
    if not isinstance(custodian, str) or not custodian:
        raise ConfigError(f"{where}.custodian: required")
    try:
        if "address" in table:
            return Owner(custodian, checksum(table["address"], f"{where}.address"), None)
        number = table.get("test_key")
        if not isinstance(number, int):
            raise ConfigError(f"{where}: give an address (or test_key for demo vaults)")
        return Owner(custodian, testkeys.custodian_account(number).address, number)
    except (EVMError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def _guard(table: dict[str, Any], where: str) -> GuardConfig:
    try:
        destinations = tuple(checksum(d, f"{where}.destinations") for d in
                             table.get("destinations", []))
        limits = tuple(AssetLimit(
            asset=limit["asset"] if limit["asset"] in ("ETH", "TOKEN")
            else checksum(limit["asset"], f"{where}.limits.asset"),
            per_transaction_wei=_amount(limit["per_transaction"], f"{where}.limits"),
            daily_wei=_amount(limit["daily"], f"{where}.limits")) for limit in table["limits"])
    except (KeyError, TypeError) as error:
        raise ConfigError(f"{where}: missing or malformed {error}") from None
    except EVMError as error:
        raise ConfigError(str(error)) from None
    for limit in limits:
        if limit.per_transaction_wei > limit.daily_wei:
            raise ConfigError(f"{where}: {limit.asset} per-transaction limit exceeds daily limit")
    return GuardConfig(destinations=destinations, limits=limits)


def _vault(table: dict[str, Any], index: int) -> EVMVaultConfig:
    where = f"vaults[{index}]"
    for key, kind in (("id", str), ("network", str), ("threshold", int)):
        if not isinstance(table.get(key), kind):
            raise ConfigError(f"{where}.{key}: required {kind.__name__}")
    owners = tuple(_owner(owner, f"{where}.owners[{n}]")
                   for n, owner in enumerate(table.get("owners", [])))
    if len({owner.address for owner in owners}) != len(owners):
        raise ConfigError(f"{where}: owners must be distinct")
    if not 1 <= table["threshold"] <= len(owners):
        raise ConfigError(f"{where}.threshold: must be 1..{len(owners)} (the owner count)")
    demo = {key: _amount(value, f"{where}.demo.{key}")
            for key, value in table.get("demo", {}).items()}
    return EVMVaultConfig(id=table["id"], policy=str(table.get("policy", "")),
                          network=table["network"], threshold=table["threshold"],
                          owners=owners, guard=_guard(table.get("guard", {}), f"{where}.guard"),
                          demo=demo)


def load_vaults(path: Path) -> dict[str, EVMVaultConfig]:
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"EVM vault config not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    vaults = [_vault(table, index) for index, table in enumerate(raw.get("vaults", []))]
    result = {vault.id: vault for vault in vaults}
    if len(result) != len(vaults):
        raise ConfigError(f"{path}: vault ids must be unique")
    return result
