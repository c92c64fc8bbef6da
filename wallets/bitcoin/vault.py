"""The vault model: an M-of-N P2WSH sortedmulti vault described by a standard descriptor.

A vault is `wsh(sortedmulti(M,[fp/48h/c'/0h/2h]xpub/<0;1>/*,...))` (BIP 380-389, BIP 48).
Custodians hand in xpubs with key origins; the service never holds their private keys.
Everything here is pure: addresses, witness scripts and BIP 32 derivations are computed
locally so they can be compared with what bitcoind derives for the same descriptor.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from embit import bip32
from embit.descriptor import Descriptor
from embit.descriptor.checksum import add_checksum
from embit.script import Script

from reserve.errors import ConfigError
from wallets.bitcoin.networks import ChainParams, params

RECEIVE, CHANGE = 0, 1
INDEX_MAX = 2**31 - 1
CUSTODIANS_MAX = 15  # P2WSH standardness limit for CHECKMULTISIG
DERIVATION_CACHE_MAX = 10_000


@dataclass(frozen=True)
class Custodian:
    name: str
    institution: str
    key_origin: str  # "[fingerprint/48h/1h/0h/2h]"
    xpub: str

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.key_origin.strip("[]").split("/")[0])

    @property
    def origin_path(self) -> list[int]:
        inner = self.key_origin.strip("[]")
        path: list[int] = bip32.parse_path("m/" + inner.split("/", 1)[1])
        return path

    @cached_property
    def hdkey(self) -> bip32.HDKey:
        return bip32.HDKey.from_string(self.xpub)

    def descriptor_key(self) -> str:
        return f"{self.key_origin}{self.xpub}/<0;1>/*"


@dataclass(frozen=True)
class FeeSettings:
    floor_sat_vb: int = 1
    ceiling_sat_vb: int = 500
    fee_sats_max: int = 1_000_000
    confirmation_target: int = 6


@dataclass(frozen=True)
class Vault:
    vault_id: str
    network: str
    threshold: int
    custodians: tuple[Custodian, ...]
    confirmations_min: int = 1
    fees: FeeSettings = FeeSettings()

    def __post_init__(self) -> None:
        count = len(self.custodians)
        if not 1 <= self.threshold <= count <= CUSTODIANS_MAX:
            raise ConfigError(f"vault {self.vault_id}: need 1 <= M <= N <= {CUSTODIANS_MAX}, "
                              f"got {self.threshold}-of-{count}")
        chain = params(self.network)
        fingerprints = {c.fingerprint for c in self.custodians}
        if len(fingerprints) != count or len({c.xpub for c in self.custodians}) != count:
            raise ConfigError(f"vault {self.vault_id}: custodians' keys must be distinct")
        for custodian in self.custodians:
            path = custodian.origin_path
            expected = [48 + 2**31, chain.coin_type + 2**31]
            if path[:2] != expected or len(path) != 4 or path[2] < 2**31 \
                    or path[3] != 2 + 2**31:
                raise ConfigError(f"vault {self.vault_id}: {custodian.name}'s key origin "
                                  f"{custodian.key_origin} is not a BIP 48 P2WSH path for "
                                  f"{self.network}")
            if custodian.hdkey.version != chain.embit["xpub"] or custodian.hdkey.is_private:
                raise ConfigError(f"vault {self.vault_id}: {custodian.name}'s key is not a "
                                  f"public key for {self.network}")

    @property
    def chain(self) -> ChainParams:
        return params(self.network)

    def descriptor(self) -> str:
        """The multipath descriptor with its checksum (the vault's identity)."""
        keys = ",".join(c.descriptor_key() for c in self.custodians)
        descriptor: str = add_checksum(f"wsh(sortedmulti({self.threshold},{keys}))")
        return descriptor

    def branch_descriptor(self, branch: int) -> str:
        """The single-path descriptor of one chain (0 receive, 1 change), with checksum."""
        keys = ",".join(f"{c.key_origin}{c.xpub}/{branch}/*" for c in self.custodians)
        descriptor: str = add_checksum(f"wsh(sortedmulti({self.threshold},{keys}))")
        return descriptor

    @cached_property
    def _descriptor(self) -> Descriptor:
        return Descriptor.from_string(self.descriptor().split("#")[0])

    @cached_property
    def _derived_cache(self) -> dict[tuple[int, int], Descriptor]:
        return {}

    def derived(self, branch: int, index: int) -> Descriptor:
        """Requires branch in (0, 1) and 0 <= index <= INDEX_MAX."""
        if branch not in (RECEIVE, CHANGE) or not 0 <= index <= INDEX_MAX:
            raise ConfigError(f"bad derivation branch/index {branch}/{index}")
        cache = self._derived_cache
        if (branch, index) not in cache:
            if len(cache) >= DERIVATION_CACHE_MAX:
                cache.clear()
            cache[(branch, index)] = self._descriptor.derive(index, branch_index=branch)
        return cache[(branch, index)]

    def address(self, branch: int, index: int) -> str:
        address: str = self.derived(branch, index).address(self.chain.embit)
        return address

    def script_pubkey(self, branch: int, index: int) -> bytes:
        data: bytes = self.derived(branch, index).script_pubkey().data
        return data

    def witness_script(self, branch: int, index: int) -> Script:
        script: Script = self.derived(branch, index).witness_script()
        return script

    def derivations(self, branch: int, index: int) -> dict[bytes, tuple[Custodian, list[int]]]:
        """Each custodian's child public key (SEC) at branch/index, with its full BIP 32 path."""
        # The derived descriptor already holds each custodian's child key, in config order.
        result: dict[bytes, tuple[Custodian, list[int]]] = {}
        keys = self.derived(branch, index).keys
        for custodian, key in zip(self.custodians, keys, strict=True):
            result[key.key.sec()] = (custodian, [*custodian.origin_path, branch, index])
        return result

    def custodian(self, name: str) -> Custodian:
        for custodian in self.custodians:
            if custodian.name == name:
                return custodian
        raise ConfigError(f"vault {self.vault_id}: no custodian named {name!r}")


def _custodian(raw: dict[str, Any], where: str) -> Custodian:
    try:
        return Custodian(name=str(raw["name"]), institution=str(raw["institution"]),
                         key_origin=str(raw["key_origin"]), xpub=str(raw["xpub"]))
    except KeyError as error:
        raise ConfigError(f"{where}: custodian missing {error}") from None


def vault_from_dict(raw: dict[str, Any], where: str = "vault") -> Vault:
    try:
        fees_raw = raw.get("fees", {})
        fees = FeeSettings(**{k: int(v) for k, v in fees_raw.items()})
        return Vault(vault_id=str(raw["vault_id"]), network=str(raw["network"]),
                     threshold=int(raw["threshold"]),
                     custodians=tuple(_custodian(c, where) for c in raw["custodians"]),
                     confirmations_min=int(raw.get("confirmations_min", 1)), fees=fees)
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"{where}: malformed vault config: {error!r}") from None


def load_vault(path: str | Path) -> Vault:
    """Load a vault config file (TOML) from `path`."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"vault config not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return vault_from_dict(raw, str(path))
