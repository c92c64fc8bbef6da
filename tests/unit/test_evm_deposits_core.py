"""The deposit watcher's decisions, from plain values: depth, idempotence, reorgs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.events.chain_evm import EvmConfirmed, EvmExecuted
from wallets.evm.deposits_core import (
    ObservedDeposit,
    in_force,
    plan_confirmations,
    plan_deposits,
    plan_reorgs,
    positions,
)

SAFE = "0x" + "5A" * 20
CHAIN = 31337


@dataclass(frozen=True)
class FakeEntry:
    seq: int
    kind: str
    payload: dict[str, Any]


def deposit(n: int, height: int, amount: int = 10, block: str | None = None) -> ObservedDeposit:
    return ObservedDeposit(chain_id=CHAIN, vault_id="v", safe=SAFE, asset="ETH", sender=SAFE,
                           amount_wei=amount, tx_hash=f"0x{n:064x}", log_index=0,
                           block_number=height, block_hash=block or f"0x{height:064x}")


def executed_payload(tx_hash: str = "0x02", success: bool = True) -> dict[str, Any]:
    return EvmExecuted(
        safe_tx_hash="0x01", digest="dd" * 32, vault="v", chain_id=CHAIN, safe=SAFE,
        asset="ETH", to=SAFE, amount_wei=4, nonce=0, tx_hash=tx_hash, block_number=5,
        block_hash="0x03", success=success, gas_used=21_000).to_payload()


def as_entries(planned: list[tuple[str, dict[str, Any]]], start: int = 0) -> list[FakeEntry]:
    return [FakeEntry(start + i, kind, payload) for i, (kind, payload) in enumerate(planned)]


def test_depth_and_idempotence() -> None:
    observed = [deposit(1, 10), deposit(2, 12)]
    planned = plan_deposits({}, set(), observed, tip=12, confirmations=3)
    assert [p["tx_hash"] for _, p in planned] == [f"0x{1:064x}"]
    entries = as_entries(planned)
    active = in_force(entries, SAFE, CHAIN)
    again = plan_deposits(active, set(), observed, tip=14, confirmations=3)
    assert [p["tx_hash"] for _, p in again] == [f"0x{2:064x}"]


def test_reorg_compensates_and_allows_re_recording() -> None:
    entries = as_entries(plan_deposits({}, set(), [deposit(1, 10)], tip=10, confirmations=1))
    active = in_force(entries, SAFE, CHAIN)
    assert plan_reorgs(active, {10: f"0x{10:064x}"}) == []
    assert plan_reorgs(active, {}) == []  # beyond the horizon: final
    reorgs = plan_reorgs(active, {10: "0x" + "ff" * 32})
    assert [kind for kind, _ in reorgs] == ["evm.reorg"]
    assert reorgs[0][1]["reverses_seq"] == 0 and reorgs[0][1]["amount_wei"] == "10"
    shorter = plan_reorgs(active, {10: None})
    assert "the chain is shorter" in shorter[0][1]["reason"]
    moved = deposit(1, 11, block="0x" + "ee" * 32)
    again = plan_deposits(active, {0}, [moved], tip=11, confirmations=1)
    assert [p["block_number"] for _, p in again] == [11]
    history = entries + as_entries(reorgs + again, start=1)
    assert positions(history, SAFE, CHAIN) == {"ETH": 10}


def test_confirmations_of_executions_once_each() -> None:
    executed = FakeEntry(0, "evm.executed", executed_payload())
    active = in_force([executed], SAFE, CHAIN)
    assert plan_confirmations(active, set(), set(), tip=5, confirmations=2) == []
    (confirmed,) = plan_confirmations(active, set(), set(), tip=6, confirmations=2)
    assert confirmed[1]["confirms_seq"] == 0
    assert EvmConfirmed.from_payload(confirmed[1]).safe_tx_hash == "0x01"
    assert plan_confirmations(active, {0}, set(), tip=9, confirmations=2) == []
    assert positions([executed], SAFE, CHAIN) == {"ETH": -4}
    failed = FakeEntry(1, "evm.executed", executed_payload(success=False))
    assert positions([failed], SAFE, CHAIN) == {}


def test_other_vaults_and_chains_are_ignored() -> None:
    entries = as_entries(plan_deposits({}, set(), [deposit(1, 1)], tip=1, confirmations=1))
    assert in_force(entries, "0x" + "11" * 20, CHAIN) == {}
    assert in_force(entries, SAFE, 1) == {}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 10**30), st.booleans()),
                max_size=12))
def test_ledger_position_equals_canonical_deposits(items: list[tuple[int, int, bool]]) -> None:
    """Whatever gets reorged away, the position equals the sum of deposits still canonical."""
    observed = [deposit(n, height, amount) for n, (height, amount, _) in enumerate(items)]
    entries = as_entries(plan_deposits({}, set(), observed, tip=40, confirmations=1))
    reorged_heights = {height for height, _, gone in items if gone}
    canonical = {h: ("0x" + "ff" * 32 if h in reorged_heights else f"0x{h:064x}")
                 for h in range(1, 31)}
    reorgs = plan_reorgs(in_force(entries, SAFE, CHAIN), canonical)
    history = entries + as_entries(reorgs, start=len(entries))
    expected = sum(amount for height, amount, _ in items if height not in reorged_heights)
    assert positions(history, SAFE, CHAIN).get("ETH", 0) == expected


def test_confirmation_recorded_by_the_workflow_adapter_counts() -> None:
    """The adapter's evm.confirmed names the tx hash, not the entry: the watcher must not
    confirm the same execution a second time."""
    from wallets.evm.deposits_core import confirmed_seqs

    executed = FakeEntry(3, "evm.executed", executed_payload(tx_hash="0xaa"))
    block = {"block_number": 5, "block_hash": "0x03", "confirmations": 1}
    by_adapter = FakeEntry(4, "evm.confirmed", {"tx_hash": "0xaa", **block, "success": True,
                                                "vault": "v", "digest": "dd" * 32})
    by_watcher = FakeEntry(5, "evm.confirmed", {"confirms_seq": 9, "tx_hash": "0xbb", **block})
    first = FakeEntry(6, "evm.confirmed", {"confirms_seq": 0, "tx_hash": "0xcc", **block})
    assert confirmed_seqs([executed, by_adapter, by_watcher, first]) == {0, 3, 9}
