"""What the statement reads from a Bitcoin node: descriptor checks, watch-only wallets,
the period's blocks and every transaction touching a registered wallet.

The shell around reserve.statement.flows. A wallet's coins are recognised by address:
each descriptor is expanded with `deriveaddresses` (ranged ones over 0..range_end), and
each block is read with `getblock` verbosity 3, which carries every input's previous
output (value and script), so no index beyond the node's own is needed. The walk starts
at the earliest registered wallet's birth height, tracking the registered wallets' coins,
so that the opening stock is the set of their coins unspent after the block before the
period and the closing stock those unspent after its last block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reserve.errors import NodeRPCError, StatementError, StatementRejected
from reserve.reconcile.bitcoin import CHAINS
from reserve.statement.flows import ChainTx
from reserve.statement.wallets import PublicWallet
from wallets.bitcoin.rpc import BitcoinRPC, btc_to_sats

BLOCKS_MAX = 200_000
ADDRESSES_MAX = 200_000
COINS_MAX = 1_000_000
Outpoint = tuple[str, int]


def check_network(node: BitcoinRPC, network: str) -> None:
    chain = node.getblockchaininfo()["chain"]
    if CHAINS.get(network) != chain:
        raise StatementError(f"the node is on {chain!r}, the wallets on {network!r}")


def normalize_descriptor(node: BitcoinRPC, text: str) -> str:
    """The checksummed descriptor of `text` (a descriptor, or an address for `addr(...)`);
    StatementError for a malformed one, a wrong checksum, private keys or multipath."""
    text = text.strip()
    if "(" not in text:
        answer = node.validateaddress(text)
        if not answer.get("isvalid"):
            raise StatementError(f"{text!r} is neither a descriptor nor an address on this "
                                 f"network: {answer.get('error', 'invalid')}")
        text = f"addr({answer['address']})"
    if "<" in text:
        raise StatementError(f"descriptor {text[:80]!r}: give each branch (.../0/*, .../1/*) "
                             "as its own descriptor, not a multipath one")
    try:
        info = node.getdescriptorinfo(text)
    except NodeRPCError as error:
        raise StatementError(f"bad descriptor {text[:80]!r}: {error}") from None
    if info.get("hasprivatekeys"):
        raise StatementError(f"descriptor {text[:80]!r} holds private keys: register only "
                             "public descriptors")
    checksummed = text if "#" in text else f"{text}#{info['checksum']}"
    return checksummed


def is_ranged(node: BitcoinRPC, descriptor: str) -> bool:
    return bool(node.getdescriptorinfo(descriptor)["isrange"])


def addresses_of(node: BitcoinRPC, wallet: PublicWallet) -> list[str]:
    """Every address the wallet's descriptors give (ranged: indices 0..range_end)."""
    found: list[str] = []
    for descriptor in wallet.descriptors:
        if is_ranged(node, descriptor):
            found.extend(node.deriveaddresses(descriptor, [0, wallet.range_end]))
        else:
            found.extend(node.deriveaddresses(descriptor))
    return found


def owners(node: BitcoinRPC, wallets: Sequence[PublicWallet]) -> dict[str, str]:
    """address -> wallet name over every registered wallet; StatementError when two
    wallets share an address (a coin must belong to one of them)."""
    owner: dict[str, str] = {}
    for wallet in wallets:
        for address in addresses_of(node, wallet):
            other = owner.setdefault(address, wallet.name)
            if other != wallet.name:
                raise StatementError(f"address {address} belongs to wallets {other!r} and "
                                     f"{wallet.name!r}")
        if len(owner) > ADDRESSES_MAX:
            raise StatementError(f"more than {ADDRESSES_MAX} addresses to watch")
    return owner


def import_watch_only(node: BitcoinRPC, wallet: PublicWallet) -> None:
    """Load or create the watched wallet's watch-only descriptor wallet on the node (private
    keys disabled) and import its descriptors, rescanning from its birth block."""
    name = wallet.watch_wallet
    if name not in node.listwallets():
        try:
            node.loadwallet(name)
        except NodeRPCError:
            # name, disable_private_keys, blank, passphrase, avoid_reuse, descriptors,
            # load_on_startup
            node.createwallet(name, True, True, "", False, True, True)
    height = min(wallet.birth_height, int(node.getblockcount()))
    timestamp = int(node.getblockheader(node.getblockhash(height))["time"])
    requests = []
    for descriptor in wallet.descriptors:
        request: dict[str, Any] = {"desc": descriptor, "timestamp": timestamp}
        if is_ranged(node, descriptor):
            request["range"] = [0, wallet.range_end]
        requests.append(request)
    answer = node.for_wallet(name).importdescriptors(requests)
    if not all(item.get("success") for item in answer):
        raise StatementError(f"importdescriptors failed for wallet {wallet.name}: {answer}")


# -- the period's blocks ------------------------------------------------------------------
@dataclass(frozen=True)
class Pin:
    """The blocks a statement covers: start..end inclusive; the walk began at scan_from."""

    network: str
    scan_from_height: int
    start_height: int
    start_hash: str
    end_height: int
    end_hash: str

    def to_json(self) -> dict[str, Any]:
        return {"network": self.network, "scan_from_height": self.scan_from_height,
                "start_height": self.start_height, "start_hash": self.start_hash,
                "end_height": self.end_height, "end_hash": self.end_hash}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Pin:
        return cls(network=str(value["network"]),
                   scan_from_height=int(value["scan_from_height"]),
                   start_height=int(value["start_height"]), start_hash=str(value["start_hash"]),
                   end_height=int(value["end_height"]), end_hash=str(value["end_hash"]))


