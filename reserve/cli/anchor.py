"""`reserve ledger anchor` and the anchor check of `reserve ledger verify --rpc-url`.

Two functions for the ledger commands: `anchor_command` (a typer command: post the latest
checkpoint to ReserveRegistry and record the anchor) and `verify_anchors` (findings, as
values, comparing the registry with the ledger). The registry address comes from
--registry or from the EVM vault's `vault.registered` entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from reserve.cli.common import emit, fail, load_settings, open_ledger
from reserve.errors import EVMError, ReserveError

# web3 and the EVM stack load in the commands that reach a node, not for `reserve --help`.
if TYPE_CHECKING:
    from reserve.ledger.store import Ledger
    from wallets.evm import anchor


def _connect(settings: Any, rpc_url: str, mainnet: bool) -> Any:
    from wallets.evm import node
    from wallets.evm.network import load_networks

    networks = load_networks(settings.resolve("config/evm/networks.toml"))
    w3, _ = node.connect(rpc_url, networks, mainnet_enabled=settings.mainnet_enabled,
                         mainnet_flag=mainnet)
    return w3


def registry_address(ledger: Ledger, chain_id: int, given: str | None) -> str:
    """`given`, else the registry of the latest EVM vault registered on this chain."""
    from reserve.events.custody import EvmVaultRegistered, VaultRegistered

    if given:
        return given
    found = None
    for entry in ledger.entries(kinds=[VaultRegistered.KIND]):
        vault = VaultRegistered.of(entry)
        if isinstance(vault, EvmVaultRegistered) and vault.chain_id == chain_id \
                and vault.registry:
            found = vault.registry
    if found is None:
        raise EVMError(f"no ReserveRegistry known on chain {chain_id}: pass --registry")
    return found


def verify_anchors(ledger: Ledger, rpc_url: str, registry: str | None = None, *,
                   settings: Any = None, mainnet: bool = False) -> list[anchor.Finding]:
    """Findings comparing the registry's anchored checkpoints with `ledger` (empty: all good).

    For `reserve ledger verify --rpc-url`. Network rules apply to the node's chain id.
    """
    from wallets.evm import anchor

    settings = settings or load_settings(None)
    w3 = _connect(settings, rpc_url, mainnet)
    return anchor.verify_anchors(ledger, w3, registry_address(ledger, w3.eth.chain_id,
                                                              registry))


def anchor_command(
        rpc_url: str = typer.Option(..., "--rpc-url", envvar="RESERVE_EVM_RPC_URL",
                                    help="EVM JSON-RPC URL of the anchoring chain."),
        registry: str = typer.Option(None, "--registry", help="ReserveRegistry address."),
        tree_size: int = typer.Option(None, "--tree-size", min=1, help=(
            "Anchor the ledger root at this size instead of the latest checkpoint.")),
        key_file: Path = typer.Option(None, "--key-file", help=(
            "Anchoring key keystore (passphrase in RESERVE_EVM_KEY_PASSPHRASE); anvil "
            "falls back to the TEST deployer key.")),
        mainnet: bool = typer.Option(False, "--mainnet"),
        config: str = typer.Option(None, "--config"),
        database_url: str = typer.Option(None, "--database-url"),
        as_json: bool = typer.Option(False, "--json")) -> None:
    """Post the latest checkpoint (tree size, root) to ReserveRegistry and record it."""
    from wallets.evm import anchor, node

    try:
        settings = load_settings(config)
        w3 = _connect(settings, rpc_url, mainnet)
        account = node.service_account(w3, key_file)
        with open_ledger(settings, database_url) as ledger:
            address = registry_address(ledger, w3.eth.chain_id, registry)
            entry = anchor.anchor_checkpoint(ledger, w3, address, account, tree_size=tree_size)
    except ReserveError as error:
        fail(str(error))
        return
    from reserve.events.records import CheckpointAnchored

    anchored = CheckpointAnchored.of(entry)
    emit(entry.payload, as_json, f"anchored tree size {anchored.tree_size} root "
         f"{anchored.root_hash} in registry {anchored.registry} (index {anchored.index}), tx "
         f"{anchored.tx_hash} block {anchored.block_number}; ledger entry {entry.seq}")
