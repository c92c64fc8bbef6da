"""The freeze mirror the workflow commands give WorkflowService for EVM vaults.

`reserve freeze reserve-safe` records the freeze in the ledger and, in the same step, sets
the `frozen` flag of the vault's ReserveGuard through the service's registrar account.
The mirror connects only when a freeze or unfreeze is actually recorded, after the ledger
commit, so a node that is down never stops a freeze: the command then reports that the
chain did not follow, and `reserve evm sync` re-applies the ledger's state.

The node is the vault's network from config/evm/networks.toml (or RESERVE_EVM_RPC_URL);
the registrar key is RESERVE_EVM_KEY_FILE or the config's [evm] key_file (passphrase
RESERVE_EVM_KEY_PASSPHRASE), or the TEST deployer key on the local anvil chain only, as for
`reserve transfer`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reserve.errors import ConfigError, EVMError
from reserve.transfers.chain import FreezeMirror

RPC_URL_ENV = "RESERVE_EVM_RPC_URL"
KEY_FILE_ENV = "RESERVE_EVM_KEY_FILE"


@dataclass
class ConfiguredGuardMirror:
    """A FreezeMirror for one configured EVM vault, connecting on first use."""

    settings: Any
    ledger: Any
    vault: str
    network: str
    sent: list[str] = field(default_factory=list)  # transaction ids, for the command's output

    def covers(self, vault: str) -> bool:
        return vault == self.vault

    def freeze(self, vault: str) -> str | None:
        return self._record(self._connect().freeze(vault))

    def unfreeze(self, vault: str) -> str | None:
        return self._record(self._connect().unfreeze(vault))

    def _record(self, tx_hash: str | None) -> str | None:
        if tx_hash is not None:
            self.sent.append(tx_hash)
        return tx_hash

    def _connect(self) -> FreezeMirror:
        from reserve.cli.evm import registration
        from wallets.evm import node
        from wallets.evm.guard import GuardFreezeMirror
        from wallets.evm.network import load_networks

        networks = load_networks(self.settings.resolve("config/evm/networks.toml"))
        rpc_url = os.environ.get(RPC_URL_ENV) or next(
            (n.rpc_url for n in networks.values() if n.name == self.network), "")
        if not rpc_url:
            raise EVMError(f"no RPC URL for network {self.network!r}: set {RPC_URL_ENV}")
        w3, _ = node.connect(rpc_url, networks, mainnet_enabled=self.settings.mainnet_enabled)
        registered = registration(self.ledger, self.vault, w3.eth.chain_id)
        configured = self.settings.raw.get("evm", {}).get("key_file")
        key_file = os.environ.get(KEY_FILE_ENV) or (
            str(self.settings.resolve(str(configured))) if configured else None)
        account = node.service_account(w3, Path(key_file) if key_file else None)
        return GuardFreezeMirror(w3=w3, account=account, guards={self.vault: registered.guard})


def freeze_mirror_for(settings: Any, ledger: Any, vault: str) -> ConfiguredGuardMirror | None:
    """The mirror for `vault` if it is an EVM vault in config/evm/vaults.toml, else None.

    The file is only peeked at here (a Bitcoin vault's freeze loads no EVM code); it is
    parsed and checked in full when the mirror connects.
    """
    path = Path(settings.resolve("config/evm/vaults.toml"))
    if not path.is_file():
        return None
    try:
        tables = tomllib.loads(path.read_text()).get("vaults", [])
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    for table in tables:
        if isinstance(table, dict) and table.get("id") == vault:
            return ConfiguredGuardMirror(settings=settings, ledger=ledger, vault=vault,
                                         network=str(table.get("network", "")))
    return None


@dataclass
class ConfiguredGuards:
    """A FreezeMirror for every EVM vault of the configuration (the workflow commands' own).

    Whatever command records a freeze or unfreeze (`reserve freeze`, an unfreeze applied by
    `reserve approve` or `reserve proposal refresh`) carries it to that vault's guard; a
    Bitcoin vault is not covered and nothing is connected for it.
    """

    settings: Any
    ledger: Any
    mirrors: dict[str, ConfiguredGuardMirror | None] = field(default_factory=dict)

    def _mirror(self, vault: str) -> ConfiguredGuardMirror | None:
        if vault not in self.mirrors:
            self.mirrors[vault] = freeze_mirror_for(self.settings, self.ledger, vault)
        return self.mirrors[vault]

    @property
    def sent(self) -> list[str]:
        return [tx for mirror in self.mirrors.values() if mirror for tx in mirror.sent]

    def covers(self, vault: str) -> bool:
        return self._mirror(vault) is not None

    def freeze(self, vault: str) -> str | None:
        mirror = self._mirror(vault)
        return mirror.freeze(vault) if mirror else None

    def unfreeze(self, vault: str) -> str | None:
        mirror = self._mirror(vault)
        return mirror.unfreeze(vault) if mirror else None
