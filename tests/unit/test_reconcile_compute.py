"""The pure reconciliation core: each finding kind from hand-made ledger and chain facts,
and the invariant that findings itemise the whole difference."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.ledger import Ledger
from reserve.reconcile.compute import ChainTransaction, ChainView, Coin, ledger_view, reconcile
from reserve.transfers.chain import ChainStep, ReleaseOrder
from tests.support.workflow import COLD, SETTLEMENT, FakeChain, approve, btc_policy, propose
from tests.support.workflow import workflow_service as make_workflow

VAULT = "v1"
T1, T2, T3, SPEND, THIEF = "a1" * 32, "b2" * 32, "c3" * 32, "d4" * 32, "e5" * 32
BLOCK, OLD = "11" * 32, "22" * 32
NEVER = "ab" * 32  # a digest no proposal has
CHANGE = "chg"  # stands for one of the vault's own addresses


class SelfRecordingChain(FakeChain):
    """A chain layer that writes its own entries (as BitcoinVaultService does): the
    workflow records only its state change; the test writes the btc.* entries."""

    def prepare(self, order: ReleaseOrder) -> ChainStep:
        self.orders.append(order)
        return ChainStep("btc.psbt_created", {}, recorded=True)


def _books(amount: int = 300, destination: str = COLD, release: bool = True
           ) -> tuple[Ledger, str]:
    """A ledger whose vault has a policy and one transfer proposal, approved and (unless
    `release` is false) released by the workflow; its digest."""
    ledger = Ledger.open("sqlite:///:memory:")
    workflow = make_workflow(ledger, btc_policy(VAULT))
    status = propose(workflow, amount, destination, vault=VAULT)
    approve(workflow, status, "central-bank", "vasp-regulator")
    if release:
        workflow.release(status.digest, SelfRecordingChain(), actor="treasury-ops")
    return ledger, status.digest


def _deposit(txid: str, amount: int, block: str = BLOCK, vout: int = 0) -> tuple[str, dict]:  # type: ignore[type-arg]
    return ("btc.deposit", {"vault_id": VAULT, "txid": txid, "blockhash": block, "height": 101,
                            "confirmations": 1, "delta_sats": amount, "amount_sats": amount,
                            "outputs": [{"vout": vout, "address": "x", "amount_sats": amount}]})


def _transfer(spent: str, amount_in: int, pay: int, fee: int, broadcast: bool = True,
              confirmed_block: str | None = BLOCK, digest: str = NEVER, txid: str = SPEND,
              destination: str = COLD) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    change = amount_in - pay - fee
    base = {"vault_id": VAULT, "txid": txid, "proposal_digest": digest}
    built = {"network": "regtest", "policy_version": 1, "psbt_sha256": "33" * 32,
             "psbt_base64": "cHNidP8=", "input_sats": amount_in, "change_sats": change,
             "fee_rate_msat_vb": 1000, "fee_rate_source": "test"}
    items = [("btc.psbt_created", {**base, **built, "amount_sats": pay, "fee_sats": fee,
                                   "inputs": [{"txid": spent, "vout": 0, "amount_sats": amount_in}],
                                   "outputs": [{"address": destination, "amount_sats": pay,
                                                "change": False},
                                               {"address": CHANGE, "amount_sats": change,
                                                "change": True}]})]
    if broadcast:
        items.append(("btc.broadcast", {**base, "amount_sats": pay, "fee_sats": fee,
                                        "psbt_sha256": "33" * 32}))
    if confirmed_block:
        items.append(("btc.confirmed", {**base, "blockhash": confirmed_block, "height": 102,
                                        "confirmations": 1, "delta_sats": -(pay + fee),
                                        "amount_sats": pay, "fee_sats": fee, "outputs": []}))
    return items


def _view(items: list[tuple[str, dict]], ledger: Ledger | None = None):  # type: ignore[no-untyped-def,type-arg]
    ledger = ledger or Ledger.open("sqlite:///:memory:")
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


def _paying(pay: int = 300, change: int = 690, fee: int = 10, txid: str = SPEND,
            destination: str = COLD) -> dict[str, ChainTransaction]:
    """The chain's view of a transfer: `pay` to `destination`, `change` back to the vault."""
    return {txid: ChainTransaction(txid, fee, ((destination, pay), (CHANGE, change)),
                                   frozenset({1}))}


def test_clean_books_have_no_findings() -> None:
    ledger, digest = _books()
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, digest=digest)], ledger)
    result = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)], transactions=_paying()))
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


