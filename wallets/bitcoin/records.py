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

from reserve.ledger.entry import Entry

BTC_KINDS = ("btc.psbt_created", "btc.share_received", "btc.finalized", "btc.broadcast",
             "btc.confirmed", "btc.deposit", "btc.reorg")
CHAIN_KINDS = ("btc.confirmed", "btc.deposit")


@dataclass
class TransferRecord:
    """Everything the ledger says about one approved transfer (by proposal digest)."""

    created: Entry
    shares: list[Entry] = field(default_factory=list)
    finalized: Entry | None = None
    broadcast: Entry | None = None

    @property
    def txid(self) -> str:
        txid: str = self.created.payload["txid"]
        return txid

    @property
    def signers(self) -> list[str]:
        return [entry.payload["custodian"] for entry in self.shares]


@dataclass(frozen=True)
class VaultChainState:
    """Chain-derived entries of one vault that are in force (not reversed by a reorg)."""

    live: tuple[Entry, ...]
    reversed_seqs: frozenset[int]

    @property
    def balance_sats(self) -> int:
        return sum(int(entry.payload["delta_sats"]) for entry in self.live)

    def live_txids(self) -> set[str]:
        return {entry.payload["txid"] for entry in self.live}


def _for_vault(entries: Iterable[Entry], vault_id: str) -> list[Entry]:
    return [e for e in entries if e.kind in BTC_KINDS and e.payload.get("vault_id") == vault_id]


def transfer_record(entries: Iterable[Entry], vault_id: str,
                    proposal_digest_hex: str) -> TransferRecord | None:
    """The transfer's record, or None if no PSBT was built for it yet."""
    record: TransferRecord | None = None
    for entry in _for_vault(entries, vault_id):
        if entry.payload.get("proposal_digest") != proposal_digest_hex:
            continue
        if entry.kind == "btc.psbt_created" and record is None:
            record = TransferRecord(created=entry)
        elif record is None:
            continue
        elif entry.kind == "btc.share_received":
            record.shares.append(entry)
        elif entry.kind == "btc.finalized":
            record.finalized = entry
        elif entry.kind == "btc.broadcast" and record.broadcast is None:
            record.broadcast = entry
    return record


def pending_outpoints(entries: Iterable[Entry], vault_id: str) -> set[tuple[str, int]]:
    """Outpoints held by PSBTs whose transaction is not yet confirmed: not to be reused."""
    held: dict[str, list[tuple[str, int]]] = {}
    confirmed: set[str] = set()
    for entry in _for_vault(entries, vault_id):
        if entry.kind == "btc.psbt_created":
            held[entry.payload["txid"]] = [(i["txid"], i["vout"])
                                           for i in entry.payload["inputs"]]
        elif entry.kind == "btc.confirmed":
            confirmed.add(entry.payload["txid"])
    return {outpoint for txid, outpoints in held.items() if txid not in confirmed
            for outpoint in outpoints}


def chain_state(entries: Iterable[Entry], vault_id: str) -> VaultChainState:
    chain: list[Entry] = []
    reversed_seqs: set[int] = set()
    for entry in _for_vault(entries, vault_id):
        if entry.kind in CHAIN_KINDS:
            chain.append(entry)
        elif entry.kind == "btc.reorg":
            reversed_seqs.add(int(entry.payload["reverses_seq"]))
    live = tuple(e for e in chain if e.seq not in reversed_seqs)
    return VaultChainState(live=live, reversed_seqs=frozenset(reversed_seqs))


def broadcast_txids(entries: Iterable[Entry], vault_id: str) -> dict[str, str | None]:
    """txid -> proposal digest (hex) of every transaction the service broadcast."""
    return {e.payload["txid"]: e.payload.get("proposal_digest")
            for e in _for_vault(entries, vault_id) if e.kind == "btc.broadcast"}


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
