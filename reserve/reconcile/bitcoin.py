"""The Bitcoin shell of reconciliation: reads the chain through bitcoind, nothing else.

The vault's coins come from `scantxoutset` over the vault's two branch descriptors (receive
and change), so they do not depend on any wallet's bookkeeping: anyone with a node and the
descriptors gets the same set. The pinned block is the tip the scan reports; if the tip
moves while the vaults are scanned, the scan is repeated (bounded) so every vault of one
report is read at the same block. The extra facts the pure core asks for (blocks still on
the best chain, spenders of coins the ledger still holds, mempool, the fees and outputs of
the vault's confirmed spends, each output marked if it pays one of the vault's own
addresses) are read at or below the pinned height, so a verifier can read them again
later. `coins_at` rebuilds a past pinned block's coin set by undoing the blocks mined since.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

from reserve.errors import NodeRPCError, ReconcileError, ReportRejected
from reserve.reconcile.compute import (
    ASSET_BTC,
    ChainTransaction,
    ChainView,
    Coin,
    LedgerView,
    Outpoint,
    Questions,
    questions,
)
from reserve.reconcile.report import BlockPin
from wallets.bitcoin.rpc import BitcoinRPC, btc_to_sats
from wallets.bitcoin.vault import CHANGE, RECEIVE, Vault

SCAN_ATTEMPTS_MAX = 5
BLOCKS_WALK_MAX = 10_000
RANGE_END_DEFAULT = 999  # the watch-only wallet imports indices 0..999 (service.IMPORT_RANGE)
RANGE_END_MAX = 1_000_000
RPC_INVALID_ADDRESS_OR_KEY = -5
CHAINS = {"regtest": "regtest", "signet": "signet", "testnet4": "testnet4", "testnet": "test",
          "mainnet": "main"}


def vault_descriptors(vault: Vault) -> tuple[str, ...]:
    return (vault.branch_descriptor(RECEIVE), vault.branch_descriptor(CHANGE))


def check_network(node: BitcoinRPC, network: str) -> None:
    chain = node.getblockchaininfo()["chain"]
    if CHAINS.get(network) != chain:
        raise ReconcileError(f"node is on {chain!r}, the vaults are on {network!r}")


def wallet_range_end(wallet: BitcoinRPC) -> int:
    """The highest derivation index the vault's watch-only wallet watches (or the default)."""
    try:
        listed = wallet.listdescriptors()["descriptors"]
    except NodeRPCError:
        return RANGE_END_DEFAULT
    ends = [int(d["range"][1]) for d in listed if isinstance(d.get("range"), list)]
    return min(max([RANGE_END_DEFAULT, *ends]), RANGE_END_MAX)


def _scan_once(node: BitcoinRPC, descriptors: Sequence[str],
               range_end: int) -> tuple[int, str, tuple[Coin, ...]]:
    if not 0 <= range_end <= RANGE_END_MAX:
        raise ReconcileError(f"derivation range end {range_end} not in 0..{RANGE_END_MAX}")
    result = node.scantxoutset("start", [{"desc": d, "range": [0, range_end]}
                                         for d in descriptors])
    if not result or not result.get("success"):
        raise ReconcileError(f"scantxoutset did not complete: {result!r}")
    coins = tuple(sorted(Coin(u["txid"], int(u["vout"]), btc_to_sats(u["amount"]),
                              height=int(u["height"])) for u in result["unspents"]))
    return int(result["height"]), str(result["bestblock"]), coins


def scan_vaults(node: BitcoinRPC, scopes: Sequence[tuple[Sequence[str], int]]
                ) -> tuple[int, str, list[tuple[Coin, ...]]]:
    """(height, hash, coins per scope) with every scope read at the same tip."""
    for _attempt in range(SCAN_ATTEMPTS_MAX):
        before = node.getbestblockhash()
        scans = [_scan_once(node, descriptors, end) for descriptors, end in scopes]
        after = node.getbestblockhash()
        if all(blockhash == before for _h, blockhash, _c in scans) and after == before:
            height = scans[0][0] if scans else int(node.getblockcount())
            return height, before, [coins for _h, _b, coins in scans]
    raise ReconcileError(f"the chain tip kept moving during {SCAN_ATTEMPTS_MAX} scans; retry")


