"""Reorgs: an entry recorded for a block that leaves the best chain is compensated by a
`btc.reorg` entry (never edited or deleted), and the re-mined transaction is recorded again."""

from __future__ import annotations

from tests.support.bitcoin_fixtures import VaultKit
from wallets.bitcoin.psbt_check import parse_psbt


def _kinds(kit: VaultKit) -> list[str]:
    return [e.kind for e in kit.ledger.entries(kinds=["btc.deposit", "btc.confirmed",
                                                      "btc.reorg"])]


def test_deposit_reorged_away_and_remined(bitcoind, miner, make_vault) -> None:  # type: ignore[no-untyped-def]
    kit: VaultKit = make_vault(2, 3)
    node = bitcoind.rpc()
    (txid,) = kit.deposit(bitcoind, miner, [42_000_000])
    block = node.getbestblockhash()
    assert kit.watcher.sync().deposits == (txid,)
    first = kit.ledger.entry(kit.ledger.size() - 1)

    node.invalidateblock(block)
    report = kit.watcher.sync()
    assert report.reorged == (txid,) and not report.deposits
    assert kit.watcher.ledger_balance_sats() == 0
    reorg = kit.ledger.entry(kit.ledger.size() - 1)
    assert reorg.payload["reverses_seq"] == first.seq
    assert reorg.payload["delta_sats"] == -42_000_000
    assert kit.ledger.entry(first.seq) == first  # history kept as it was

    node.reconsiderblock(block)
    assert kit.watcher.sync().deposits == (txid,)  # the same block is back: recorded again
    assert kit.watcher.ledger_balance_sats() == 42_000_000

    node.invalidateblock(block)
    bitcoind.mine(1)  # the deposit is re-mined in another block
    report = kit.watcher.sync()
    assert report.reorged == (txid,) and report.deposits == (txid,)
    latest = kit.ledger.entry(kit.ledger.size() - 1)
    assert latest.kind == "btc.deposit" and latest.payload["blockhash"] != block
    assert _kinds(kit) == ["btc.deposit", "btc.reorg", "btc.deposit", "btc.reorg",
                           "btc.deposit"]
    assert kit.watcher.ledger_balance_sats() == kit.service.node_balance_sats() == 42_000_000


def test_outgoing_transfer_reorged_and_reconfirmed(bitcoind, miner, make_vault) -> None:  # type: ignore[no-untyped-def]
    kit: VaultKit = make_vault(2, 3)
    node = bitcoind.rpc()
    kit.deposit(bitcoind, miner, [60_000_000])
    kit.watcher.sync()
    transfer = kit.transfer([(miner.getnewaddress("", "bech32"), 15_000_000)])
    base = kit.service.build_psbt(transfer)
    for signer in (1, 2):
        share = parse_psbt(base.serialize())
        share.sign_with(kit.roots[signer])
        kit.service.add_share(transfer, share.serialize())
    txid = kit.service.finalize_and_broadcast(transfer)
    (block,) = bitcoind.mine(1)
    assert kit.watcher.sync().confirmed == (txid,)
    spent = kit.watcher.ledger_balance_sats()
    node.invalidateblock(block)
    assert kit.watcher.sync().reorged == (txid,)
    assert kit.watcher.ledger_balance_sats() == 60_000_000
    node.reconsiderblock(block)
    assert kit.watcher.sync().confirmed == (txid,)
    assert kit.watcher.ledger_balance_sats() == spent == kit.service.node_balance_sats()
