"""Deposit and execution bookkeeping from chain observations: the pure core of the watcher.

The ledger never forgets: a deposit is recorded once it has `confirmations` blocks, and if
its block later leaves the canonical chain (a reorg deeper than the confirmation depth) a
compensating `evm.reorg` entry reverses it; the history stays. Executed Safe transactions
are confirmed the same way. Everything here takes the ledger's entries and what the chain
showed as plain values and returns the entries to append, so it is tested without a node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reserve.events import ABSENT, decode
from reserve.events.chain_evm import EvmConfirmed, EvmDeposit, EvmExecuted, EvmReorg

DEPOSIT = EvmDeposit.KIND
EXECUTED = EvmExecuted.KIND
CONFIRMED = EvmConfirmed.KIND
REORG = EvmReorg.KIND


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

    def event(self) -> EvmDeposit:
        return EvmDeposit(key=self.key, chain_id=self.chain_id, vault=self.vault_id,
                          safe=self.safe, asset=self.asset, sender=self.sender,
                          amount_wei=self.amount_wei, tx_hash=self.tx_hash,
                          log_index=self.log_index, block_number=self.block_number,
                          block_hash=self.block_hash)

    def payload(self) -> dict[str, Any]:
        return self.event().to_payload()


@dataclass(frozen=True)
class Recorded:
    """A ledger entry about a chain event that is still in force (not reversed), with its
    typed event (decoded from `payload` unless given)."""

    seq: int
    kind: str
    payload: Mapping[str, Any]  # as recorded; reserve.reconcile.evm_compute reads it
    event: EvmDeposit | EvmExecuted = field(default=ABSENT, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.event is ABSENT:
            object.__setattr__(self, "event", _in_force_event(self.kind, self.payload))


def _in_force_event(kind: str, payload: Mapping[str, Any]) -> EvmDeposit | EvmExecuted:
    if kind == DEPOSIT:
        return EvmDeposit.from_payload(dict(payload))
    if kind == EXECUTED:
        return EvmExecuted.from_payload(dict(payload))
    raise ValueError(f"only {DEPOSIT} and {EXECUTED} entries are in force, not {kind}")


def in_force(entries: Iterable[Any], safe: str, chain_id: int) -> dict[int, Recorded]:
    """Deposits and executions of `safe` not reversed by a reorg entry, by sequence number."""
    active: dict[int, Recorded] = {}
    for entry in entries:
        if entry.kind not in (DEPOSIT, EXECUTED, REORG):
            continue
        event = decode(entry.kind, entry.payload)
        if not isinstance(event, EvmDeposit | EvmExecuted | EvmReorg) \
                or event.safe != safe or event.chain_id != chain_id:
            continue
        if isinstance(event, EvmReorg):
            active.pop(event.reverses_seq, None)
        else:
            active[entry.seq] = Recorded(entry.seq, entry.kind, entry.payload, event)
    return active


def confirmed_seqs(entries: Iterable[Any]) -> set[int]:
    """Sequence numbers of executions already confirmed, whoever recorded the confirmation
    (this watcher names the entry it confirms; the workflow's adapter names the tx hash)."""
    seqs: set[int] = set()
    tx_hashes: set[str] = set()
    executed: list[tuple[int, str]] = []
    for entry in entries:
        if entry.kind == CONFIRMED:
            confirmed = EvmConfirmed.of(entry)
            if confirmed.confirms_seq is not ABSENT:
                seqs.add(confirmed.confirms_seq)
            tx_hashes.add(confirmed.tx_hash)
        elif entry.kind == EXECUTED:
            executed.append((entry.seq, EvmExecuted.of(entry).tx_hash))
    return seqs | {seq for seq, tx_hash in executed if tx_hash in tx_hashes}


def reorg_payload(recorded: Recorded, reason: str) -> dict[str, Any]:
    event = recorded.event
    return EvmReorg(reverses_seq=recorded.seq, reverses_kind=recorded.kind,
                    chain_id=event.chain_id, vault=event.vault, safe=event.safe,
                    asset=event.asset, amount_wei=event.amount_wei, tx_hash=event.tx_hash,
                    block_number=event.block_number, block_hash=event.block_hash,
                    reason=reason).to_payload()


def plan_reorgs(active: Mapping[int, Recorded], canonical: Mapping[int, str | None]
                ) -> list[tuple[str, dict[str, Any]]]:
    """Reorg entries for records whose block is no longer canonical.

    `canonical` maps a block height to the canonical block hash now (None if the chain is
    shorter than that); heights missing from it are treated as final and not checked.
    """
    planned = []
    for recorded in sorted(active.values(), key=lambda item: item.seq):
        height, block_hash = recorded.event.block_number, recorded.event.block_hash
        if height not in canonical:
            continue
        now = canonical[height]
        if now != block_hash:
            shown = now if now is not None else "nothing (the chain is shorter)"
            planned.append((REORG, reorg_payload(recorded, (
                f"block {block_hash} at height {height} left the chain; "
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
    known = {recorded.event.key for seq, recorded in active.items()
             if isinstance(recorded.event, EvmDeposit) and seq not in reversed_now}
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
        executed = recorded.event
        if not isinstance(executed, EvmExecuted) or seq in already or seq in reversed_now:
            continue
        height = executed.block_number
        if tip - height + 1 >= confirmations:
            planned.append((CONFIRMED, EvmConfirmed(
                confirms_seq=seq, safe_tx_hash=executed.safe_tx_hash,
                chain_id=executed.chain_id, safe=executed.safe, tx_hash=executed.tx_hash,
                block_number=height, block_hash=executed.block_hash,
                confirmations=tip - height + 1).to_payload()))
    return planned


def positions(entries: Iterable[Any], safe: str, chain_id: int) -> dict[str, int]:
    """The ledger's balance per asset for a vault: deposits minus successful executions,
    with reorged entries reversed."""
    totals: dict[str, int] = {}
    for recorded in in_force(entries, safe, chain_id).values():
        event = recorded.event
        if isinstance(event, EvmExecuted) and not event.success:
            continue
        sign = 1 if isinstance(event, EvmDeposit) else -1
        totals[event.asset] = totals.get(event.asset, 0) + sign * event.amount_wei
    return totals
