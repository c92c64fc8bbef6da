"""The statement's pure core: flow classification, its arithmetic (property tests), the
wallet registry's checks, and a transfer's declared class in the proposal digest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.errors import EventError, StatementError, WorkflowError
from reserve.events import decode
from reserve.proposals import proposal as proposal_module
from reserve.proposals.proposal import Output, Proposal, TransferBody
from reserve.statement.flows import ChainTx, Decided, account, classify, consolidate
from reserve.statement.wallets import PublicWallet, check_new
from tests.support.workflow import COLD, T0

WALLETS = ("national", "miner", "seized")
VAULT = "wsh(sortedmulti(1,tpubD6NzVbkrYhZ4WaWSyoBvQwbpLkojyoTZPRsgXELWz3Popb3qkjcJyJUGLnL4qHHoQvao8ESaAstxYSnhyswJ76uZPStJRJCTKvosUCJZL5B/0/*))#x"


def tx(inputs: list[tuple[str | None, int]], outputs: list[tuple[str | None, int]],
       coinbase: bool = False, txid: str = "aa" * 32) -> ChainTx:
    return ChainTx(txid, 200, coinbase, tuple(inputs), tuple(outputs))


def figures(movements: list) -> dict[tuple[str, str], int]:  # type: ignore[type-arg]
    return {(m.wallet, m.flow_class): m.sats for m in movements}


def test_coinbase_to_a_registered_wallet_is_mining() -> None:
    found = classify(tx([], [("miner", 312_500_000), (None, 0)], coinbase=True))
    assert figures(found) == {("miner", "mining"): 312_500_000}
    assert found[0].evidence == "coinbase"


def test_outside_inflow_is_unattributed_until_attributed() -> None:
    inflow = tx([(None, 5_000_000)], [("seized", 4_000_000), (None, 990_000)])
    assert figures(classify(inflow)) == {("seized", "unattributed"): 4_000_000}
    attributed = {"seized": Decided("seizure", "attribution 7 confirmed 8")}
    (movement,) = classify(inflow, attributed=attributed)
    assert (movement.flow_class, movement.evidence) == ("seizure", "attribution 7 confirmed 8")


def test_consolidation_declared_purchase_is_internal_with_the_fee_charged() -> None:
    # miner pays 3 BTC into the national wallet, change back to itself, 1,000 sat fee
    consolidation = tx([("miner", 500_000_000)], [("national", 300_000_000),
                                                   ("miner", 199_999_000)])
    found = classify(consolidation, declared=Decided("purchase", "proposal ab"))
    assert figures(found) == {("miner", "fee"): -1_000,
                              ("miner", "internal_transfer"): -300_000_000,
                              ("national", "internal_transfer"): 300_000_000}
    assert "purchase" not in {m.flow_class for m in found}


def test_outflow_takes_the_declared_class_and_internal_is_never_external() -> None:
    sale = tx([("national", 100_000_000)], [(None, 60_000_000), ("national", 39_990_000)])
    assert figures(classify(sale, declared=Decided("sale", "proposal cd"))) == {
        ("national", "fee"): -10_000, ("national", "sale"): -60_000_000}
    # a transfer that declared itself internal but paid someone outside is unattributed
    assert figures(classify(sale, declared=Decided("internal_transfer", "proposal cd"))) == {
        ("national", "fee"): -10_000, ("national", "unattributed"): -60_000_000}


def test_consolidated_account_eliminates_internal_transfers() -> None:
    moves = [*classify(tx([], [("miner", 50)], coinbase=True, txid="01" * 32)),
             *classify(tx([("miner", 50)], [("national", 45)], txid="02" * 32))]
    wallets, public = consolidate({"miner": 0, "national": 10}, moves)
    assert wallets["miner"].closing_sats == 0 and wallets["national"].closing_sats == 55
    assert public.to_json() == {"opening_sats": 10, "closing_sats": 55, "flows": [
        {"class": "mining", "sats": 50, "txids": ["01" * 32]},
        {"class": "fee", "sats": -5, "txids": ["02" * 32]}]}


owners = st.one_of(st.none(), st.sampled_from(WALLETS))
coins = st.tuples(owners, st.integers(min_value=0, max_value=21 * 10**14))


@st.composite
def transactions(draw: st.DrawFn) -> ChainTx:
    coinbase = draw(st.booleans())
    inputs = [] if coinbase else draw(st.lists(coins, min_size=1, max_size=5))
    total = sum(s for _, s in inputs) if inputs else draw(st.integers(0, 10**10))
    owners_out = draw(st.lists(owners, min_size=1, max_size=5))
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=len(owners_out),
                                max_size=len(owners_out))))
    # outputs take at most what the inputs hold: the rest is the fee
    amounts = [b - a for a, b in zip([0, *cuts], cuts, strict=False)]
    return ChainTx(draw(st.text("0123456789abcdef", min_size=64, max_size=64)), 1, coinbase,
                   tuple(inputs), tuple(zip(owners_out, amounts, strict=True)))


classes = st.sampled_from(["purchase", "sale", "seizure", "donation", "internal_transfer"])


@settings(max_examples=300, deadline=None)
@given(st.lists(transactions(), max_size=12),
       st.dictionaries(st.sampled_from(WALLETS), st.integers(0, 10**12)),
       st.one_of(st.none(), classes))
def test_flows_add_up_to_the_change_of_stock(txs: list[ChainTx], openings: dict[str, int],
                                             declared: str | None) -> None:
    """Per wallet every class sums to its net change; consolidated, internal transfers
    cancel out and the other classes sum exactly to closing minus opening."""
    openings = {name: openings.get(name, 0) for name in WALLETS}
    movements = [m for t in txs for m in classify(
        t, Decided(declared, "p") if declared else None)]
    wallets, public = consolidate(openings, movements)
    for name in WALLETS:
        change = sum(s for t in txs for o, s in t.outputs if o == name) - \
            sum(s for t in txs for o, s in t.inputs if o == name)
        assert wallets[name].closing_sats - wallets[name].opening_sats == change
        assert sum(s for _, s, _ in wallets[name].flows) == change
    assert "internal_transfer" not in {c for c, _, _ in public.flows}
    assert sum(s for _, s, _ in public.flows) == public.closing_sats - public.opening_sats
    assert public.closing_sats == sum(w.closing_sats for w in wallets.values())
    assert all(s <= 0 for c, s, _ in public.flows if c == "fee")
    assert all(s >= 0 for c, s, _ in public.flows if c == "mining")


def test_account_refuses_internal_transfers_that_do_not_cancel() -> None:
    from reserve.statement.flows import Movement

    with pytest.raises(ValueError, match="do not cancel"):
        account(0, [Movement("01" * 32, 1, "a", "internal_transfer", 5)], consolidated=True)


def wallet(**changes: object) -> PublicWallet:
    fields: dict[str, object] = dict(name="state-miner", institution="State Mining Co.",
                                     role="mining payout", custody="watched", chain="bitcoin",
                                     network="regtest", descriptors=(VAULT,))
    fields.update(changes)
    return PublicWallet(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "Bad Name"}, "wallet name"), ({"custody": "held"}, "custody"),
    ({"chain": "ethereum"}, "chain"), ({"descriptors": ()}, "descriptors"),
    ({"descriptors": (VAULT, VAULT)}, "twice"), ({"range_end": -1}, "range_end"),
    ({"institution": ""}, "institution")])
def test_wallet_refusals(changes: dict[str, object], message: str) -> None:
    with pytest.raises(StatementError, match=message):
        wallet(**changes)


def test_registry_refuses_a_second_wallet_of_the_same_name_or_descriptor() -> None:
    with pytest.raises(StatementError, match="registered already"):
        check_new(wallet(), [wallet(descriptors=("addr(bcrt1qxyz)",))])
    with pytest.raises(StatementError, match="for wallet 'state-miner'"):
        check_new(wallet(name="other"), [wallet()])
    event = wallet().event()
    assert PublicWallet.of(decode(event.KIND, event.to_payload())) == wallet()
    with pytest.raises(EventError, match="range_end"):
        decode(event.KIND, {**event.to_payload(), "range_end": "9"})


def proposal(flow_class: str | None) -> Proposal:
    return Proposal(vault="national-btc", network="regtest",
                    chain="bip122:0f9188f13cb7b2c71f2a335e3a4fc328", policy_version=1,
                    proposer="treasury-ops", purpose="cold storage", reference="R-1",
                    created_at=T0, expires_at=T0 + timedelta(days=7),
                    body=TransferBody("BTC", (Output(COLD, 150_000_000),), 20_000,
                                      flow_class=flow_class))


def test_declared_class_is_in_the_digest_only_when_given() -> None:
    plain, sale = proposal(None), proposal("sale")
    assert "flow_class" not in plain.document() and sale.document()["flow_class"] == "sale"
    assert plain.digest != sale.digest != proposal("donation").digest
    again = proposal_module.from_document(sale.document())
    assert again == sale and again.digest == sale.digest
    assert proposal_module.from_document(plain.document()).digest == plain.digest
    with pytest.raises(WorkflowError, match="cannot be declared"):
        proposal("mining")
    with pytest.raises(WorkflowError, match="flow_class must be text"):
        proposal_module.from_document({**plain.document(), "flow_class": None})
    with pytest.raises(WorkflowError, match="unexpected keys"):
        proposal_module.from_document({**proposal_module.from_document(
            plain.document()).document(), "action": "vault.unfreeze", "flow_class": "sale"})
