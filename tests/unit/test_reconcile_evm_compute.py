"""The pure EVM reconciliation core: itemised findings always add up to the difference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from reserve.events.chain_evm import EvmDeposit, EvmExecuted
from reserve.reconcile.evm_compute import EVMChainView, Movement, reconcile

SAFE = "0x" + "5a" * 20
GOOD, GONE = "0x" + "11" * 32, "0x" + "22" * 32


@dataclass(frozen=True)
class E:  # the two attributes of a ledger Entry the core reads
    seq: int
    kind: str
    payload: dict[str, Any]


def deposit(seq: int, amount: int, block: str = GOOD) -> E:
    return E(seq, "evm.deposit", EvmDeposit(
        key=f"1:0xd{seq}:0", chain_id=1, vault="v", safe=SAFE, asset="ETH",
        sender="0x" + "77" * 20, amount_wei=amount, tx_hash=f"0xd{seq}", log_index=0,
        block_number=5, block_hash=block).to_payload())


def executed(seq: int, amount: int, block: str = GOOD, success: bool = True) -> E:
    return E(seq, "evm.executed", EvmExecuted(
        safe_tx_hash="0x" + "33" * 32, digest="44" * 32, vault="v", chain_id=1, safe=SAFE,
        asset="ETH", to="0x" + "88" * 20, amount_wei=amount, nonce=seq, tx_hash=f"0xe{seq}",
        block_number=6, block_hash=block, success=success, gas_used=21000).to_payload())


def view(balance: int, credits: list[Movement], debits: list[Movement]) -> EVMChainView:
    return EVMChainView("v", "ETH", 1, SAFE, 10, "0x" + "ff" * 32, balance, tuple(credits),
                        tuple(debits), (), {GOOD: True, GONE: False})


def test_clean_with_a_recorded_execution() -> None:
    entries = [deposit(0, 10**20), executed(1, 3 * 10**18)]
    result = reconcile(entries, view(10**20 - 3 * 10**18, [Movement("1:0xd0:0", "0xd0", 10**20, 5)],
                                     [Movement("1:0xe1:exec", "0xe1", 3 * 10**18, 6)]))
    assert result.findings == () and result.summary.status == "ok"
    assert result.summary.to_json()["ledger"] == str(97 * 10**18)


def test_reorganised_deposit_and_unknown_outflow() -> None:
    result = reconcile([deposit(0, 500, GONE)], view(100, [], []))
    kinds = sorted(f.kind for f in result.findings)
    assert kinds == ["deposit_reorganised", "unrecorded_deposit"]
    assert result.summary.difference_wei == -400


def test_a_failed_execution_moves_nothing() -> None:
    entries = [deposit(0, 900), executed(1, 400, success=False)]
    result = reconcile(entries, view(900, [Movement("1:0xd0:0", "0xd0", 900, 5)], []))
    assert result.findings == () and result.summary.ledger_wei == 900


def test_reorganised_execution() -> None:
    entries = [deposit(0, 900), executed(1, 400, GONE)]
    result = reconcile(entries, view(900, [Movement("1:0xd0:0", "0xd0", 900, 5)], []))
    (finding,) = result.findings
    assert (finding.kind, finding.txid, finding.ledger_seqs) == ("transfer_reorganised", "0xe1",
                                                                  (1,))
    assert finding.difference_wei == result.summary.difference_wei == 400
    assert GONE in finding.detail


amounts = st.integers(min_value=1, max_value=10**24)


@given(st.lists(amounts, max_size=4), st.lists(amounts, max_size=4), st.lists(amounts, max_size=3),
       st.integers(min_value=0, max_value=10**25), st.booleans())
# A recorded deposit reorganised into another block: an info finding, the balance agrees.
@example(recorded=[1], seen=[1], spent=[], balance=1, reorged=True)
def test_findings_add_up(recorded: list[int], seen: list[int], spent: list[int], balance: int,
                         reorged: bool) -> None:
    entries = [deposit(i, a, GONE if reorged and i == 0 else GOOD) for i, a in enumerate(recorded)]
    credits = [Movement(f"1:0xd{i}:0", f"0xd{i}", a, 5) for i, a in enumerate(seen)]
    debits = [Movement(f"1:0xs{i}:exec", f"0xs{i}", a, 7) for i, a in enumerate(spent)]
    result = reconcile(entries, view(balance, credits, debits))
    assert sum(f.difference_wei for f in result.findings) == result.summary.difference_wei
    # "ok" means no difference and nothing but info findings (a deposit that moved to
    # another block is reported, yet the reserve holds what the ledger says).
    serious = [f for f in result.findings if f.severity != "info"]
    assert (result.summary.status == "ok") == (not serious and result.summary.difference_wei == 0)
    for finding in result.findings:
        assert isinstance(finding.to_json()["difference"], str)
