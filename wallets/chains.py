"""The chain adapter for a vault, built from the service's configuration.

The workflow moves a proposal to the chain through a `ChainAdapter`
(reserve/transfers/chain.py); which one depends on the proposal's chain: `bip122:*` is a
Bitcoin vault (a descriptor multisig, wallets/bitcoin), `eip155:*` an EVM vault (a Safe,
wallets/evm). The CLI (`reserve transfer ...`) and the API's transfer routes both call
`adapter_for`, so one configuration reaches the same nodes from either.

Where the pieces come from:

- Bitcoin: the vault's config file is the one under `[bitcoin] vaults_dir` (default
  `config/vaults`) whose `vault_id` is the vault's; the node is `[bitcoin] rpc_url`,
  `rpc_user`, and the password from the environment variable `[bitcoin] rpc_password_env`
  (default RESERVE_BTC_RPC_PASSWORD). The vault must have been imported watch-only
  (`reserve btc watch`).
- EVM: the vault is `config/evm/vaults.toml`'s entry of that id, deployed and recorded in
  the ledger (`vault.registered`, by `reserve evm deploy`); the node is the vault's network
  in `config/evm/networks.toml` (or the given URL); the service's gas-paying key is
  `[evm] key_file` (passphrase from RESERVE_EVM_KEY_PASSPHRASE), or on anvil only the
  labelled TEST deployer key.

Each value may be overridden by `ChainOptions` (command-line flags). Nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reserve import config as reserve_config
from reserve.errors import ConfigError, EVMError
from reserve.events.custody import EvmVaultRegistered, VaultRegistered
from wallets.addresses import chain_family

if TYPE_CHECKING:
    from reserve.transfers.chain import ChainAdapter
    from wallets.bitcoin.rpc import BitcoinRPC
    from wallets.bitcoin.vault import Vault

DEFAULT_BTC_RPC_URL = "http://127.0.0.1:18443"
DEFAULT_BTC_VAULTS_DIR = "config/vaults"
EVM_VAULTS_FILE = "config/evm/vaults.toml"
EVM_NETWORKS_FILE = "config/evm/networks.toml"


@dataclass(frozen=True)
class ChainOptions:
    """Overrides of the configuration (None: take the config's value)."""

    btc_rpc_url: str | None = None
    btc_rpc_user: str | None = None
    btc_rpc_password: str | None = None
    evm_rpc_url: str | None = None
    evm_key_file: Path | None = None
    mainnet: bool = False


def bitcoin_rpc(settings: reserve_config.Settings, options: ChainOptions = ChainOptions(),
                wallet: str | None = None) -> BitcoinRPC:
    """The bitcoind RPC client the configuration (or the overrides) name."""
    from wallets.bitcoin.rpc import BitcoinRPC

    table: dict[str, Any] = settings.raw.get("bitcoin", {})
    password = options.btc_rpc_password or os.environ.get(
        str(table.get("rpc_password_env", "RESERVE_BTC_RPC_PASSWORD")), "")
    return BitcoinRPC(url=options.btc_rpc_url or str(table.get("rpc_url", DEFAULT_BTC_RPC_URL)),
                      user=options.btc_rpc_user or str(table.get("rpc_user", "")),
                      password=password, wallet=wallet)


def bitcoin_vault(settings: reserve_config.Settings, vault_id: str,
                  options: ChainOptions = ChainOptions()) -> Vault:
    """The Bitcoin vault config whose vault_id is `vault_id`, checked against the network."""
    from wallets.bitcoin.networks import require_network_allowed
    from wallets.bitcoin.vault import load_vault

    table: dict[str, Any] = settings.raw.get("bitcoin", {})
    folder = settings.resolve(str(table.get("vaults_dir", DEFAULT_BTC_VAULTS_DIR)))
    found = [vault for vault in (load_vault(path) for path in sorted(folder.glob("*.toml")))
             if vault.vault_id == vault_id]
    if not found:
        raise ConfigError(f"no Bitcoin vault config with vault_id {vault_id!r} in {folder}")
    if len(found) > 1:
        raise ConfigError(f"{len(found)} Bitcoin vault configs in {folder} claim vault_id "
                          f"{vault_id!r}: keep one")
    vault = found[0]
    require_network_allowed(vault.network, mainnet_enabled=settings.mainnet_enabled,
                            mainnet_flag=options.mainnet)
    if vault.network != settings.network:
        raise ConfigError(f"vault {vault_id} is on {vault.network}, the service is configured "
                          f"for {settings.network}")
    return vault


def evm_registration(ledger: Any, vault_id: str, chain_id: int) -> EvmVaultRegistered:
    """The latest `vault.registered` entry of this EVM vault on this chain."""
    found = None
    for entry in ledger.entries(kinds=[VaultRegistered.KIND]):
        registered = VaultRegistered.of(entry)
        if isinstance(registered, EvmVaultRegistered) and registered.vault == vault_id \
                and registered.chain_id == chain_id:
            found = registered
    if found is None:
        raise EVMError(f"EVM vault {vault_id!r} is not deployed on chain {chain_id}: "
                       "run `reserve evm deploy` first")
    return found


def _bitcoin_adapter(settings: reserve_config.Settings, ledger: Any, vault_id: str,
                     options: ChainOptions, clock: Callable[[], datetime] | None
                     ) -> ChainAdapter:
    from wallets.bitcoin.adapter import BitcoinAdapter

    vault = bitcoin_vault(settings, vault_id, options)
    return BitcoinAdapter.connect(vault, ledger, bitcoin_rpc(settings, options), clock=clock)


@dataclass(frozen=True)
class EvmConnection:
    """An EVM vault's node, its deployment as the ledger recorded it, and its config."""

    w3: Any
    vault: Any  # wallets.evm.config.EVMVaultConfig
    registered: EvmVaultRegistered
    networks: dict[int, Any]


def evm_connection(settings: reserve_config.Settings, ledger: Any, vault_id: str,
                   options: ChainOptions = ChainOptions()) -> EvmConnection:
    """Connect to `vault_id`'s network (checked against the allowed networks)."""
    from wallets.evm import node
    from wallets.evm.config import load_vaults
    from wallets.evm.network import load_networks

    vaults = load_vaults(settings.resolve(EVM_VAULTS_FILE))
    if vault_id not in vaults:
        raise EVMError(f"unknown EVM vault {vault_id!r}; known: {sorted(vaults)}")
    vault = vaults[vault_id]
    networks = load_networks(settings.resolve(EVM_NETWORKS_FILE))
    rpc_url = options.evm_rpc_url or next(
        (n.rpc_url for n in networks.values() if n.name == vault.network), "")
    if not rpc_url:
        raise EVMError(f"no RPC URL for network {vault.network!r}: configure it in "
                       f"{EVM_NETWORKS_FILE} or pass one")
    w3, _network = node.connect(rpc_url, networks, mainnet_enabled=settings.mainnet_enabled,
                                mainnet_flag=options.mainnet)
    return EvmConnection(w3, vault, evm_registration(ledger, vault_id, w3.eth.chain_id),
                         networks)


def evm_service_account(settings: reserve_config.Settings, w3: Any,
                        options: ChainOptions = ChainOptions()) -> Any:
    """The service's EVM key (pays gas, registers releases, holds no reserve funds)."""
    from wallets.evm import node

    table: dict[str, Any] = settings.raw.get("evm", {})
    key_file = options.evm_key_file or (settings.resolve(str(table["key_file"]))
                                        if table.get("key_file") else None)
    return node.service_account(w3, key_file)


def _evm_adapter(settings: reserve_config.Settings, ledger: Any, vault_id: str,
                 options: ChainOptions) -> ChainAdapter:
    from wallets.evm import contracts
    from wallets.evm.adapter import EVMAdapter

    found = evm_connection(settings, ledger, vault_id, options)
    registered, w3 = found.registered, found.w3
    account = evm_service_account(settings, w3, options)
    symbol = str(contracts.at(w3, "ReserveToken", registered.token).functions.symbol().call())
    configured = found.networks.get(w3.eth.chain_id)
    return EVMAdapter(w3=w3, vault_id=vault_id, safe_address=registered.safe, account=account,
                      tokens={symbol: registered.token}, guard_address=registered.guard,
                      confirmations=configured.confirmations if configured else 1)


def is_evm_vault(settings: reserve_config.Settings, vault_id: str) -> bool:
    """Whether config/evm/vaults.toml lists `vault_id` (peeked at: no EVM code is loaded)."""
    import tomllib

    path = Path(settings.resolve(EVM_VAULTS_FILE))
    if not path.is_file():
        return False
    try:
        tables = tomllib.loads(path.read_text()).get("vaults", [])
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return any(isinstance(t, dict) and t.get("id") == vault_id for t in tables)


@dataclass
class ConfiguredGuards:
    """The FreezeMirror (reserve/transfers/chain.py) of every EVM vault of the configuration.

    Whichever command or request records a freeze or unfreeze (a freeze; an unfreeze that a
    vote or a refresh applies) carries it to that vault's ReserveGuard through the service's
    registrar key. It connects only when one is recorded, after the ledger commit; a
    Bitcoin vault is not covered. `sent` lists the transactions it sent.
    """

    settings: reserve_config.Settings
    ledger: Any
    options: ChainOptions = ChainOptions()
    sent: list[str] = field(default_factory=list)

    def covers(self, vault: str) -> bool:
        return is_evm_vault(self.settings, vault)

    def freeze(self, vault: str) -> str | None:
        return self._sent(self._mirror(vault).freeze(vault))

    def unfreeze(self, vault: str) -> str | None:
        return self._sent(self._mirror(vault).unfreeze(vault))

    def _sent(self, tx_hash: str | None) -> str | None:
        if tx_hash is not None:
            self.sent.append(tx_hash)
        return tx_hash

    def _mirror(self, vault: str) -> Any:
        from wallets.evm.guard import GuardFreezeMirror

        found = evm_connection(self.settings, self.ledger, vault, self.options)
        account = evm_service_account(self.settings, found.w3, self.options)
        return GuardFreezeMirror(w3=found.w3, account=account,
                                 guards={vault: found.registered.guard})


def adapter_for(settings: reserve_config.Settings, ledger: Any, vault_id: str, chain: str, *,
                options: ChainOptions = ChainOptions(),
                clock: Callable[[], datetime] | None = None) -> ChainAdapter:
    """The chain adapter for `vault_id` on `chain` (a CAIP-2 id from its policy)."""
    family = chain_family(chain)
    if family == "bitcoin":
        return _bitcoin_adapter(settings, ledger, vault_id, options, clock)
    return _evm_adapter(settings, ledger, vault_id, options)


def share_from_file(settings: reserve_config.Settings, vault_id: str, chain: str,
                    custodian: str, data: bytes) -> tuple[str, str]:
    """(signer, share) as the vault's chain adapter takes them, from a custodian's file.

    Bitcoin: the custodian's signed PSBT (binary, base64 or hex); the adapter checks it is
    signed by `custodian`'s key. EVM: the signature JSON of `reserve-sign evm-sign`; it
    must be signed by the owner address the vault's config lists for `custodian`.
    """
    import json

    if chain_family(chain) == "bitcoin":
        import base64

        from wallets.bitcoin.psbt_check import psbt_bytes

        return custodian, base64.b64encode(psbt_bytes(data)).decode("ascii")
    from wallets.evm.config import load_vaults
    from wallets.evm.safe_tx import checksum

    try:
        document = json.loads(data)
        signer, signature = str(document["signer"]), str(document["signature"])
    except (ValueError, KeyError, TypeError) as error:
        raise EVMError(f"not a signature document of `reserve-sign evm-sign`: {error}"
                       ) from None
    vaults = load_vaults(settings.resolve(EVM_VAULTS_FILE))
    owners = {o.custodian: o.address for o in vaults[vault_id].owners} \
        if vault_id in vaults else {}
    if custodian not in owners:
        raise EVMError(f"{custodian!r} owns no key of EVM vault {vault_id!r}")
    if checksum(signer) != owners[custodian]:
        raise EVMError(f"the signature is by {signer}, but {custodian}'s owner address is "
                       f"{owners[custodian]}")
    return owners[custodian], signature


@dataclass
class ConfiguredChains:
    """The chain connections of one service: adapters and share parsing, from its config."""

    settings: reserve_config.Settings
    ledger: Any
    options: ChainOptions = ChainOptions()
    clock: Callable[[], datetime] | None = None

    def adapter(self, vault_id: str, chain: str) -> ChainAdapter:
        return adapter_for(self.settings, self.ledger, vault_id, chain, options=self.options,
                           clock=self.clock)

    def share(self, vault_id: str, chain: str, custodian: str, data: bytes
              ) -> tuple[str, str]:
        return share_from_file(self.settings, vault_id, chain, custodian, data)

    def freeze_mirror(self) -> ConfiguredGuards:
        return ConfiguredGuards(self.settings, self.ledger, self.options)
