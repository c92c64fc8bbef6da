"""The vault model against a real bitcoind: derivation, descriptors, RPC behaviour."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reserve.errors import NodeRPCError, NodeUnavailable
from wallets.bitcoin.regtest import RegtestNode, free_port
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.bitcoin.vault import CHANGE, RECEIVE, load_vault


@pytest.mark.parametrize("config", ["config/vaults/national-btc-2of3.toml",
                                    "config/vaults/reserve-btc-3of5.toml"])
def test_local_derivation_equals_deriveaddresses(bitcoind: RegtestNode, config: str) -> None:
    vault = load_vault(config)
    rpc = bitcoind.rpc()
    info = rpc.getdescriptorinfo(vault.descriptor())
    assert info["checksum"] == vault.descriptor().split("#")[1]
    assert not info["hasprivatekeys"] and info["issolvable"]
    receive, change = rpc.deriveaddresses(vault.descriptor(), [0, 19])
    assert receive == [vault.address(RECEIVE, i) for i in range(20)]
    assert change == [vault.address(CHANGE, i) for i in range(20)]
    for branch in (RECEIVE, CHANGE):
        descriptor = vault.branch_descriptor(branch)
        assert rpc.getdescriptorinfo(descriptor)["checksum"] == descriptor.split("#")[1]


def test_watch_only_wallet_hands_out_vault_addresses(make_vault) -> None:  # type: ignore[no-untyped-def]
    kit = make_vault(2, 3)
    first, index = kit.service.receive_address()
    assert (first, index) == (kit.vault.address(RECEIVE, 0), 0)
    assert kit.service.receive_address() == (kit.vault.address(RECEIVE, 1), 1)
    assert kit.service.change_index() == 0
    kit.service.ensure_watch_only()  # idempotent: no second import, still consistent
    info = kit.service.wallet.getwalletinfo()
    assert info["private_keys_enabled"] is False and info["descriptors"] is True


def test_deposits_are_recorded_and_balances_agree(bitcoind, miner, make_vault) -> None:  # type: ignore[no-untyped-def]
    kit = make_vault(2, 3)
    kit.deposit(bitcoind, miner, [150_000_000, 12_345_678])
    report = kit.watcher.sync()
    assert len(report.deposits) == 2
    assert kit.watcher.ledger_balance_sats() == kit.service.node_balance_sats() == 162_345_678
    assert not kit.watcher.sync().changed  # a second sync records nothing new
    deposits = list(kit.ledger.entries(kinds=["btc.deposit"]))
    assert sorted(e.payload["amount_sats"] for e in deposits) == [12_345_678, 150_000_000]


def test_unconfirmed_deposit_waits_for_depth(bitcoind, miner, make_vault) -> None:  # type: ignore[no-untyped-def]
    kit = make_vault(2, 3)
    kit.deposit(bitcoind, miner, [1_000_000], mine=False)
    assert not kit.watcher.sync().changed
    bitcoind.mine(1)
    assert len(kit.watcher.sync().deposits) == 1


def test_amounts_are_decimal_never_float(bitcoind: RegtestNode) -> None:
    balance = bitcoind.rpc("miner").getbalance()
    assert isinstance(balance, Decimal)


def test_node_down_raises_node_unavailable_after_bounded_retries() -> None:
    rpc = BitcoinRPC(url=f"http://127.0.0.1:{free_port()}", user="u", password="p",
                     retries=2, retry_delay_seconds=0.01)
    with pytest.raises(NodeUnavailable, match="after 3 attempts"):
        rpc.getblockcount()


def test_node_errors_carry_code(bitcoind: RegtestNode) -> None:
    with pytest.raises(NodeRPCError) as caught:
        bitcoind.rpc().getblockhash(10**6)
    assert caught.value.code == -8