def test_spend_found_on_chain_without_any_record_is_unauthorised() -> None:
    result = reconcile(_view([_deposit(T1, 1000)]),
                       _chain([Coin(THIEF, 1, 400, 102)], spenders={(T1, 0): THIEF}))
    _check(result)
    (finding,) = result.findings
    assert (finding.kind, finding.severity, finding.txid) == ("unauthorised_spend", "critical",
                                                              THIEF)
    assert finding.amount_sats == 600 and finding.difference_sats == -600
    assert "no proposal in the ledger names this transaction" in finding.detail
    assert result.summary.status == "critical"


def test_unauthorised_spend_with_unknown_spender() -> None:
    result = reconcile(_view([_deposit(T1, 1000)]), _chain([]))
    _check(result)
    (finding,) = result.findings
    assert finding.kind == "unauthorised_spend" and finding.txid is None
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
    assert finding.kind == "unauthorised_spend" and finding.difference_sats == 0
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
    ledger, digest = _books()
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, confirmed_block=None,
                                                 digest=digest)], ledger)
    pending = reconcile(view, _chain([Coin(T1, 0, 1000, 101)], mempool=frozenset({SPEND})))
    missing = reconcile(view, _chain([Coin(T1, 0, 1000, 101)]))
    landed = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)], spenders={(T1, 0): SPEND},
                                    transactions=_paying()))
    for result in (pending, missing, landed):
        _check(result)
    assert [f.kind for f in pending.findings] == ["transfer_unconfirmed"]
    assert [f.kind for f in missing.findings] == ["transfer_missing"]
    assert [f.kind for f in landed.findings] == ["confirmation_unrecorded"]
    assert landed.findings[0].difference_sats == -310


def test_amount_and_fee_mismatch() -> None:
    ledger, digest = _books()
    view = _view([_deposit(T1, 1000), _deposit(T3, 80),
                  *_transfer(T1, 1000, 300, 10, digest=digest)], ledger)
    result = reconcile(view, _chain([Coin(SPEND, 1, 690, 102), Coin(T3, 0, 81, 101)],
                                    transactions=_paying(pay=298, fee=12)))
    _check(result)
    kinds = sorted(f.kind for f in result.findings)
    # paying 298 where 300 was approved is also not what the workflow released
    assert kinds == ["amount_mismatch", "amount_mismatch", "fee_mismatch", "fee_mismatch",
                     "unauthorised_spend"]
    assert result.summary.difference_sats == 1
    assert result.summary.status == "critical"


# ------------------------------------------------------------- authorisation rules
def _only_unauthorised(result) -> Any:  # type: ignore[no-untyped-def]
    _check(result)
    (finding,) = result.findings
    assert (finding.kind, finding.severity, finding.txid) == ("unauthorised_spend", "critical",
                                                              SPEND)
    assert result.summary.status == "critical"
    return finding


def test_a_hand_written_transfer_with_a_digest_never_proposed_is_unauthorised() -> None:
    """PSBT built, broadcast and confirmed by the Bitcoin layer: not enough on its own."""
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, digest=NEVER)])
    result = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)], transactions=_paying()))
    finding = _only_unauthorised(result)
    assert finding.difference_sats == 0 and result.summary.difference_sats == 0
    assert finding.amount_sats == 310 and finding.ledger_seqs == (3,)
    assert f"claims proposal {NEVER[:16]}, which the workflow never recorded" in finding.detail


def test_a_proposal_approved_but_never_released_does_not_authorise() -> None:
    ledger, digest = _books(release=False)
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, digest=digest)], ledger)
    result = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)], transactions=_paying()))
    finding = _only_unauthorised(result)
    assert f"proposal {digest[:16]} was never released by the workflow" in finding.detail


def test_a_proposal_released_for_other_outputs_does_not_authorise() -> None:
    """Released for 300 to COLD; the PSBT and the chain pay 300 to SETTLEMENT."""
    ledger, digest = _books()
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, digest=digest,
                                                 destination=SETTLEMENT)], ledger)
    result = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)],
                                    transactions=_paying(destination=SETTLEMENT)))
    finding = _only_unauthorised(result)
    assert "outputs differ" in finding.detail
    assert f"paid but not approved [300 to {SETTLEMENT}]" in finding.detail
    assert f"approved but not paid [300 to {COLD}]" in finding.detail


def test_change_must_really_go_back_to_the_vault() -> None:
    """The recorded PSBT calls an output change; the chain says it pays someone else."""
    ledger, digest = _books()
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, digest=digest)], ledger)
    stolen = {SPEND: ChainTransaction(SPEND, 10, ((COLD, 300), (CHANGE, 690)), frozenset())}
    result = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)], transactions=stolen))
    finding = _only_unauthorised(result)
    assert f"paid but not approved [690 to {CHANGE}]" in finding.detail


