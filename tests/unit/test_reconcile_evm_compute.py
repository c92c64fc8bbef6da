"""The pure EVM reconciliation core: itemised findings always add up to the difference,
and every Safe execution or transfer out must carry out a proposal the workflow released."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from reserve.events.chain_evm import EvmDeposit, EvmExecuted, EvmSafeTxCreated
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.reconcile.evm_compute import EVMChainView, Movement, SafeExecution, reconcile
from reserve.transfers.chain import ChainStep, ReleaseOrder
from tests.support.workflow import EVM_POLICY, approve, propose, workflow_service
from wallets.evm import executor
from wallets.evm.transfer import ApprovedEVMTransfer, to_safe_tx

SAFE = "0x" + "5a" * 20
GOOD, GONE = "0x" + "11" * 32, "0x" + "22" * 32
WORKFLOW_VAULT, CHAIN_ID = "reserve-safe", 31337  # config/policies/reserve-evm.toml
PAYEE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # a destination of that policy
OTHER_PAYEE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TOKEN = "0x" + "70" * 20
NEVER = "ab" * 32
MILLI = 10**15


@dataclass(frozen=True)
class E:  # the attributes of a ledger Entry the core reads
    seq: int
    kind: str
    payload: dict[str, Any]
    time: str = "2026-01-05T09:00:00Z"
    actor: str = "test"


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


def test_an_execution_the_ledger_recorded_without_a_release_is_unauthorised() -> None:
    """Before, a recorded `evm.executed` was enough; now it is only a pointer."""
    entries = [deposit(0, 10**20), executed(1, 3 * 10**18)]
    run = SafeExecution("0xe1", "0x" + "33" * 32, 6, ("ETH", "0x" + "88" * 20, 3 * 10**18))
    chain = view(10**20 - 3 * 10**18, [Movement("1:0xd0:0", "0xd0", 10**20, 5)],
                 [Movement("1:0xe1:exec", "0xe1", 3 * 10**18, 6)])
    result = reconcile(entries, EVMChainView(**{**chain.__dict__, "executed": (run,)}))
    (finding,) = result.findings
    assert (finding.kind, finding.severity, finding.txid) == ("unauthorised_spend", "critical",
                                                              "0xe1")
    assert finding.difference_wei == 0 and result.summary.difference_wei == 0
    assert f"claims proposal {'44' * 8}" in finding.detail
    assert result.summary.status == "critical"
    assert result.summary.to_json()["ledger"] == str(97 * 10**18)


# ------------------------------------------------------------- released by the workflow
class FakeSafe:
    """The EVM layer's `prepare` as the workflow sees it: the Safe transaction for the
    order (nonce 0), returned for the workflow to record in its release batch."""

    def prepare(self, order: ReleaseOrder) -> ChainStep:
        (output,) = order.outputs
        transfer = ApprovedEVMTransfer(order.proposal_digest, order.policy_version,
                                       order.vault_id, CHAIN_ID, SAFE, "ETH",
                                       output.destination, output.amount, 0)
        return ChainStep(EvmSafeTxCreated.KIND, executor.proposal_payload(
            transfer, to_safe_tx(transfer), bytes.fromhex("33" * 32)))


def released(amount: int = 500 * MILLI, release: bool = True) -> tuple[Ledger, str]:
    """A ledger with the reserve Safe's policy and one ETH transfer proposal to PAYEE,
    approved and (unless `release` is false) released by the workflow; its digest."""
    ledger = Ledger.open("sqlite:///:memory:")
    workflow = workflow_service(ledger, loader.load_file(EVM_POLICY))
    status = propose(workflow, amount, PAYEE, vault=WORKFLOW_VAULT, asset="ETH", fee_max=0)
    approve(workflow, status, "central-bank", "vasp-regulator")
    if release:
        workflow.release(status.digest, FakeSafe(), actor="treasury-ops")
    return ledger, status.digest


def record(ledger: Ledger, kind: str, payload: dict[str, Any]) -> None:
    ledger.append(kind, "service:evm", payload)


def funded(ledger: Ledger) -> None:
    record(ledger, "evm.deposit", EvmDeposit(
        key=f"{CHAIN_ID}:0xd0:0", chain_id=CHAIN_ID, vault=WORKFLOW_VAULT, safe=SAFE,
        asset="ETH", sender="0x" + "77" * 20, amount_wei=10**19, tx_hash="0xd0", log_index=0,
        block_number=5, block_hash=GOOD).to_payload())


def ran(ledger: Ledger, digest: str, amount: int, to: str = PAYEE, safe_tx: str = "33" * 32,
        tx_hash: str = "0xe1") -> None:
    record(ledger, "evm.executed", EvmExecuted(
        safe_tx_hash="0x" + safe_tx, digest=digest, vault=WORKFLOW_VAULT, chain_id=CHAIN_ID,
        safe=SAFE, asset="ETH", to=to, amount_wei=amount, nonce=0, tx_hash=tx_hash,
        block_number=6, block_hash=GOOD, success=True, gas_used=21000).to_payload())


def safe_view(amount: int, to: str = PAYEE, safe_tx: str = "33" * 32,
              recorded: bool = True) -> EVMChainView:
    """The chain after the Safe paid `amount` wei to `to` in tx 0xe1."""
    run = SafeExecution("0xe1", "0x" + safe_tx, 6, ("ETH", to, amount))
    return EVMChainView(WORKFLOW_VAULT, "ETH", CHAIN_ID, SAFE, 10, "0x" + "ff" * 32,
                        10**19 - amount, (Movement(f"{CHAIN_ID}:0xd0:0", "0xd0", 10**19, 5),),
                        (Movement(f"{CHAIN_ID}:0xe1:exec", "0xe1", amount, 6),), ("0xe1",),
                        {GOOD: True}, (run,), ("ETH", TOKEN))


def test_clean_with_a_released_and_recorded_execution() -> None:
    ledger, digest = released()
    funded(ledger)
    ran(ledger, digest, 500 * MILLI)
    result = reconcile(list(ledger.entries()), safe_view(500 * MILLI))
    assert result.findings == () and result.summary.status == "ok"


def test_a_released_execution_not_yet_recorded_is_only_unrecorded() -> None:
    ledger, _digest = released()
    funded(ledger)
    result = reconcile(list(ledger.entries()), safe_view(500 * MILLI))
    (finding,) = result.findings
    assert (finding.kind, finding.severity) == ("confirmation_unrecorded", "medium")
    assert finding.difference_wei == result.summary.difference_wei == -500 * MILLI


def test_a_made_up_execution_is_unauthorised() -> None:
    ledger, _digest = released()
    funded(ledger)
    result = reconcile(list(ledger.entries()), safe_view(2 * 10**18, to=OTHER_PAYEE,
                                                         safe_tx="99" * 32))
    (finding,) = result.findings
    assert (finding.kind, finding.txid) == ("unauthorised_spend", "0xe1")
    assert finding.difference_wei == -2 * 10**18
    assert "no proposal in the ledger names this transaction" in finding.detail


def test_an_executor_record_for_a_digest_never_proposed_is_unauthorised() -> None:
    ledger, _digest = released()
    funded(ledger)
    ran(ledger, NEVER, 500 * MILLI, safe_tx="99" * 32)
    result = reconcile(list(ledger.entries()), safe_view(500 * MILLI, safe_tx="99" * 32))
    (finding,) = result.findings
    assert finding.kind == "unauthorised_spend" and finding.difference_wei == 0
    assert f"claims proposal {NEVER[:16]}, which the workflow never recorded" in finding.detail


def test_released_for_other_outputs_or_another_safe_transaction_is_unauthorised() -> None:
    ledger, digest = released()
    funded(ledger)
    ran(ledger, digest, 600 * MILLI)
    result = reconcile(list(ledger.entries()), safe_view(600 * MILLI))
    (finding,) = result.findings
    assert finding.kind == "unauthorised_spend" and "outputs differ" in finding.detail
    ledger, digest = released()
    funded(ledger)
    ran(ledger, digest, 500 * MILLI, safe_tx="98" * 32)  # the same payment, a second time
    result = reconcile(list(ledger.entries()), safe_view(500 * MILLI, safe_tx="98" * 32))
    (finding,) = result.findings
    assert finding.kind == "unauthorised_spend"
    assert f"as Safe transaction 0x{'33' * 32}, not 0x{'98' * 32}" in finding.detail


def test_an_approved_proposal_not_released_does_not_authorise() -> None:
    ledger, digest = released(release=False)
    funded(ledger)
    ran(ledger, digest, 500 * MILLI)
    result = reconcile(list(ledger.entries()), safe_view(500 * MILLI))
    (finding,) = result.findings
    assert finding.kind == "unauthorised_spend" and "never released" in finding.detail


def test_an_execution_that_moves_nothing_readable_and_a_token_pulled_out() -> None:
    """A Safe execution that is no transfer (an owner change, say) is judged too; a token
    transfer out of the Safe with no execution behind it is unauthorised."""
    ledger, _digest = released()
    funded(ledger)
    owners = SafeExecution("0xe7", "0x" + "77" * 32, 7, None, "not a plain transfer")
    base = safe_view(0)
    chain = EVMChainView(**{**base.__dict__, "balance_wei": 10**19, "debits": (),
                            "executions": ("0xe7",), "executed": (owners,)})
    result = reconcile(list(ledger.entries()), chain)
    (finding,) = result.findings
    assert (finding.kind, finding.txid, finding.difference_wei) == ("unauthorised_spend",
                                                                     "0xe7", 0)
    assert "not a plain transfer" in finding.detail
    token = EVMChainView(**{**chain.__dict__, "asset": TOKEN, "balance_wei": 0, "credits": (),
                            "debits": (Movement("1:0xf1:3", "0xf1", 5, 8),)})
    result = reconcile(list(ledger.entries()), token)
    kinds = sorted((f.kind, f.txid) for f in result.findings)
    assert ("unauthorised_spend", "0xf1") in kinds
    assert all(f.txid != "0xe7" for f in result.findings)  # reported once, on the ETH row


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


def test_the_safe_configuring_itself_is_not_a_movement() -> None:
    """A value-less call of the Safe to itself (the deployment's `setGuard`) moves nothing
    out, so it needs no transfer proposal."""
    ledger, _digest = released()
    funded(ledger)
    guard = SafeExecution("0xe8", "0x" + "88" * 32, 4, None, "not a plain transfer",
                          configures=True)
    base = safe_view(0)
    chain = EVMChainView(**{**base.__dict__, "balance_wei": 10**19, "debits": (),
                            "executions": ("0xe8",), "executed": (guard,)})
    result = reconcile(list(ledger.entries()), chain)
    assert result.findings == () and result.summary.status == "ok"