def _header(node: BitcoinRPC, blockhash: str) -> dict[str, Any] | None:
    try:
        header: dict[str, Any] = node.getblockheader(blockhash)
    except NodeRPCError as error:
        if error.code in (RPC_INVALID_ADDRESS_OR_KEY, -8):
            return None
        raise
    return header


def check_pinned_block(node: BitcoinRPC, block: BlockPin) -> None:
    """ReportRejected unless `block` is on the node's best chain at its height."""
    check_network(node, block.network)
    header = _header(node, block.blockhash)
    if header is None:
        raise ReportRejected("block_not_on_chain", f"block {block.blockhash} is unknown to "
                                                   "the node: not on this chain")
    if int(header["confirmations"]) < 0:
        raise ReportRejected("block_not_on_chain", f"block {block.blockhash} is not on the "
                                                   "best chain (reorganised away)")
    if int(header["height"]) != block.height:
        raise ReportRejected("block_not_on_chain", f"block {block.blockhash} is at height "
                                                   f"{header['height']}, not {block.height}")


def _on_chain_at(node: BitcoinRPC, blockhash: str, height_max: int) -> bool:
    header = _header(node, blockhash)
    return header is not None and int(header["confirmations"]) >= 0 \
        and int(header["height"]) <= height_max


def vault_addresses(node: BitcoinRPC, descriptors: Sequence[str], range_end: int
                    ) -> frozenset[str]:
    """Every address of the descriptors at indices 0..range_end: what counts as the vault's
    own (change) when judging what a transaction paid out."""
    if not 0 <= range_end <= RANGE_END_MAX:
        raise ReconcileError(f"derivation range end {range_end} not in 0..{RANGE_END_MAX}")
    found: set[str] = set()
    for descriptor in descriptors:
        found.update(node.deriveaddresses(descriptor, [0, range_end]))
    return frozenset(found)


def _chain_transaction(tx: dict[str, Any], addresses: frozenset[str]) -> ChainTransaction:
    outputs = tuple((o["scriptPubKey"].get("address"), btc_to_sats(o["value"]))
                    for o in tx["vout"])
    mine = frozenset(vout for vout, (address, _amount) in enumerate(outputs)
                     if address in addresses)
    return ChainTransaction(tx["txid"], btc_to_sats(tx.get("fee", 0)), outputs, mine)


def _spenders(node: BitcoinRPC, wanted: Iterable[Outpoint], since: int, height: int
              ) -> tuple[dict[Outpoint, str], dict[str, dict[str, Any]]]:
    """Who spent each wanted outpoint in blocks since..height of the best chain, and
    those spending transactions as the node shows them."""
    left = set(wanted)
    found: dict[Outpoint, str] = {}
    spending: dict[str, dict[str, Any]] = {}
    start = max(since, 0)
    if not left:
        return found, spending
    if height - start + 1 > BLOCKS_WALK_MAX:
        raise ReconcileError(f"finding spenders needs {height - start + 1} blocks, over the "
                             f"limit of {BLOCKS_WALK_MAX}")
    for number in range(start, height + 1):
        block = node.getblock(node.getblockhash(number), 2)
        for tx in block["tx"]:
            for vin in tx["vin"]:
                outpoint = (vin.get("txid"), vin.get("vout"))
                if outpoint in left:
                    found[outpoint] = tx["txid"]
                    left.discard(outpoint)
                    spending[tx["txid"]] = tx
        if not left:
            break
    return found, spending