def test_one_release_authorises_one_transaction() -> None:
    """A second transaction claiming the same released proposal is not covered by it."""
    ledger, digest = _books()
    other = "f6" * 32
    view = _view([_deposit(T1, 1000), _deposit(T2, 1000),
                  *_transfer(T1, 1000, 300, 10, digest=digest, txid=other),
                  *_transfer(T2, 1000, 300, 10, digest=digest)], ledger)
    chain = _chain([Coin(SPEND, 1, 690, 102), Coin(other, 1, 690, 102)],
                   transactions={**_paying(), **_paying(txid=other)})
    result = reconcile(view, chain)
    finding = _only_unauthorised(result)
    assert f"binds proposal {digest} to transaction {other}" in finding.detail


def test_a_released_spend_whose_broadcast_was_never_recorded_is_authorised() -> None:
    """A crash between sending and recording the broadcast: the workflow's release and the
    outputs are the evidence, not the broadcast record."""
    ledger, digest = _books()
    recorded = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, digest=digest,
                                                     broadcast=False)], ledger)
    result = reconcile(recorded, _chain([Coin(SPEND, 1, 690, 102)], transactions=_paying()))
    _check(result)
    assert result.findings == () and result.summary.status == "ok"
    ledger, digest = _books()
    unrecorded = _view([_deposit(T1, 1000), *_transfer(
        T1, 1000, 300, 10, digest=digest, broadcast=False, confirmed_block=None)], ledger)
    result = reconcile(unrecorded, _chain([Coin(SPEND, 1, 690, 102)],
                                          spenders={(T1, 0): SPEND}, transactions=_paying()))
    _check(result)
    assert [f.kind for f in result.findings] == ["confirmation_unrecorded"]
    assert result.summary.status == "discrepancy"


def test_an_unrecorded_confirmation_of_an_unauthorised_transfer_is_critical() -> None:
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, confirmed_block=None)])
    result = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)], spenders={(T1, 0): SPEND},
                                    transactions=_paying()))
    finding = _only_unauthorised(result)
    assert finding.difference_sats == result.summary.difference_sats == -310


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


def test_judge_compares_vault_asset_and_outputs_as_a_multiset() -> None:
    """The matching rule on its own: hand-made releases, no ledger."""
    from reserve.reconcile.releases import Release, Releases, judge

    digest = "cd" * 32
    release = Release(digest, VAULT, "bip122:x", "BTC", ((COLD, 300), (COLD, 300), (SETTLEMENT, 5)),
                      "signing", released_seq=7)
    releases = Releases({digest: release})

    def verdict(paid: list[tuple[str | None, int]], vault: str = VAULT, asset: str = "BTC",
                claimed: str | None = digest) -> str:
        return judge(releases, txid=SPEND, claimed=claimed, vault=vault, asset=asset, paid=paid)

    exact = [(SETTLEMENT, 5), (COLD.upper(), 300), (COLD, 300)]  # any order; bech32 any case
    assert verdict(exact) == ""
    assert "outputs differ" in verdict([(COLD, 300), (SETTLEMENT, 5)])  # one 300 short
    assert "outputs differ" in verdict([*exact, (None, 0)])  # an OP_RETURN is paid out too
    assert f"is for vault {VAULT}, not v2" in verdict(exact, vault="v2")
    assert "moves BTC, not ETH" in verdict(exact, asset="ETH")
    assert verdict(exact, claimed=None) == "no proposal in the ledger names this transaction"
    bound = Releases({digest: Release(**{**release.__dict__, "txid": THIEF})})
    assert "broadcast proposal" in judge(bound, txid=SPEND, claimed=digest, vault=VAULT,
                                         asset="BTC", paid=exact)
    unreleased = Releases({digest: Release(**{**release.__dict__, "released_seq": None,
                                              "state": "approved"})})
    assert "never released by the workflow (it is approved)" in judge(
        unreleased, txid=SPEND, claimed=digest, vault=VAULT, asset="BTC", paid=exact)


def test_a_workflow_replay_that_stops_is_named_in_the_finding() -> None:
    """An entry the projection refuses ends the replay: later proposals count as unknown,
    and the finding says where and why the workflow's evidence stopped."""
    ledger = Ledger.open("sqlite:///:memory:")
    ledger.append("proposal.state", "intruder", {"vault": VAULT, "digest": NEVER,
                                                 "from": "releasable", "to": "signing",
                                                 "reason": "forged"})
    view = _view([_deposit(T1, 1000), *_transfer(T1, 1000, 300, 10, digest=NEVER)], ledger)
    assert "stop replaying at entry 0" in view.releases.stopped
    result = reconcile(view, _chain([Coin(SPEND, 1, 690, 102)], transactions=_paying()))
    finding = _only_unauthorised(result)
    assert "transition of unknown proposal" in finding.detail
