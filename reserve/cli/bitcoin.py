"""`reserve btc ...`: the service-side Bitcoin commands (vault-show, watch, address, sync).

Each command loads the service config (ledger URL, network guard) and a vault config, talks
to bitcoind through the RPC settings (options, environment, or the `[bitcoin]` table of the
config), and prints what it recorded. Domain errors become one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from reserve import config as reserve_config
from reserve.cli.common import working
from reserve.errors import ConfigError, ReserveError

# The Bitcoin stack (bitcoinlib, embit) loads in the commands that use it, not for
# `reserve --help` or another command group.
if TYPE_CHECKING:
    from wallets.bitcoin.rpc import BitcoinRPC
    from wallets.bitcoin.service import BitcoinVaultService
    from wallets.bitcoin.vault import Vault

bitcoin_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="National Bitcoin wallet: vaults, PSBTs, shares, chain sync.")
T = TypeVar("T")
DEFAULT_RPC_URL = "http://127.0.0.1:18443"


@dataclass(frozen=True)
class Context:
    config_path: Path | None
    rpc_url: str | None
    rpc_user: str | None
    rpc_password: str | None
    mainnet: bool


@bitcoin_app.callback()
def options(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option("--config", help="Service config.")] = None,
    rpc_url: Annotated[str | None, typer.Option(envvar="RESERVE_BTC_RPC_URL")] = None,
    rpc_user: Annotated[str | None, typer.Option(envvar="RESERVE_BTC_RPC_USER")] = None,
    rpc_password: Annotated[str | None,
                            typer.Option(envvar="RESERVE_BTC_RPC_PASSWORD")] = None,
    mainnet: Annotated[bool, typer.Option("--mainnet",
                                          help="Allow mainnet (config must too).")] = False,
) -> None:
    ctx.obj = Context(config, rpc_url, rpc_user, rpc_password, mainnet)


def _guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except ReserveError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=2) from None


def _vault(ctx: typer.Context, path: Path) -> tuple[Vault, reserve_config.Settings]:
    from wallets.bitcoin.networks import require_network_allowed
    from wallets.bitcoin.vault import load_vault

    settings = reserve_config.load(ctx.obj.config_path)
    vault = load_vault(path)
    require_network_allowed(vault.network, mainnet_enabled=settings.mainnet_enabled,
                            mainnet_flag=ctx.obj.mainnet)
    if vault.network != settings.network:
        raise ConfigError(f"vault {vault.vault_id} is on {vault.network}, the "
                                         f"service is configured for {settings.network}")
    return vault, settings


def _rpc(ctx: typer.Context, settings: reserve_config.Settings) -> BitcoinRPC:
    from wallets.bitcoin.rpc import BitcoinRPC

    table: dict[str, Any] = settings.raw.get("bitcoin", {})
    return BitcoinRPC(url=ctx.obj.rpc_url or table.get("rpc_url", DEFAULT_RPC_URL),
                      user=ctx.obj.rpc_user or table.get("rpc_user", ""),
                      password=ctx.obj.rpc_password or os.environ.get(
                          table.get("rpc_password_env", "RESERVE_BTC_RPC_PASSWORD"), ""))


@contextmanager
def _service(ctx: typer.Context, vault_path: Path) -> Iterator[BitcoinVaultService]:
    from reserve.ledger.store import Ledger
    from reserve.transfers import readmodel
    from wallets.bitcoin.service import BitcoinVaultService

    vault, settings = _vault(ctx, vault_path)
    ledger = Ledger.open(settings.ledger.database_url,
                         payload_bytes_max=settings.ledger.payload_bytes_max)
    ledger.clock = settings.clock()
    readmodel.attach(ledger)
    try:
        yield BitcoinVaultService(vault, ledger, _rpc(ctx, settings), actor="cli")
    finally:
        ledger.close()


VaultPath = Annotated[Path, typer.Option("--vault", help="Vault config (TOML).")]


@bitcoin_app.command("vault-show")
def vault_show(ctx: typer.Context, vault: VaultPath, count: int = 3) -> None:
    """Show the vault's descriptor, custodians and first addresses (no node needed)."""
    def run() -> None:
        from wallets.bitcoin.vault import CHANGE, RECEIVE

        model, _settings = _vault(ctx, vault)
        typer.echo(f"vault       {model.vault_id} ({model.threshold}-of-"
                   f"{len(model.custodians)} P2WSH, {model.network})")
        typer.echo(f"descriptor  {model.descriptor()}")
        for custodian in model.custodians:
            typer.echo(f"custodian   {custodian.name:<18} {custodian.institution:<38} "
                       f"{custodian.key_origin}")
        for i in range(count):
            typer.echo(f"receive/{i}   {model.address(RECEIVE, i)}")
        typer.echo(f"change/0    {model.address(CHANGE, 0)}")
    _guarded(run)


@bitcoin_app.command("watch")
def watch(ctx: typer.Context, vault: VaultPath) -> None:
    """Import the vault watch-only into bitcoind and check derivation against the node."""
    def run() -> None:
        with _service(ctx, vault) as service:
            service.ensure_watch_only()
            typer.echo(f"watching {service.vault.vault_id} in wallet {service.wallet_name}")
    _guarded(run)


@bitcoin_app.command("address")
def address(ctx: typer.Context, vault: VaultPath,
            index: Annotated[int | None,
                             typer.Option(help="Derive locally at this index.")] = None) -> None:
    """A receive address: from the node (checked against local derivation) or by index."""
    def run() -> None:
        if index is not None:
            from wallets.bitcoin.vault import RECEIVE

            model, _settings = _vault(ctx, vault)
            typer.echo(model.address(RECEIVE, index))
            return
        with _service(ctx, vault) as service:
            found, at = service.receive_address()
            typer.echo(f"{found}  (receive/{at}, matches local derivation)")
    _guarded(run)


@bitcoin_app.command("sync")
def sync(ctx: typer.Context, vault: VaultPath) -> None:
    """Record deposits, confirmations and reorgs; print ledger vs node balance."""
    def run() -> None:
        from wallets.bitcoin.watcher import ChainWatcher

        with _service(ctx, vault) as service:
            watcher = ChainWatcher(service.vault, service.ledger, service.node)
            with working("scanning the chain for deposits, confirmations and reorgs"):
                report = watcher.sync()
            typer.echo(f"tip {report.tip_height}: {len(report.deposits)} deposit(s), "
                       f"{len(report.confirmed)} confirmation(s), {len(report.reorged)} reorg(s)")
            typer.echo(f"ledger balance {watcher.ledger_balance_sats()} sats; node "
                       f"{service.node_balance_sats()} sats")
    _guarded(run)
