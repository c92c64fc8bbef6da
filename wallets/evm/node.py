"""Connecting to an EVM node safely, and the service's own EVM key.

The chain id is asked of the node and checked against the network rules before anything
else happens. The service key (it pays gas for execTransaction and anchoring; it holds no
reserve funds) comes from the encrypted keystore; only on the local anvil chain may the
labelled TEST deployer key stand in for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from reserve.errors import ConfigError, NodeUnavailable
from wallets.evm import testkeys
from wallets.evm.keys import load_account
from wallets.evm.network import LOCAL_CHAIN_ID, EVMNetwork, require_chain_allowed

RPC_TIMEOUT_SECONDS = 15
KEY_PASSPHRASE_ENV = "RESERVE_EVM_KEY_PASSPHRASE"  # noqa: S105 (a variable name)


def connect(rpc_url: str, networks: dict[int, EVMNetwork], *, mainnet_enabled: bool = False,
            mainnet_flag: bool = False) -> tuple[Web3, str]:
    """(web3, network name) for `rpc_url`, refusing networks this deployment does not allow."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
    try:
        chain_id = w3.eth.chain_id
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node at {rpc_url} unreachable: {error}") from None
    name = require_chain_allowed(chain_id, networks, mainnet_enabled=mainnet_enabled,
                                 mainnet_flag=mainnet_flag)
    return w3, name


def service_account(w3: Web3, key_file: Path | None) -> LocalAccount:
    """The service's EVM account: from `key_file`, or the TEST deployer key on anvil only."""
    if key_file is not None:
        passphrase = os.environ.get(KEY_PASSPHRASE_ENV)
        if not passphrase:
            raise ConfigError(f"set {KEY_PASSPHRASE_ENV} to unlock {key_file}")
        return load_account(key_file, passphrase)
    if w3.eth.chain_id != LOCAL_CHAIN_ID:
        raise ConfigError("a service key file (--key-file) is required outside the local "
                          "anvil chain; the TEST deployer key is for anvil only")
    return testkeys.deployer_account()
