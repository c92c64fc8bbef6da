"""`reserve evm ...`: deploy a Safe vault, show it, and sync what the chain did.

Thin shell over wallets/evm: every command opens the ledger, connects to the node (network
rules checked against the chain id the node reports), does one step, and records it.
Transfers out of the Safe move only through `reserve transfer ...` (reserve/cli/transfer.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from reserve.cli.common import emit, fail, load_settings, open_ledger
from reserve.errors import EVMError, ReserveError

# web3 and the EVM stack load in the commands that use them, not for `reserve --help`.
if TYPE_CHECKING:
    from web3 import Web3

    from reserve.events.custody import EvmVaultRegistered
    from reserve.ledger.store import Ledger
    from wallets.evm.config import EVMVaultConfig

T = TypeVar("T")
evm_app = typer.Typer(no_args_is_help=True, help="EVM vaults: Safe multisig, guard, deposits.")

VaultOption = typer.Option("reserve-safe", "--vault", help="Vault id in config/evm/vaults.toml.")
JsonOption = typer.Option(False, "--json", help="Machine-readable JSON output.")


@dataclass(frozen=True)
class Options:
    config: str | None
    database_url: str | None
    rpc_url: str | None
    key_file: Path | None
    mainnet: bool


@evm_app.callback()
def options(ctx: typer.Context,
            config: str = typer.Option(None, "--config", help="Main config file."),
            database_url: str = typer.Option(None, "--database-url", help="Ledger URL."),
            rpc_url: str = typer.Option(None, "--rpc-url", envvar="RESERVE_EVM_RPC_URL",
                                        help="EVM JSON-RPC URL (default: the vault's network)."),
            key_file: Path = typer.Option(None, "--key-file", help=(
                "Service EVM keystore (pays gas). Passphrase from RESERVE_EVM_KEY_PASSPHRASE. "
                "Without it, anvil uses the TEST deployer key.")),
            mainnet: bool = typer.Option(False, "--mainnet", help="Allow chain id 1 (also "
                                         "needs mainnet_enabled in the config).")) -> None:
    ctx.obj = Options(config, database_url, rpc_url, key_file, mainnet)


def _guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except ReserveError as error:
        fail(str(error))
        raise  # unreachable: fail exits


@dataclass
class Context:
    ledger: Ledger
    w3: Web3
    network: str
    vault: EVMVaultConfig
    settings: Any


@contextmanager
def _context(ctx: typer.Context, vault_id: str) -> Iterator[Context]:
    from wallets.evm import node
    from wallets.evm.config import load_vaults
    from wallets.evm.network import load_networks

    chosen: Options = ctx.obj
    settings = load_settings(chosen.config)
    vaults = load_vaults(settings.resolve("config/evm/vaults.toml"))
    if vault_id not in vaults:
        raise EVMError(f"unknown EVM vault {vault_id!r}; known: {sorted(vaults)}")
    vault = vaults[vault_id]
    networks = load_networks(settings.resolve("config/evm/networks.toml"))
    rpc_url = chosen.rpc_url or next(
        (n.rpc_url for n in networks.values() if n.name == vault.network), "")
    if not rpc_url:
        raise EVMError(f"no RPC URL: pass --rpc-url or configure network {vault.network!r}")
    w3, network = node.connect(rpc_url, networks, mainnet_enabled=settings.mainnet_enabled,
                               mainnet_flag=chosen.mainnet)
    with open_ledger(settings, chosen.database_url) as ledger:
        yield Context(ledger, w3, network, vault, settings)


def registration(ledger: Ledger, vault_id: str, chain_id: int) -> EvmVaultRegistered:
    """The latest `vault.registered` entry of this EVM vault on this chain."""
    from wallets.chains import evm_registration

    return evm_registration(ledger, vault_id, chain_id)


def _fund_demo(c: Context, account: Any, deployment: Any) -> None:
    """Local chains only: gas for the TEST deployer, and the vault's demo holdings."""
    from wallets.evm import contracts

    contracts.send_ether(c.w3, account, deployment.safe, c.vault.demo.get("fund_eth", 0))
    token = contracts.at(c.w3, "ReserveToken", deployment.token)
    contracts.transact(c.w3, account, token.functions.transfer(
        deployment.safe, c.vault.demo.get("fund_tokens", 0)))


@evm_app.command("deploy")
def deploy(ctx: typer.Context, vault: str = VaultOption, as_json: bool = JsonOption) -> None:
    """Deploy the vault's Safe, guard, registry and test token (demo: TEST custodian keys)."""
    def run() -> None:
        from wallets.evm import node, testkeys
        from wallets.evm.demo import TOKEN_DECIMALS, TOKEN_SYMBOL, deploy_reserve

        with _context(ctx, vault) as c:
            if c.w3.eth.chain_id != 31337 or any(o.test_key is None for o in c.vault.owners):
                raise EVMError("`reserve evm deploy` sets up DEMO vaults with TEST custodian "
                               "keys on the local anvil chain only")
            account = node.service_account(c.w3, ctx.obj.key_file)
            if c.w3.eth.get_balance(account.address) < 10**19:
                c.w3.provider.make_request("anvil_setBalance",  # type: ignore[arg-type]
                                           [account.address, hex(10**21)])
            keys = [testkeys.custodian_private_key(o.test_key or 0) for o in c.vault.owners]
            deployment = deploy_reserve(
                c.w3, account, owner_keys=keys, threshold=c.vault.threshold,
                destinations=c.vault.guard.destinations, limits=c.vault.guard.limits,
                token_supply=c.vault.demo.get("token_supply", 10**24))
            _fund_demo(c, account, deployment)
            from reserve.events.custody import EvmVaultRegistered, VaultRegistered

            payload = EvmVaultRegistered(
                chain="evm", vault=c.vault.id, chain_id=deployment.chain_id,
                safe=deployment.safe, guard=deployment.guard, registry=deployment.registry,
                token=deployment.token, owners=list(deployment.owners),
                threshold=deployment.threshold,
                safe_singleton=deployment.infrastructure.singleton,
                safe_proxy_factory=deployment.infrastructure.proxy_factory,
                safe_fallback_handler=deployment.infrastructure.fallback_handler,
                block_number=deployment.block_number, token_symbol=TOKEN_SYMBOL,
                token_decimals=TOKEN_DECIMALS).to_payload()
            c.ledger.append(VaultRegistered.KIND, "service:evm", payload)
            emit(payload, as_json, f"vault {c.vault.id}: Safe {deployment.safe} "
                 f"({deployment.threshold} of {len(deployment.owners)}), guard "
                 f"{deployment.guard}, registry {deployment.registry}, token {deployment.token}")
    _guarded(run)


