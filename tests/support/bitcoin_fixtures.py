"""Fixtures and helpers for tests against a real regtest bitcoind.

One node per session (started on free ports in a temp folder, always stopped); each test gets
its own vault (a fresh BIP 48 account of the TEST custodian keys) and its own watch-only
wallet and ledger, so tests do not see each other's coins or entries.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reserve.ledger import Ledger
from wallets.bitcoin.regtest import RegtestNode
from wallets.bitcoin.rpc import BitcoinRPC, sats_to_btc
from wallets.bitcoin.service import BitcoinVaultService
from wallets.bitcoin.testkeys import demo_custodian_keys, demo_vault
from wallets.bitcoin.transfer import ApprovedTransfer, TransferOutput
from wallets.bitcoin.vault import FeeSettings, Vault
from wallets.bitcoin.watcher import ChainWatcher

_accounts = itertools.count(100)


@dataclass
class VaultKit:
    """A vault wired to the node and a ledger, with its TEST custodians' private roots."""

    vault: Vault
    ledger: Ledger
    service: BitcoinVaultService
    watcher: ChainWatcher
    roots: tuple  # type: ignore[type-arg]
    account: int

    def deposit(self, node: RegtestNode, miner: BitcoinRPC, amounts_sats: list[int],
                mine: bool = True) -> list[str]:
        txids = []
        for amount in amounts_sats:
            address, _index = self.service.receive_address()
            txids.append(miner.sendtoaddress(address, sats_to_btc(amount)))
        if mine:
            node.mine(1)
        return txids

    def transfer(self, outputs: list[tuple[str, int]], label: str = "t",
                 fee_sats_max: int = 100_000, policy_version: int = 1) -> ApprovedTransfer:
        digest = hashlib.sha256(f"{self.vault.vault_id}/{label}".encode()).digest()
        return ApprovedTransfer(proposal_digest=digest, policy_version=policy_version,
                                vault_id=self.vault.vault_id, network=self.vault.network,
                                outputs=tuple(TransferOutput(a, s) for a, s in outputs),
                                fee_sats_max=fee_sats_max)


@pytest.fixture(scope="session")
def bitcoind() -> Iterator[RegtestNode]:
    with RegtestNode() as node:
        node.miner()
        yield node


@pytest.fixture(scope="session")
def miner(bitcoind: RegtestNode) -> BitcoinRPC:
    return bitcoind.miner()


@pytest.fixture()
def make_vault(bitcoind: RegtestNode, tmp_path: Path
               ) -> Iterator[Callable[..., VaultKit]]:
    ledgers: list[Ledger] = []

    def make(threshold: int = 2, count: int = 3, fees: FeeSettings | None = None,
             ledger: Ledger | None = None) -> VaultKit:
        account = next(_accounts)
        vault = demo_vault(threshold, count, account=account, fees=fees)
        if ledger is None:
            ledger = Ledger.open(f"sqlite:///{tmp_path}/ledger-{account}.sqlite")
            ledgers.append(ledger)
        service = BitcoinVaultService(vault, ledger, bitcoind.rpc(retries=0))
        service.ensure_watch_only(rescan_timestamp="now")
        watcher = ChainWatcher(vault, ledger, bitcoind.rpc(retries=0))
        roots = tuple(k.root for k in demo_custodian_keys(count, account=account))
        return VaultKit(vault, ledger, service, watcher, roots, account)

    yield make
    for ledger in ledgers:
        ledger.close()