def _transactions(node: BitcoinRPC, wanted: Iterable[tuple[str, str]]
                  ) -> dict[str, dict[str, Any]]:
    by_block: dict[str, set[str]] = {}
    for txid, blockhash in wanted:
        by_block.setdefault(blockhash, set()).add(txid)
    result: dict[str, dict[str, Any]] = {}
    for blockhash, txids in by_block.items():
        if _header(node, blockhash) is None:
            continue
        for tx in node.getblock(blockhash, 2)["tx"]:
            if tx["txid"] in txids and "fee" in tx:
                result[tx["txid"]] = tx
    return result


def chain_view(node: BitcoinRPC, view: LedgerView, coins: tuple[Coin, ...],
               block: BlockPin, addresses: Callable[[], frozenset[str]]) -> ChainView:
    """Answer the core's questions at or below the pinned block. `addresses()` gives the
    vault's own (`vault_addresses`), to tell change from payments; it is only called when
    there is a spend to judge (deriving a large range costs as much as scanning it)."""
    asked: Questions = questions(view, coins)
    blocks = {h: _on_chain_at(node, h, block.height) for h in sorted(asked.blockhashes)}
    mempool = frozenset(set(node.getrawmempool()) & asked.mempool_txids) \
        if asked.mempool_txids else frozenset()
    spenders, spending = _spenders(node, asked.outpoints, asked.spent_since_height,
                                   block.height)
    raw = {**spending, **_transactions(node, asked.transactions)}
    mine = addresses() if raw else frozenset()
    transactions = {txid: _chain_transaction(tx, mine) for txid, tx in raw.items()}
    return ChainView(view.vault_id, view.asset, block.height, block.blockhash, coins,
                     blocks=blocks, spenders=spenders, mempool=mempool,
                     transactions=transactions)


def coins_at(node: BitcoinRPC, descriptors: Sequence[str], range_end: int,
             block: BlockPin) -> tuple[Coin, ...]:
    """The descriptors' coins at a past block: scan at the tip, then undo newer blocks."""
    check_pinned_block(node, block)
    _height, tip, (coins,) = scan_vaults(node, [(descriptors, range_end)])
    if tip == block.blockhash:
        return coins
    addresses: set[str] = set()
    for descriptor in descriptors:
        addresses.update(node.deriveaddresses(descriptor, [0, range_end]))
    held = {coin.outpoint: coin for coin in coins}
    cursor = tip
    for _step in range(BLOCKS_WALK_MAX):
        if cursor == block.blockhash:
            return tuple(sorted(held.values()))
        data = node.getblock(cursor, 3)
        for tx in reversed(data["tx"]):
            for output in tx["vout"]:
                if output["scriptPubKey"].get("address") in addresses:
                    held.pop((tx["txid"], int(output["n"])), None)
            for vin in tx["vin"]:
                prevout = vin.get("prevout")
                if prevout and prevout["scriptPubKey"].get("address") in addresses:
                    held[(vin["txid"], int(vin["vout"]))] = Coin(
                        vin["txid"], int(vin["vout"]), btc_to_sats(prevout["value"]),
                        height=int(prevout["height"]))
        cursor = data.get("previousblockhash")
        if cursor is None:
            break
    raise ReportRejected("block_not_on_chain", f"block {block.blockhash} is not an ancestor "
                                               f"of the tip within {BLOCKS_WALK_MAX} blocks")


def pinned_chain_views(node: BitcoinRPC, network: str,
                       vaults: Sequence[tuple[Vault, LedgerView, int]]
                       ) -> tuple[BlockPin, list[ChainView]]:
    """Scan every vault at one tip and answer the core's questions for each."""
    check_network(node, network)
    height, blockhash, coin_sets = scan_vaults(
        node, [(vault_descriptors(vault), end) for vault, _view, end in vaults])
    block = BlockPin(network, height, blockhash)
    views = [chain_view(node, view, coins, block,
                        partial(vault_addresses, node, vault_descriptors(vault), end))
             for (vault, view, end), coins in zip(vaults, coin_sets, strict=True)]
    return block, views


__all__ = ["ASSET_BTC", "coins_at", "pinned_chain_views", "scan_vaults", "vault_addresses",
           "vault_descriptors"]