@evm_app.command("vault-show")
def vault_show(ctx: typer.Context, vault: str = VaultOption, as_json: bool = JsonOption) -> None:
    """Owners, threshold, nonce, guard and balances: chain and ledger side by side."""
    def run() -> None:
        from wallets.evm import deposits
        from wallets.evm.deposits_core import positions
        from wallets.evm.vault import balances, read_state, require_vault

        with _context(ctx, vault) as c:
            registered = registration(c.ledger, c.vault.id, c.w3.eth.chain_id)
            state = read_state(c.w3, registered.safe)
            require_vault(state, owners=c.vault.owner_addresses, threshold=c.vault.threshold,
                          guard=registered.guard)
            on_chain = balances(c.w3, state.safe_address, {"TOKEN": registered.token},
                                state.block_number)
            in_ledger = positions(c.ledger.entries(kinds=deposits.WATCHED_KINDS),
                                  state.safe_address, state.chain_id)
            data = {"vault_id": c.vault.id, "network": c.network, "safe": state.safe_address,
                    "owners": list(state.owners), "threshold": state.threshold,
                    "nonce": state.nonce, "guard": state.guard, "block": state.block_number,
                    "balances_chain": {k: str(v) for k, v in on_chain.items()},
                    "balances_ledger": {k: str(v) for k, v in in_ledger.items()}}
            lines = [f"{c.vault.id} on {c.network}: Safe {state.safe_address} "
                     f"{state.threshold} of {len(state.owners)}, nonce {state.nonce}, "
                     f"guard {state.guard}, block {state.block_number}"]
            lines += [f"  {asset}: chain {amount}, ledger {in_ledger.get(asset, 0)}"
                      for asset, amount in on_chain.items()]
            emit(data, as_json, "\n".join(lines))
    _guarded(run)


@evm_app.command("sync")
def sync(ctx: typer.Context, vault: str = VaultOption,
         from_block: int = typer.Option(None, "--from-block", help="Default: deployment."),
         confirmations: int = typer.Option(None, "--confirmations", min=1)) -> None:
    """Record confirmed deposits and executions; reverse what a reorg removed; bring the
    guard's freeze in line with the ledger's."""
    def run() -> None:
        from wallets.evm import deposits
        from wallets.evm.network import load_networks

        with _context(ctx, vault) as c:
            registered = registration(c.ledger, c.vault.id, c.w3.eth.chain_id)
            networks = load_networks(c.settings.resolve("config/evm/networks.toml"))
            configured = networks.get(c.w3.eth.chain_id)
            depth = confirmations or (configured.confirmations if configured else 1)
            # On anvil the vault's funding precedes the recorded deployment block.
            start = from_block if from_block is not None else (
                0 if c.network == "anvil" else registered.block_number)
            appended = deposits.sync(c.ledger, c.w3, vault_id=c.vault.id,
                                     safe=registered.safe, tokens=[registered.token],
                                     confirmations=depth, from_block=start)
            emit(None, False, f"{len(appended)} entries recorded: "
                 + (", ".join(entry.kind for entry in appended) or "nothing new"))
            _sync_freeze(ctx, c, registered.guard)
    _guarded(run)


def _sync_freeze(ctx: typer.Context, c: Context, guard_address: str) -> None:
    """Re-apply the ledger's freeze to the guard when they differ (a freeze whose chain step
    failed, or an unfreeze the quorum applied); the registrar key is loaded only then."""
    from reserve.transfers.service import WorkflowService
    from wallets.evm import node
    from wallets.evm.guard import GuardFreezeMirror, is_frozen

    projection = WorkflowService(c.ledger).sync()
    if c.vault.id not in projection.vaults:
        return  # no custody policy for this vault: the ledger has no freeze to mirror
    frozen = projection.vault(c.vault.id).freeze is not None
    if is_frozen(c.w3, guard_address) == frozen:
        return
    mirror = GuardFreezeMirror(w3=c.w3, account=node.service_account(c.w3, ctx.obj.key_file),
                               guards={c.vault.id: guard_address})
    workflow = WorkflowService(c.ledger, freeze_mirror=mirror)
    tx_hash = workflow.mirror_freeze(c.vault.id)
    emit(None, False, f"guard {guard_address} {'frozen' if frozen else 'unfrozen'} to match "
         f"the ledger (tx {tx_hash})")
