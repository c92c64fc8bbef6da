"""Deposit and execution bookkeeping from chain observations: the pure core of the watcher.

The ledger never forgets: a deposit is recorded once it has `confirmations` blocks, and if
its block later leaves the canonical chain (a reorg deeper than the confirmation depth) a
compensating `evm.reorg` entry reverses it; the history stays. Executed Safe transactions
are confirmed the same way. Everything here takes the ledger's entries and what the chain
showed as plain values and returns the entries to append, so it is tested without a node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DEPOSIT = "evm.deposit"
EXECUTED = "evm.executed"
CONFIRMED = "evm.confirmed"
REORG = "evm.reorg"


@dataclass(frozen=True)
class ObservedDeposit:
    """An ETH (SafeReceived) or ERC-20 (Transfer) credit to a vault seen in a block."""

    chain_id: int
    vault_id: str
    safe: str
    asset: str  # "ETH" or the token address
    sender: str
    amount_wei: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str

    @property
    def key(self) -> str:
        return f"{self.chain_id}:{self.tx_hash}:{self.log_index}"

    def payload(self) -> dict[str, Any]:
        return {"key": self.key, "chain_id": self.chain_id, "vault_id": self.vault_id,
                "safe": self.safe, "asset": self.asset, "sender": self.sender,
                "amount_wei": str(self.amount_wei), "tx_hash": self.tx_hash,
                "log_index": self.log_index, "block_number": self.block_number,
                "block_hash": self.block_hash}


@dataclass(frozen=True)
class Recorded:
    """A ledger entry about a chain event that is still in force (not reversed)."""

    seq: int
    kind: str
    payload: Mapping[str, Any]


def in_force(entries: Iterable[Any], safe: str, chain_id: int) -> dict[int, Recorded]:
    """Deposits and executions of `safe` not reversed by a reorg entry, by sequence number."""
    active: dict[int, Recorded] = {}
    for entry in entries:
        payload = entry.payload
        if payload.get("safe") != safe or payload.get("chain_id") != chain_id:
            continue
        if entry.kind in (DEPOSIT, EXECUTED):
            active[entry.seq] = Recorded(entry.seq, entry.kind, payload)
        elif entry.kind == REORG:
            active.pop(int(payload["reverses_seq"]), None)
    return active


def confirmed_seqs(entries: Iterable[Any]) -> set[int]:
    """Sequence numbers of executions already confirmed, whoever recorded the confirmation
    (this watcher names the entry it confirms; the workflow's adapter names the tx hash)."""
    seqs: set[int] = set()
    tx_hashes: set[str] = set()
    executed: list[tuple[int, str]] = []
    for entry in entries:
        if entry.kind == CONFIRMED:
            if "confirms_seq" in entry.payload:
                seqs.add(int(entry.payload["confirms_seq"]))
            tx_hashes.add(str(entry.payload.get("tx_hash", "")))
        elif entry.kind == EXECUTED:
            executed.append((entry.seq, str(entry.payload.get("tx_hash", ""))))
    return seqs | {seq for seq, tx_hash in executed if tx_hash in tx_hashes}


def reorg_payload(recorded: Recorded, reason: str) -> dict[str, Any]:
    payload = recorded.payload
    return {"reverses_seq": recorded.seq, "reverses_kind": recorded.kind,
            "chain_id": payload["chain_id"], "vault_id": payload.get("vault_id", ""),
            "safe": payload["safe"], "asset": payload["asset"],
            "amount_wei": payload["amount_wei"], "tx_hash": payload["tx_hash"],
            "block_number": payload["block_number"], "block_hash": payload["block_hash"],
            "reason": reason}


def plan_reorgs(active: Mapping[int, Recorded], canonical: Mapping[int, str | None]
                ) -> list[tuple[str, dict[str, Any]]]:
    """Reorg entries for records whose block is no longer canonical.

    `canonical` maps a block height to the canonical block hash now (None if the chain is
    shorter than that); heights missing from it are treated as final and not checked.
    """
    planned = []
    for recorded in sorted(active.values(), key=lambda item: item.seq):
        height = int(recorded.payload["block_number"])
        if height not in canonical:
            continue
        now = canonical[height]
        if now != recorded.payload["block_hash"]:
            shown = now if now is not None else "nothing (the chain is shorter)"
            planned.append((REORG, reorg_payload(recorded, (
                f"block {recorded.payload['block_hash']} at height {height} left the chain; "
                f"height {height} now holds {shown}"))))
    return planned


def plan_deposits(active: Mapping[int, Recorded], reversed_now: set[int],
                  observed: Iterable[ObservedDeposit], tip: int, confirmations: int
                  ) -> list[tuple[str, dict[str, Any]]]:
    """Deposit entries for observed credits with enough confirmations not yet in force.

    Requires confirmations >= 1. A deposit reversed by a reorg and seen again in a new
    block is recorded again (a new entry, with the new block).
    """
    if confirmations < 1:
        raise ValueError("confirmations must be >= 1")
    known = {recorded.payload["key"] for seq, recorded in active.items()
             if recorded.kind == DEPOSIT and seq not in reversed_now}
    planned = []
    for deposit in sorted(observed, key=lambda item: (item.block_number, item.log_index)):
        if deposit.key in known or tip - deposit.block_number + 1 < confirmations:
            continue
        known.add(deposit.key)
        planned.append((DEPOSIT, deposit.payload()))
    return planned


def plan_confirmations(active: Mapping[int, Recorded], already: set[int],
                       reversed_now: set[int], tip: int, confirmations: int
                       ) -> list[tuple[str, dict[str, Any]]]:
    """`evm.confirmed` for executions now `confirmations` deep (once each)."""
    planned = []
    for seq, recorded in sorted(active.items()):
        if recorded.kind != EXECUTED or seq in already or seq in reversed_now:
            continue
        height = int(recorded.payload["block_number"])
        if tip - height + 1 >= confirmations:
            planned.append((CONFIRMED, {
                "confirms_seq": seq, "safe_tx_hash": recorded.payload["safe_tx_hash"],
                "chain_id": recorded.payload["chain_id"], "safe": recorded.payload["safe"],
                "tx_hash": recorded.payload["tx_hash"], "block_number": height,
                "block_hash": recorded.payload["block_hash"], "confirmations": tip - height + 1}))
    return planned


def positions(entries: Iterable[Any], safe: str, chain_id: int) -> dict[str, int]:
    """The ledger's balance per asset for a vault: deposits minus successful executions,
    with reorged entries reversed."""
    totals: dict[str, int] = {}
    for recorded in in_force(entries, safe, chain_id).values():
        payload = recorded.payload
        if recorded.kind == EXECUTED and not payload.get("success", False):
            continue
        sign = 1 if recorded.kind == DEPOSIT else -1
        totals[payload["asset"]] = totals.get(payload["asset"], 0) \
            + sign * int(payload["amount_wei"])
    return totals
