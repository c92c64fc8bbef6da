"""Proposal digests, approval signatures and the state machine table."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.errors import ApprovalError, WorkflowError
from reserve.policy.testkeys import private_key_of, public_key_of
from reserve.proposals import approval as approval_module
from reserve.proposals import proposal as proposal_module
from reserve.proposals.approval import signing_message
from reserve.proposals.proposal import (
    DOMAIN,
    DestinationBody,
    Output,
    PolicyChangeBody,
    Proposal,
    TransferBody,
    UnfreezeBody,
)
from reserve.proposals.state import STATES, TERMINAL, allowed, check_transition
from tests.support.workflow import COLD, SETTLEMENT, T0, btc_document, vote


def make(**changes: object) -> Proposal:
    fields: dict[str, object] = dict(
        vault="national-btc", network="regtest", chain="bip122:0f9188f13cb7b2c71f2a335e3a4fc328",
        policy_version=1, proposer="treasury-ops", purpose="cold storage", reference="R-1",
        created_at=T0, expires_at=T0 + timedelta(days=7),
        body=TransferBody("BTC", (Output(COLD, 150_000_000),), 20_000))
    fields.update(changes)
    return Proposal(**fields)  # type: ignore[arg-type]


def test_digest_is_sha256_over_domain_separated_rfc8785() -> None:
    proposal = make()
    document = proposal.document()
    assert document["outputs"] == [{"destination": COLD, "amount": "150000000"}]
    assert document["fee_max"] == "20000"
    assert document["created_at"] == "2026-01-05T09:00:00Z"
    expected = hashlib.sha256(DOMAIN + bytes(rfc8785.dumps(document))).digest()
    assert proposal.digest == expected


CHANGES = [
    ("network", {"network": "signet"}),
    ("chain id", {"chain": "bip122:000000000933ea01ad0ee984209779ba"}),
    ("vault", {"vault": "other-vault"}),
    ("policy version", {"policy_version": 2}),
    ("proposer", {"proposer": "someone-else"}),
    ("purpose", {"purpose": "cold storage!"}),
    ("reference", {"reference": "R-2"}),
    ("expiry", {"expires_at": T0 + timedelta(days=6)}),
    ("created", {"created_at": T0 + timedelta(seconds=1)}),
    ("destination", {"body": TransferBody("BTC", (Output(SETTLEMENT, 150_000_000),), 20_000)}),
    ("amount", {"body": TransferBody("BTC", (Output(COLD, 150_000_001),), 20_000)}),
    ("fee cap", {"body": TransferBody("BTC", (Output(COLD, 150_000_000),), 20_001)}),
    ("asset", {"body": TransferBody("LBTC", (Output(COLD, 150_000_000),), 20_000)}),
    ("split outputs", {"body": TransferBody("BTC", (Output(COLD, 75_000_000),
                                                    Output(COLD, 75_000_000)), 20_000)}),
]


@pytest.mark.parametrize(("name", "changes"), CHANGES, ids=[c[0] for c in CHANGES])
def test_every_field_changes_the_digest(name: str, changes: dict[str, object]) -> None:
    assert make(**changes).digest != make().digest


def test_every_action_round_trips_through_its_document() -> None:
    bodies = [TransferBody("ETH", (Output("0xabc", 10**24),), 10**18),
              DestinationBody("BTC", SETTLEMENT, "settlement"),
              PolicyChangeBody.from_document(btc_document()), UnfreezeBody()]
    for body in bodies:
        proposal = make(body=body)
        text = json.dumps(proposal.document())
        again = proposal_module.from_document(json.loads(text))
        assert again == proposal and again.digest == proposal.digest
    wei = make(body=bodies[0]).document()
    assert wei["outputs"][0]["amount"] == "1000000000000000000000000"


@settings(max_examples=60, deadline=None)
@given(amounts=st.lists(st.integers(1, 2**256 - 1), min_size=1, max_size=5),
       fee=st.integers(0, 2**64), purpose=st.text(min_size=1, max_size=50))
def test_round_trip_property(amounts: list[int], fee: int, purpose: str) -> None:
    proposal = make(purpose=purpose, body=TransferBody(
        "ETH", tuple(Output(f"0x{i:040x}", a) for i, a in enumerate(amounts)), fee))
    again = proposal_module.from_document(json.loads(json.dumps(proposal.document())))
    assert again.digest == proposal.digest


BAD_PROPOSALS = [
    ("zero amount", lambda: make(body=TransferBody("BTC", (Output(COLD, 0),), 1)), "positive"),
    ("no outputs", lambda: make(body=TransferBody("BTC", (), 1)), "1..100 outputs"),
    ("expires before created", lambda: make(expires_at=T0), "expire after"),
    ("naive time", lambda: make(created_at=T0.replace(tzinfo=None)), "aware datetime"),
    ("empty purpose", lambda: make(purpose=""), "purpose"),
    ("version zero", lambda: make(policy_version=0), "policy_version"),
]


@pytest.mark.parametrize(("name", "build", "message"), BAD_PROPOSALS,
                         ids=[c[0] for c in BAD_PROPOSALS])
def test_bad_proposals(name: str, build: object, message: str) -> None:
    with pytest.raises(WorkflowError, match=message):
        build()  # type: ignore[operator]


def test_bad_documents() -> None:
    document = make().document()
    cases: list[tuple[dict[str, object], str]] = [({"format": "x"}, "not a proposal"), ({"action": "steal"}, "unknown"),
                          ({"extra": 1}, "unexpected keys"),
                          ({"outputs": [{"destination": COLD, "amount": 1.5}]}, "decimal"),
                          ({"outputs": [{"destination": COLD, "amount": "-1"}]}, "decimal"),
                          ({"created_at": "yesterday"}, "ISO")]
    for edit, message in cases:
        with pytest.raises(WorkflowError, match=message):
            proposal_module.from_document({**document, **edit})


# -- approvals ----------------------------------------------------------------------------
def test_approval_signature_is_domain_separated_and_decision_bound() -> None:
    proposal = make()
    approval = vote(proposal, "central-bank")
    assert approval.verifies(public_key_of("central-bank"))
    assert not approval.verifies(public_key_of("vasp-regulator"))
    as_reject = replace(approval, decision="reject")
    assert not as_reject.verifies(public_key_of("central-bank"))
    raw = private_key_of("central-bank").sign(proposal.digest)  # no domain prefix
    assert not replace(approval, signature=raw).verifies(public_key_of("central-bank"))
    assert signing_message(proposal.digest, "approve").startswith(b"reserve/approval/v1\x00")


def test_approval_documents() -> None:
    approval = vote(make(), "central-bank")
    assert approval_module.from_document(approval.document()) == approval
    for edit, message in [({"format": "x"}, "format"), ({"signature": "00"}, "128"),
                          ({"proposal_digest": "zz"}, "64"), ({"decision": "maybe"}, "decision")]:
        with pytest.raises(ApprovalError, match=message):
            approval_module.from_document({**approval.document(), **edit})


# -- the state machine --------------------------------------------------------------------
LEGAL = [("transfer", "proposed", "approved"), ("transfer", "approved", "releasable"),
         ("transfer", "releasable", "signing"), ("transfer", "signing", "broadcast"),
         ("transfer", "broadcast", "confirmed"), ("transfer", "proposed", "rejected"),
         ("transfer", "approved", "expired"), ("transfer", "releasable", "cancelled"),
         ("transfer", "signing", "failed"), ("transfer", "broadcast", "failed"),
         ("policy.change", "releasable", "applied")]
ILLEGAL = [("transfer", "proposed", "releasable"), ("transfer", "proposed", "signing"),
           ("transfer", "approved", "signing"), ("transfer", "signing", "cancelled"),
           ("transfer", "confirmed", "failed"), ("transfer", "releasable", "applied"),
           ("policy.change", "releasable", "signing"), ("transfer", "approved", "rejected")]


@pytest.mark.parametrize(("action", "source", "target"), LEGAL)
def test_legal_transitions(action: str, source: str, target: str) -> None:
    check_transition(action, source, target)


@pytest.mark.parametrize(("action", "source", "target"), ILLEGAL)
def test_illegal_transitions_raise_clearly(action: str, source: str, target: str) -> None:
    with pytest.raises(WorkflowError, match=f"illegal transition .*{source} -> {target}"):
        check_transition(action, source, target, "ab" * 32)


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL:
        for target in STATES:
            assert target not in allowed("transfer", state)
            assert target not in allowed("destination.add", state)
