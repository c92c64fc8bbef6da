"""The chain watcher: records deposits into a vault and confirmations of its transfers.

A wallet transaction is recorded once it has `confirmations_min` confirmations, as
`btc.deposit` (the vault's balance grew) or `btc.confirmed` (a transfer out of the vault).
Each such entry names the block it was seen in. On every sync the watcher checks that those
blocks are still on the best chain; for an entry whose block was reorganised away it appends
a `btc.reorg` entry that reverses it (never an edit or a deletion), after which the same
transaction, once mined again, is recorded again with its new block. A reorg of a
transfer's confirmation names its proposal (`proposal_digest`), as the confirmation did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reserve.errors import LedgerConflict, NodeRPCError, WalletError
from reserve.events.base import ABSENT, Event
from reserve.events.chain_btc import BtcConfirmed, BtcDeposit, BtcReorg
from reserve.ledger.entry import Entry
from reserve.ledger.store import Ledger
from wallets.bitcoin import records
from wallets.bitcoin.rpc import BitcoinRPC, btc_to_sats
from wallets.bitcoin.vault import Vault

REORG_DEPTH_MAX = 144  # entries in deeper blocks are final for this watcher
TRANSACTIONS_MAX = 100_000
# getblockheader answers -5 for a block the node has never seen.
RPC_INVALID_ADDRESS_OR_KEY = -5


@dataclass(frozen=True)
class SyncReport:
    tip_height: int
    deposits: tuple[str, ...]
    confirmed: tuple[str, ...]
    reorged: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.deposits or self.confirmed or self.reorged)


def _on_best_chain(node: BitcoinRPC, blockhash: str) -> bool:
    try:
        header = node.getblockheader(blockhash)
    except NodeRPCError as error:
        if error.code == RPC_INVALID_ADDRESS_OR_KEY:
            return False
        raise
    return int(header["confirmations"]) >= 0


def reorg_events(vault: Vault, node: BitcoinRPC, state: records.VaultChainState,
                 tip_height: int) -> list[BtcReorg]:
    """Compensating entries for live entries whose block left the best chain."""
    result = []
    for entry, event in zip(state.live, state.events, strict=True):
        if event.height < tip_height - REORG_DEPTH_MAX:
            continue
        if _on_best_chain(node, event.blockhash):
            continue
        # Name the proposal whose confirmation this undoes, so the workflow's projection
        # files the reorg under it and takes it back from `confirmed` to `broadcast`.
        digest = event.digest if isinstance(event, BtcConfirmed) and event.digest else ABSENT
        result.append(BtcReorg(
            vault=vault.vault_id, txid=event.txid, blockhash=event.blockhash,
            height=event.height, reverses_seq=entry.seq, reverses_kind=entry.kind,
            delta_sats=-event.delta_sats, reason="block no longer on the best chain",
            digest=digest))
    return result


def reorg_entries(vault: Vault, node: BitcoinRPC, state: records.VaultChainState,
                  tip_height: int) -> list[tuple[str, dict[str, Any]]]:
    """`reorg_events` as (kind, payload) pairs, ready to append."""
    return [(event.KIND, event.to_payload())
            for event in reorg_events(vault, node, state, tip_height)]


def chain_event(vault: Vault, tx: dict[str, Any],
                broadcast: dict[str, str | None]) -> BtcDeposit | BtcConfirmed:
    """The deposit or confirmation for one confirmed wallet transaction (`tx` is the
    node's gettransaction answer)."""
    amount = btc_to_sats(tx["amount"])
    fee = btc_to_sats(tx.get("fee", 0))  # negative, present only when the vault paid it
    delta = amount + fee
    outputs = [{"vout": int(d["vout"]), "address": d.get("address"),
                "amount_sats": btc_to_sats(d["amount"])}
               # Coinbase outputs (mined straight into the vault) are listed as "generate"
               # once mature and "immature" before: they are vault coins all the same.
               for d in tx.get("details", [])
               if d.get("category") in ("receive", "generate", "immature")]
    txid, blockhash = str(tx["txid"]), str(tx["blockhash"])
    height, confirmations = int(tx["blockheight"]), int(tx["confirmations"])
    if txid in broadcast or delta < 0:
        return BtcConfirmed(vault=vault.vault_id, txid=txid, blockhash=blockhash,
                            height=height, confirmations=confirmations, delta_sats=delta,
                            outputs=outputs, amount_sats=-amount, fee_sats=-fee,
                            digest=broadcast.get(txid))
    return BtcDeposit(vault=vault.vault_id, txid=txid, blockhash=blockhash, height=height,
                      confirmations=confirmations, delta_sats=delta, outputs=outputs,
                      amount_sats=delta)


def chain_entry(vault: Vault, tx: dict[str, Any],
                broadcast: dict[str, str | None]) -> tuple[str, dict[str, Any]]:
    """`chain_event` as a (kind, payload) pair, ready to append."""
    event = chain_event(vault, tx, broadcast)
    return event.KIND, event.to_payload()


class ChainWatcher:
    """Syncs one vault's watch-only wallet into the ledger."""

    def __init__(self, vault: Vault, ledger: Ledger, rpc: BitcoinRPC, *,
                 wallet_name: str | None = None, actor: str = "btc-watcher",
                 confirmations_min: int | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.vault = vault
        self.ledger = ledger
        self.node = rpc.for_wallet(None)
        self.wallet = rpc.for_wallet(wallet_name or f"reserve-{vault.vault_id}")
        self.actor = actor
        self.confirmations_min = confirmations_min or vault.confirmations_min
        self.clock = clock  # injectable like the workflow's; None: the real time

    def _wallet_txids(self) -> list[str]:
        listed = self.wallet.listsinceblock("", 1, True)["transactions"]
        if len(listed) > TRANSACTIONS_MAX:
            raise WalletError(f"wallet lists more than {TRANSACTIONS_MAX} transactions")
        return sorted({t["txid"] for t in listed
                       if int(t.get("confirmations", 0)) >= self.confirmations_min})

    def _new_events(self, entries: list[Entry]) -> tuple[int, list[Event]]:
        tip = int(self.node.getblockcount())
        state = records.chain_state(entries, self.vault.vault_id)
        pending: list[Event] = []
        pending += reorg_events(self.vault, self.node, state, tip)
        reversed_txids = {event.txid for event in pending if isinstance(event, BtcReorg)}
        live = state.live_txids() - reversed_txids
        broadcast = records.broadcast_txids(entries, self.vault.vault_id)
        for txid in self._wallet_txids():
            if txid in live:
                continue
            tx = self.wallet.gettransaction(txid, True)
            if int(tx.get("confirmations", 0)) < self.confirmations_min:
                continue
            if txid in reversed_txids and not _on_best_chain(self.node, tx["blockhash"]):
                continue
            pending.append(chain_event(self.vault, tx, broadcast))
        return tip, pending

    def sync(self) -> SyncReport:
        """Record what the chain shows; bounded retries if the ledger changes meanwhile."""
        for _attempt in range(3):
            size = self.ledger.size()
            entries = list(self.ledger.entries(0, size, kinds=records.BTC_KINDS))
            tip, pending = self._new_events(entries)
            if pending:
                try:
                    self.ledger.append_many([(event.KIND, self.actor,
                                              records.jsonable(event.to_payload()))
                                             for event in pending],
                                            expected_size=size,
                                            now=self.clock() if self.clock else None)
                except LedgerConflict:
                    continue
            return SyncReport(
                tip_height=tip,
                deposits=tuple(e.txid for e in pending if isinstance(e, BtcDeposit)),
                confirmed=tuple(e.txid for e in pending if isinstance(e, BtcConfirmed)),
                reorged=tuple(e.txid for e in pending if isinstance(e, BtcReorg)))
        raise WalletError("ledger kept changing during sync; retry")

    def ledger_balance_sats(self) -> int:
        entries = list(self.ledger.entries(kinds=records.BTC_KINDS))
        return records.chain_state(entries, self.vault.vault_id).balance_sats
