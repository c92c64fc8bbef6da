"""A reorg entry naming a confirmed transfer takes it back to `broadcast` (derived, replayable).

The chain layer's compensating `btc.reorg` entry is the only thing that can undo
`confirmed`: a recorded `proposal.state` confirmed -> broadcast is refused like any other
illegal move, and a reorg that does not concern the proposal's confirmation changes nothing.
The real-node version of the story is tests/nodes/test_workflow_reorg.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from reserve.errors import WorkflowError
from reserve.events.chain_btc import BtcConfirmed
from reserve.ledger import Ledger
from reserve.proposals.state import reversal_target
from reserve.transfers.projection import Projection, ProposalStatus
from reserve.transfers.service import WorkflowService
from tests.support.workflow import SETTLEMENT, T0, FakeChain, approve, plain_copy, propose

LATER = T0 + timedelta(hours=1)


def _confirmed(service: WorkflowService, chain: FakeChain) -> ProposalStatus:
    status = propose(service, 5_000_000, SETTLEMENT)
    approve(service, status, "central-bank", "vasp-regulator")
    service.release(status.digest, chain, "treasury-ops", now=LATER)
    for signer in ("finance-ministry", "central-bank", "crypto-council"):
        service.add_signature_share(status.digest, chain, signer, "share", now=LATER)
    service.broadcast(status.digest, chain, "treasury-ops", now=LATER)
    chain.depth = 1
    service.check_confirmation(status.digest, chain, now=LATER)
    confirmed = service.status(status.digest)
    assert confirmed.state == "confirmed"
    return confirmed


def _reorg(status: ProposalStatus, ledger: Ledger, **changes: Any) -> dict[str, Any]:
    confirmed = [e for e in ledger.entries(kinds=["btc.confirmed"])
                 if BtcConfirmed.of(e).digest == status.digest][-1]
    payload = {"vault_id": status.proposal.vault, "txid": status.txid,
               "blockhash": "00" * 32, "height": 101, "reverses_seq": confirmed.seq,
               "reverses_kind": "btc.confirmed", "delta_sats": 5_000_000,
               "reason": "block no longer on the best chain",
               "proposal_digest": status.digest, **changes}
    ledger.append("btc.reorg", "btc-watcher", payload, now=LATER)
    return payload


def test_reorg_returns_a_confirmed_transfer_to_broadcast_and_it_confirms_again(
        service: WorkflowService, ledger: Ledger) -> None:
    chain = FakeChain()
    status = _confirmed(service, chain)
    _reorg(status, ledger)
    back = service.status(status.digest)
    assert back.state == "broadcast" and back.txid == status.txid
    assert back.chain_steps[-1].kind == "btc.reorg"
    reason = back.changes[-1].reason
    assert back.changes[-1].seq == ledger.size() - 1
    assert "left the best chain" in reason and "awaits re-confirmation" in reason
    assert status.txid in reason
    # The workflow re-checks it like any broadcast transfer and records `confirmed` again.
    assert service.check_confirmation(status.digest, chain, now=LATER) == 1
    again = service.status(status.digest)
    assert [c.state for c in again.changes][-3:] == ["confirmed", "broadcast", "confirmed"]
    replayed = Projection()
    replayed.apply_all(ledger.entries())
    assert replayed.snapshot() == service.sync().snapshot()


def test_a_recorded_transition_cannot_undo_confirmed(service: WorkflowService,
                                                     ledger: Ledger) -> None:
    status = _confirmed(service, FakeChain())
    forged = {"vault": status.proposal.vault, "digest": status.digest,
              "from": "confirmed", "to": "broadcast", "reason": "forged"}
    size = ledger.size()
    with pytest.raises(WorkflowError, match=r"illegal transition.*confirmed -> broadcast"):
        ledger.append("proposal.state", "workflow", forged, now=LATER)  # read models refuse
    assert ledger.size() == size
    with plain_copy(ledger) as copy:  # and a replay of a ledger that holds it anyway
        copy.append("proposal.state", "workflow", forged, now=LATER)
        with pytest.raises(WorkflowError, match=r"illegal transition.*confirmed -> broadcast"):
            Projection().apply_all(copy.entries())


@pytest.mark.parametrize(("changes", "why"), [
    ({"reverses_kind": "btc.deposit"}, "a deposit's reorg"),
    ({"txid": "cd" * 32}, "another transaction"),
    ({"proposal_digest": "ef" * 32}, "names no known proposal"),
])
def test_reorgs_that_do_not_concern_the_confirmation_change_nothing(
        service: WorkflowService, ledger: Ledger, changes: dict[str, Any], why: str) -> None:
    status = _confirmed(service, FakeChain())
    _reorg(status, ledger, **changes)
    assert service.status(status.digest).state == "confirmed", why


def test_only_a_transfer_confirmation_is_reversible() -> None:
    assert reversal_target("transfer", "confirmed") == "broadcast"
    for source in ("proposed", "approved", "releasable", "signing", "broadcast", "failed"):
        assert reversal_target("transfer", source) is None
    assert reversal_target("destination.add", "applied") is None
