"""The pure reconciliation core: each finding kind from hand-made ledger and chain facts,
and the invariant that findings itemise the whole difference."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.ledger import Ledger
from reserve.reconcile.compute import ChainTransaction, ChainView, Coin, ledger_view, reconcile

VAULT = "v1"
T1, T2, T3, SPEND, THIEF = "a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32, "e5" * 32
BLOCK, OLD = "11" * 32, "22" * 32


def _deposit(txid: str, amount: int, block: str = BLOCK, vout: int = 0) -> tuple[str, dict]:  # type: ignore[type-arg]
    return ("btc.deposit", {"vault_id": VAULT, "txid": txid, "blockhash": block, "height": 101,
                            "confirmations": 1, "delta_sats": amount, "amount_sats": amount,
                            "outputs": [{"vout": vout, "address": "x", "amount_sats": amount}]})


def _transfer(spent: str, amount_in: int, pay: int, fee: int, broadcast: bool = True,
              confirmed_block: str | None = BLOCK) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    change = amount_in - pay - fee
    base = {"vault_id": VAULT, "txid": SPEND, "proposal_digest": "ab" * 32}
    built = {"network": "regtest", "policy_version": 1, "psbt_sha256": "33" * 32,
             "psbt_base64": "cHNidP8=", "input_sats": amount_in, "change_sats": change,
             "fee_rate_msat_vb": 1000, "fee_rate_source": "test"}
    items = [("btc.psbt_created", {**base, **built, "amount_sats": pay, "fee_sats": fee,
                                   "inputs": [{"txid": spent, "vout": 0, "amount_sats": amount_in}],
                                   "outputs": [{"address": "dest", "amount_sats": pay,
                                                "change": False},
                                               {"address": "chg", "amount_sats": change,
                                                "change": True}]})]
    if broadcast:
        items.append(("btc.broadcast", {**base, "amount_sats": pay, "fee_sats": fee,
                                        "psbt_sha256": "33" * 32}))
    if confirmed_block:
        items.append(("btc.confirmed", {**base, "blockhash": confirmed_block, "height": 102,
                                        "confirmations": 1, "delta_sats": -(pay + fee),
                                        "amount_sats": pay, "fee_sats": fee, "outputs": []}))
    return items


def _view(items: list[tuple[str, dict]]):  # type: ignore[no-untyped-def,type-arg]
    ledger = Ledger.open("sqlite:///:memory:")
    if items:
        ledger.append_many([(kind, "test", payload) for kind, payload in items])
    return ledger_view(list(ledger.entries()), VAULT)


def _chain(coins: list[Coin], **answers: Any) -> ChainView:
    answers.setdefault("blocks", {BLOCK: True})
    return ChainView(VAULT, "BTC", 103, "ff" * 32, tuple(coins), **answers)


def _check(result) -> None:  # type: ignore[no-untyped-def]
    """Every report itemises its whole difference."""
    summary = result.summary
    assert summary.difference_sats == summary.chain_sats - summary.ledger_sats
    assert sum(f.difference_sats for f in result.findings) == summary.difference_sats
    assert all(f.kind != "unexplained_difference" for f in result.findings)


def test_clean_books_have_no_findings() -> None:
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10)])
    result = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)],
                                    transactions={SPEND: ChainTransaction(
                                        SPEND, 10, (("dest", 300), ("chg", 690)))}))
    _check(result)
    assert result.findings == () and result.summary.status == "ok"
    assert result.summary.ledger_sats == result.summary.chain_sats == 690


def test_unrecorded_deposit() -> None:
    result = reconcile(_view([_deposit(T1, 1000)]),
                       _chain([Coin(T1, 0, 1000, 101), Coin(T2, 3, 55, 102)]))
    _check(result)
    (finding,) = result.findings
    assert (finding.kind, finding.txid, finding.difference_sats) == ("unrecorded_deposit", T2, 55)
    assert result.summary.status == "discrepancy"


def test_unexpected_spend_found_on_chain_is_critical() -> None:
    result = reconcile(_view([_deposit(T1, 1000)]),
                       _chain([Coin(THIEF, 1, 400, 102)], spenders={(T1, 0): THIEF}))
    _check(result)
    (finding,) = result.findings
    assert (finding.kind, finding.severity, finding.txid) == ("unexpected_spend", "critical", THIEF)
    assert finding.amount_sats == 600 and finding.difference_sats == -600
    assert result.summary.status == "critical"


def test_unexpected_spend_with_unknown_spender() -> None:
    result = reconcile(_view([_deposit(T1, 1000)]), _chain([]))
    _check(result)
    (finding,) = result.findings
    assert finding.kind == "unexpected_spend" and finding.txid is None
    assert finding.outpoints == (f"{T1}:0",)


def test_spend_recorded_by_the_watcher_without_a_proposal_stays_critical() -> None:
    items = [_deposit(T1, 1000), ("btc.confirmed", {
        "vault_id": VAULT, "txid": THIEF, "blockhash": BLOCK, "height": 102, "confirmations": 1,
        "delta_sats": -600, "amount_sats": 590, "fee_sats": 10, "proposal_digest": None,
        "outputs": []})]
    result = reconcile(_view(items), _chain([Coin(THIEF, 1, 400, 102)],
                                            spenders={(T1, 0): THIEF}))
    _check(result)
    (finding,) = result.findings
    assert finding.kind == "unexpected_spend" and finding.difference_sats == 0
    assert result.summary.difference_sats == 0 and result.summary.status == "critical"


def test_deposit_reorganised_away() -> None:
    result = reconcile(_view([_deposit(T1, 1000), _deposit(T2, 500, block=OLD)]),
                       _chain([Coin(T1, 0, 1000, 101)], blocks={BLOCK: True, OLD: False},
                              mempool=frozenset({T2})))
    _check(result)
    (finding,) = result.findings
    assert (finding.kind, finding.txid, finding.difference_sats) == (
        "deposit_reorganised", T2, -500)
    assert "mempool" in finding.detail


def test_transfer_reorganised_away() -> None:
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, confirmed_block=OLD)])
    result = reconcile(view, _chain([Coin(T1, 0, 1000, 101)], blocks={BLOCK: True, OLD: False},
                                    mempool=frozenset({SPEND})))
    _check(result)
    (finding,) = result.findings
    assert finding.kind == "transfer_reorganised" and finding.difference_sats == 310


def test_transfer_unconfirmed_missing_and_confirmation_unrecorded() -> None:
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, confirmed_block=None)])
    pending = reconcile(view, _chain([Coin(T1, 0, 1000, 101)], mempool=frozenset({SPEND})))
    missing = reconcile(view, _chain([Coin(T1, 0, 1000, 101)]))
    landed = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)], spenders={(T1, 0): SPEND}))
    for result in (pending, missing, landed):
        _check(result)
    assert [f.kind for f in pending.findings] == ["transfer_unconfirmed"]
    assert [f.kind for f in missing.findings] == ["transfer_missing"]
    assert [f.kind for f in landed.findings] == ["confirmation_unrecorded"]
    assert landed.findings[0].difference_sats == -310


def test_amount_and_fee_mismatch() -> None:
    view = _view([_deposit(T1, 1000), _deposit(T3, 80), *_transfer(T1, 1000, 300, 10)])
    result = reconcile(view, _chain(
        [Coin(SPEND, 1, 690, 102), Coin(T3, 0, 81, 101)],
        transactions={SPEND: ChainTransaction(SPEND, 12, (("dest", 298), ("chg", 690)))}))
    _check(result)
    kinds = sorted(f.kind for f in result.findings)
    assert kinds == ["amount_mismatch", "amount_mismatch", "fee_mismatch", "fee_mismatch"]
    assert result.summary.difference_sats == 1


def test_ledger_inconsistent_when_deltas_and_coins_disagree() -> None:
    item = _deposit(T1, 1000)
    item[1]["delta_sats"] = 900
    result = reconcile(_view([item]), _chain([Coin(T1, 0, 1000, 101)]))
    _check(result)
    (finding,) = result.findings
    assert finding.kind == "ledger_inconsistent" and finding.difference_sats == 100


amounts = st.integers(min_value=1, max_value=21_000_000 * 10**8)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(amounts, st.sampled_from(["both", "ledger", "chain"])),
                max_size=12))
def test_findings_always_itemise_the_whole_difference(coins) -> None:  # type: ignore[no-untyped-def]
    items, chain = [], []
    for number, (amount, where) in enumerate(coins):
        txid = f"{number:064x}"
        if where in ("both", "ledger"):
            items.append(_deposit(txid, amount))
        if where in ("both", "chain"):
            chain.append(Coin(txid, 0, amount, 101))
    result = reconcile(_view(items), _chain(chain))
    _check(result)
    assert (result.summary.status == "ok") == all(where == "both" for _a, where in coins)