def _median_time(node: BitcoinRPC, height: int) -> int:
    return int(node.getblockheader(node.getblockhash(height))["mediantime"])


def _first_at_or_after(node: BitcoinRPC, moment: int, tip: int) -> int:
    """The lowest height whose median time past is >= moment (tip + 1 if none): MTP never
    decreases along a chain (BIP 113), so a binary search finds it."""
    low, high = 0, tip + 1
    while low < high:
        middle = (low + high) // 2
        if _median_time(node, middle) >= moment:
            high = middle
        else:
            low = middle + 1
    return low


def heights_of_period(node: BitcoinRPC, start: datetime, end: datetime) -> tuple[int, int]:
    """The blocks whose median time past is in [start, end): (first, last) heights."""
    if end <= start:
        raise StatementError("the period must end after it starts")
    tip = int(node.getblockcount())
    first = _first_at_or_after(node, int(start.timestamp()), tip)
    last = _first_at_or_after(node, int(end.timestamp()), tip) - 1
    if first > last:
        raise StatementError(f"no block has its median time in [{start.isoformat()}, "
                             f"{end.isoformat()})")
    return first, last


def pin(node: BitcoinRPC, network: str, scan_from: int, start_height: int,
        end_height: int) -> Pin:
    check_network(node, network)
    tip = int(node.getblockcount())
    if not 0 <= start_height <= end_height <= tip:
        raise StatementError(f"need 0 <= start height {start_height} <= end height "
                             f"{end_height} <= tip {tip}")
    if end_height - min(scan_from, start_height) >= BLOCKS_MAX:
        raise StatementError(f"a statement walks at most {BLOCKS_MAX} blocks")
    return Pin(network, min(scan_from, start_height), start_height,
               node.getblockhash(start_height), end_height, node.getblockhash(end_height))


def check_pin(node: BitcoinRPC, found: Pin) -> None:
    """StatementRejected unless the pinned blocks are on the node's best chain."""
    check_network(node, found.network)
    for height, blockhash in ((found.start_height, found.start_hash),
                              (found.end_height, found.end_hash)):
        if int(node.getblockcount()) < height or node.getblockhash(height) != blockhash:
            raise StatementRejected("block_not_on_chain", f"block {blockhash} is not at "
                                                          f"height {height} of the node's chain")


# -- the walk -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Walk:
    """The registered wallets' coins before and after the period, and its transactions."""

    opening: dict[str, list[tuple[str, int, int]]]  # wallet -> [(txid, vout, sats)]
    closing: dict[str, list[tuple[str, int, int]]]
    transactions: tuple[ChainTx, ...]


def _address(script: Mapping[str, Any]) -> str | None:
    address = script.get("address")
    return address if isinstance(address, str) else None


def _coins_by_wallet(coins: Mapping[Outpoint, tuple[str, int]], names: Sequence[str]
                     ) -> dict[str, list[tuple[str, int, int]]]:
    found: dict[str, list[tuple[str, int, int]]] = {name: [] for name in names}
    for (txid, vout), (owner, sats) in sorted(coins.items()):
        found[owner].append((txid, vout, sats))
    return found


def _read_tx(tx: Mapping[str, Any], height: int, time: int, owner: Mapping[str, str],
             coins: dict[Outpoint, tuple[str, int]]) -> ChainTx:
    """One transaction: spends and adds registered coins in `coins` (in place)."""
    coinbase = bool(tx["vin"]) and "coinbase" in tx["vin"][0]
    inputs: list[tuple[str | None, int]] = []
    sources: list[str] = []
    for vin in [] if coinbase else tx["vin"]:
        prevout = vin["prevout"]
        sources.append(_address(prevout["scriptPubKey"]) or "")
        who = owner.get(sources[-1])
        if who is not None and coins.pop((vin["txid"], int(vin["vout"])), None) is None:
            raise StatementError(f"transaction {tx['txid']} spends {vin['txid']}:{vin['vout']}"
                                 f" of wallet {who!r}, created before the walk began: lower "
                                 "that wallet's birth height")
        inputs.append((who, btc_to_sats(prevout["value"])))
    outputs: list[tuple[str | None, int]] = []
    for vout in tx["vout"]:
        who = owner.get(_address(vout["scriptPubKey"]) or "")
        sats = btc_to_sats(vout["value"])
        if who is not None:
            coins[(tx["txid"], int(vout["n"]))] = (who, sats)
        outputs.append((who, sats))
    if len(coins) > COINS_MAX:
        raise StatementError(f"more than {COINS_MAX} coins to track")
    return ChainTx(str(tx["txid"]), height, coinbase, tuple(inputs), tuple(outputs), time,
                   tuple(sources))


def walk(node: BitcoinRPC, found: Pin, owner: Mapping[str, str],
         names: Sequence[str]) -> Walk:
    """Read blocks scan_from..end (bounded by BLOCKS_MAX); the chain must not reorganise
    the pinned blocks meanwhile (checked again at the end)."""
    coins: dict[Outpoint, tuple[str, int]] = {}
    opening: dict[str, list[tuple[str, int, int]]] = {}
    transactions: list[ChainTx] = []
    for height in range(found.scan_from_height, found.end_height + 1):
        if height == found.start_height:
            opening = _coins_by_wallet(coins, names)
        blockhash = found.end_hash if height == found.end_height else node.getblockhash(height)
        block = node.getblock(blockhash, 3)
        for tx in block["tx"]:
            chain_tx = _read_tx(tx, height, int(block["time"]), owner, coins)
            if height >= found.start_height and chain_tx.touches():
                transactions.append(chain_tx)
    check_pin(node, found)
    return Walk(opening, _coins_by_wallet(coins, names), tuple(transactions))
