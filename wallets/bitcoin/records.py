"""The state of Bitcoin transfers and vault balances, derived from ledger entries (pure).

Nothing about a transfer is stored outside the ledger: the PSBT that was built, each
signature share, the broadcast and the confirmations are entries, and the current state is
recomputed from them. A restarted service (or a second one) therefore resumes exactly where
the evidence says the flow is. A compensating `btc.reorg` entry cancels the entry it names;
entries are never edited.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from reserve.events.base import Event
from reserve.events.chain_btc import (
    BtcBroadcast,
    BtcConfirmed,
    BtcDeposit,
    BtcFinalized,
    BtcPsbtCreated,
    BtcReorg,
    BtcShareReceived,
)
from reserve.ledger.entry import Entry

BTC_KINDS = ("btc.psbt_created", "btc.share_received", "btc.finalized", "btc.broadcast",
             "btc.confirmed", "btc.deposit", "btc.reorg")
CHAIN_KINDS = ("btc.confirmed", "btc.deposit")
_TRANSFER_EVENTS = (BtcPsbtCreated, BtcShareReceived, BtcFinalized, BtcBroadcast)


@dataclass
class TransferRecord:
    """Everything the ledger says about one approved transfer (by proposal digest)."""

    created: BtcPsbtCreated
    shares: list[BtcShareReceived] = field(default_factory=list)
    finalized: BtcFinalized | None = None
    broadcast: BtcBroadcast | None = None

    @property
    def txid(self) -> str:
        return self.created.txid

    @property
    def signers(self) -> list[str]:
        return [share.custodian for share in self.shares]


@dataclass(frozen=True)
class VaultChainState:
    """Chain-derived entries of one vault that are in force (not reversed by a reorg), and
    their typed events (`events[i]` is `live[i]`'s)."""

    live: tuple[Entry, ...]
    reversed_seqs: frozenset[int]
    events: tuple[BtcDeposit | BtcConfirmed, ...]

    @property
    def balance_sats(self) -> int:
        return sum(event.delta_sats for event in self.events)

    def live_txids(self) -> set[str]:
        return {event.txid for event in self.events}


def _for_vault(entries: Iterable[Entry], vault_id: str) -> list[tuple[Entry, Event]]:
    """The vault's btc.* entries with their typed events, in ledger order. The vault is
    checked on the raw payload first, so other vaults' entries are not decoded."""
    return [(entry, entry.event) for entry in entries
            if entry.kind in BTC_KINDS and entry.payload.get("vault_id") == vault_id]


def transfer_record(entries: Iterable[Entry], vault_id: str,
                    proposal_digest_hex: str) -> TransferRecord | None:
    """The transfer's record, or None if no PSBT was built for it yet."""
    record: TransferRecord | None = None
    for _entry, event in _for_vault(entries, vault_id):
        if not isinstance(event, _TRANSFER_EVENTS) or event.digest != proposal_digest_hex:
            continue
        if isinstance(event, BtcPsbtCreated) and record is None:
            record = TransferRecord(created=event)
        elif record is None:
            continue
        elif isinstance(event, BtcShareReceived):
            record.shares.append(event)
        elif isinstance(event, BtcFinalized):
            record.finalized = event
        elif isinstance(event, BtcBroadcast) and record.broadcast is None:
            record.broadcast = event
    return record


def pending_outpoints(entries: Iterable[Entry], vault_id: str) -> set[tuple[str, int]]:
    """Outpoints held by PSBTs whose transaction is not yet confirmed: not to be reused."""
    held: dict[str, list[tuple[str, int]]] = {}
    confirmed: set[str] = set()
    for _entry, event in _for_vault(entries, vault_id):
        if isinstance(event, BtcPsbtCreated):
            held[event.txid] = event.outpoints()
        elif isinstance(event, BtcConfirmed):
            confirmed.add(event.txid)
    return {outpoint for txid, outpoints in held.items() if txid not in confirmed
            for outpoint in outpoints}


def chain_state(entries: Iterable[Entry], vault_id: str) -> VaultChainState:
    chain: list[tuple[Entry, BtcDeposit | BtcConfirmed]] = []
    reversed_seqs: set[int] = set()
    for entry, event in _for_vault(entries, vault_id):
        if isinstance(event, BtcDeposit | BtcConfirmed):
            chain.append((entry, event))
        elif isinstance(event, BtcReorg):
            reversed_seqs.add(event.reverses_seq)
    live = [(entry, event) for entry, event in chain if entry.seq not in reversed_seqs]
    return VaultChainState(live=tuple(entry for entry, _ in live),
                           reversed_seqs=frozenset(reversed_seqs),
                           events=tuple(event for _, event in live))


def broadcast_txids(entries: Iterable[Entry], vault_id: str) -> dict[str, str | None]:
    """txid -> proposal digest (hex) of every transaction the service finalised to send
    (the intent, recorded before sending) or broadcast."""
    return {event.txid: event.digest for _entry, event in _for_vault(entries, vault_id)
            if isinstance(event, BtcFinalized | BtcBroadcast)}


def payload_hex(value: bytes) -> str:
    return value.hex()


def jsonable(value: Any) -> Any:
    """Ledger payloads allow no floats: fail loudly if one slips in."""
    if isinstance(value, float):
        raise TypeError("float in a ledger payload")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
