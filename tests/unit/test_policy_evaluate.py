"""The pure policy evaluation: each rule, table-driven, plus properties (hypothesis)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.errors import PolicyError
from reserve.policy import loader
from reserve.policy.evaluate import (
    DestinationRecord,
    Freeze,
    History,
    TransferRecord,
    evaluate,
)
from reserve.policy.model import Policy
from reserve.present import format_duration
from reserve.proposals.approval import Approval
from reserve.proposals.proposal import (
    DestinationBody,
    Output,
    PolicyChangeBody,
    Proposal,
    TransferBody,
    UnfreezeBody,
)
from tests.support.workflow import (
    COLD,
    CUSTODIANS,
    SETTLEMENT,
    T0,
    btc_document,
    btc_policy,
    vote,
)

POLICY = btc_policy()
SMALL, LARGE, VERY_LARGE = 5_000_000, 150_000_000, 600_000_000


def transfer(amount: int = LARGE, *, destination: str = COLD, proposer: str = "treasury-ops",
             **changes: object) -> Proposal:
    fields: dict[str, object] = dict(
        vault="national-btc", network="regtest", chain=POLICY.chain, policy_version=1,
        proposer=proposer, purpose="test", reference="R-1", created_at=T0,
        expires_at=T0 + timedelta(days=7),
        body=TransferBody("BTC", (Output(destination, amount),), 20_000))
    fields.update(changes)
    return Proposal(**fields)  # type: ignore[arg-type]


def votes(proposal: Proposal, *custodians: str, decision: str = "approve") -> list[Approval]:
    return [vote(proposal, c, decision, T0 + timedelta(minutes=i))
            for i, c in enumerate(custodians)]


def approved(proposal: Proposal, at: datetime, **more: object) -> History:
    return History(approved_at={proposal.digest_hex: at}, **more)  # type: ignore[arg-type]


# -- tiers and quorum ---------------------------------------------------------------------
QUORUM_CASES = [
    ("small needs 2", SMALL, ("central-bank",), False,
     "needs 1 more approval from a different institution"),
    ("small met", SMALL, ("central-bank", "vasp-regulator"), True, ""),
    ("large needs 3", LARGE, ("central-bank", "vasp-regulator"), False,
     "needs 1 more approval from a different institution; then 24 h of time delay"),
    ("large met", LARGE, ("central-bank", "vasp-regulator", "auditor-general"), True, ""),
    ("very large needs 4", VERY_LARGE, ("central-bank", "vasp-regulator", "auditor-general"),
     False, "needs 1 more approval from a different institution; then 72 h of time delay"),
    ("nobody yet", LARGE, (), False,
     "needs 3 more approvals from different institutions; then 24 h of time delay"),
]


@pytest.mark.parametrize(("name", "amount", "approvers", "met", "missing"), QUORUM_CASES,
                         ids=[c[0] for c in QUORUM_CASES])
def test_tiers_and_quorum(name: str, amount: int, approvers: tuple[str, ...], met: bool,
                          missing: str) -> None:
    proposal = transfer(amount)
    decision = evaluate(POLICY, proposal, votes(proposal, *approvers), History(), T0)
    assert decision.quorum_met is met
    assert decision.may_approve is met
    assert not decision.refused
    if missing:
        assert decision.explain() == missing


def test_institutions_are_counted_not_just_custodians() -> None:
    document = btc_document()
    document["custodians"][1]["institution"] = "Ministry of Finance"  # two from one ministry
    policy = loader.from_mapping(document)
    proposal = transfer(LARGE)
    decision = evaluate(policy, proposal,
                        votes(proposal, "finance-ministry", "central-bank", "vasp-regulator"),
                        History(), T0)
    assert not decision.quorum_met
    assert decision.missing[0] == "needs 1 more approval from a different institution"
    decision = evaluate(policy, proposal, votes(proposal, "finance-ministry", "central-bank"),
                        History(), T0)
    # 1 approval short, but 2 institutions short: each new institution brings one approval.
    assert decision.missing[0] == "needs 2 more approvals from different institutions"


IGNORED_CASES = [
    ("proposer never approves", "finance-ministry", "finance-ministry",
     "finance-ministry proposed this and may not approve it"),
    ("non custodian", "treasury-ops", "treasury-ops", "treasury-ops is not a custodian"),
    ("wrong key", "central-bank", "vasp-regulator",
     "signature by vasp-regulator does not verify"),
]


@pytest.mark.parametrize(("name", "signer", "claimed", "reason"), IGNORED_CASES,
                         ids=[c[0] for c in IGNORED_CASES])
def test_votes_that_do_not_count(name: str, signer: str, claimed: str, reason: str) -> None:
    document = btc_document()
    document["roles"]["proposers"] = ["treasury-ops", "finance-ministry"]
    policy = loader.from_mapping(document)
    proposal = transfer(SMALL, proposer="finance-ministry")
    forged = vote(proposal, signer)
    forged = replace(forged, custodian=claimed)
    decision = evaluate(policy, proposal, [forged], History(), T0)
    assert decision.approvers == ()
    assert any(reason in text for text in decision.ignored), decision.ignored


def test_one_vote_per_custodian_and_replays_do_not_count() -> None:
    proposal, other = transfer(SMALL), transfer(SMALL, reference="R-2")
    replayed = vote(other, "vasp-regulator")
    decision = evaluate(POLICY, proposal,
                        [*votes(proposal, "central-bank", "central-bank"), replayed],
                        History(), T0)
    assert decision.approvers == ("central-bank",)
    assert "central-bank already voted" in decision.ignored
    assert "vote by vasp-regulator is for another proposal" in decision.ignored


def test_votes_after_expiry_do_not_count_and_expired_is_refused() -> None:
    proposal = transfer(SMALL, expires_at=T0 + timedelta(hours=1))
    late = [vote(proposal, c, recorded_at=T0 + timedelta(hours=2))
            for c in ("central-bank", "vasp-regulator")]
    decision = evaluate(POLICY, proposal, late, History(), T0 + timedelta(hours=2))
    assert decision.approvers == ()
    assert decision.refused == ("expired at 2026-01-05T10:00:00Z",)
    assert not decision.may_approve


def test_tampered_proposal_loses_its_approvals() -> None:
    proposal = transfer(LARGE)
    signed = votes(proposal, "central-bank", "vasp-regulator", "auditor-general")
    tampered = transfer(LARGE, destination=SETTLEMENT)
    assert tampered.digest != proposal.digest
    decision = evaluate(POLICY, tampered, signed, History(), T0)
    assert decision.approvers == () and not decision.quorum_met


def test_rejections_make_quorum_unreachable() -> None:
    proposal = transfer(VERY_LARGE)  # 4 of 5 needed
    decision = evaluate(POLICY, proposal,
                        votes(proposal, "central-bank", "vasp-regulator", decision="reject"),
                        History(), T0)
    assert decision.rejected
    assert decision.refused[0].startswith("rejected: after 2 rejections")
    one = evaluate(POLICY, proposal, votes(proposal, "central-bank", decision="reject"),
                   History(), T0)
    assert not one.rejected and not one.refused


# -- time delay ---------------------------------------------------------------------------
def test_delay_runs_from_approval_and_explains_itself() -> None:
    proposal = transfer(LARGE)
    signed = votes(proposal, "central-bank", "vasp-regulator", "auditor-general")
    history = approved(proposal, T0 + timedelta(hours=1))
    decision = evaluate(POLICY, proposal, signed, history, T0 + timedelta(hours=2))
    assert decision.explain() == "23 h of time delay left (ends 2026-01-06T10:00:00Z)"
    assert decision.delay_ends_at == T0 + timedelta(hours=25)
    assert not decision.releasable
    done = evaluate(POLICY, proposal, signed, history, T0 + timedelta(hours=25))
    assert done.releasable and done.explain() == "releasable"


def test_small_tier_has_no_delay() -> None:
    proposal = transfer(SMALL)
    signed = votes(proposal, "central-bank", "vasp-regulator")
    assert evaluate(POLICY, proposal, signed, approved(proposal, T0), T0).releasable


@pytest.mark.parametrize(("seconds", "text"), [(0, "0 s"), (59, "59 s"), (60, "1 min"),
                                               (61, "2 min"), (3600, "1 h"),
                                               (82800, "23 h"), (82801, "23 h 1 min"),
                                               (259200, "72 h")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


# -- destinations -------------------------------------------------------------------------
def test_destinations_allowlist_and_cooling_off() -> None:
    stranger = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
    proposal = transfer(SMALL, destination=stranger)
    signed = votes(proposal, "central-bank", "vasp-regulator")
    decision = evaluate(POLICY, proposal, signed, approved(proposal, T0), T0)
    assert decision.refused == (f"destination {stranger} is not on the allowlist",)
    assert not decision.releasable
    added = DestinationRecord("BTC", stranger, "New custodian bank", T0 + timedelta(hours=48))
    history = approved(proposal, T0, destinations=(added,))
    cooling = evaluate(POLICY, proposal, signed, history, T0 + timedelta(hours=1))
    assert cooling.missing == ("destination 'New custodian bank' is cooling off for another "
                               "47 h",)
    assert not cooling.releasable and not cooling.refused
    assert evaluate(POLICY, proposal, signed, history, T0 + timedelta(hours=48)).releasable


# -- velocity -----------------------------------------------------------------------------
def _moved(amount: int, at: datetime, state: str = "confirmed", name: str = "x") -> \
        TransferRecord:
    return TransferRecord(digest=name, asset="BTC", amount=amount, approved_at=at, state=state)


VELOCITY_CASES = [
    ("room left", [(_moved(500_000_000, T0 - timedelta(hours=2)))], True, ""),
    ("24 h full", [_moved(900_000_000, T0 - timedelta(hours=2))], False,
     "24 h velocity limit: 9.00000000 BTC already moving + 1.50000000 BTC would exceed "
     "10.00000000 BTC; room again at 2026-01-06T07:00:00Z"),
    ("old transfers leave the window", [_moved(900_000_000, T0 - timedelta(hours=25))],
     True, ""),
    ("7 d window", [_moved(900_000_000, T0 - timedelta(days=d), name=f"d{d}")
                    for d in (2, 3, 4)], False, "168 h velocity limit"),
    ("cancelled ones do not count", [_moved(900_000_000, T0, state="cancelled")], True, ""),
    ("failed ones still count", [_moved(900_000_000, T0, state="failed")], False,
     "24 h velocity limit"),
]


@pytest.mark.parametrize(("name", "records", "fits", "message"), VELOCITY_CASES,
                         ids=[c[0] for c in VELOCITY_CASES])
def test_velocity_limits(name: str, records: list[TransferRecord], fits: bool,
                         message: str) -> None:
    proposal = transfer(LARGE)
    signed = votes(proposal, "central-bank", "vasp-regulator", "auditor-general")
    decision = evaluate(POLICY, proposal, signed, History(transfers=tuple(records)), T0)
    assert decision.quorum_met
    assert decision.may_approve is fits
    if message:
        assert any(message in text for text in decision.missing), decision.missing


def test_amount_above_a_velocity_limit_is_refused() -> None:
    proposal = transfer(1_500_000_000)
    decision = evaluate(POLICY, proposal, [], History(), T0)
    assert any("exceeds the 24 h velocity limit" in r for r in decision.refused)


# -- freeze -------------------------------------------------------------------------------
def test_frozen_vault_never_releases() -> None:
    proposal = transfer(SMALL)
    signed = votes(proposal, "central-bank", "vasp-regulator")
    history = approved(proposal, T0, freeze=Freeze(T0, "external-auditor", "drill"))
    decision = evaluate(POLICY, proposal, signed, history, T0 + timedelta(days=1))
    assert not decision.releasable
    assert decision.missing[-1].startswith("vault frozen since 2026-01-05T09:00:00Z by "
                                           "external-auditor (drill); unfreezing needs 3")


# -- scope and governance ----------------------------------------------------------------
SCOPE_CASES = [
    ("other network", {"network": "signet"}, "proposal is for network 'signet'"),
    ("other chain", {"chain": "bip122:000000000019d6689c085ae165831e93"}, "chain"),
    ("other vault", {"vault": "other-vault"}, "vault 'other-vault'"),
    ("old policy version", {"policy_version": 2}, "made under policy v2; v1 is in force"),
    ("not a proposer", {"proposer": "central-bank"}, "may not propose transfers"),
    ("unknown asset", {"body": TransferBody("ETH", (Output(COLD, 5),), 1)},
     "asset 'ETH' is not governed"),
]


@pytest.mark.parametrize(("name", "changes", "message"), SCOPE_CASES,
                         ids=[c[0] for c in SCOPE_CASES])
def test_scope_refusals(name: str, changes: dict[str, object], message: str) -> None:
    proposal = transfer(SMALL, **changes)  # type: ignore[arg-type]
    decision = evaluate(POLICY, proposal, votes(proposal, "vasp-regulator", "auditor-general"),
                        History(), T0)
    assert any(message in r for r in decision.refused), decision.refused
    assert not decision.may_approve


def governance(body: object, proposer: str = "central-bank", **changes: object) -> Proposal:
    return transfer(proposer=proposer, body=body, **changes)  # type: ignore[arg-type]


def test_unfreeze_rules() -> None:
    proposal = governance(UnfreezeBody(), created_at=T0 + timedelta(hours=1))
    assert evaluate(POLICY, proposal, [], History(), T0 + timedelta(hours=1)).refused == (
        "the vault is not frozen",)
    frozen = History(freeze=Freeze(T0, "central-bank", ""))
    decision = evaluate(POLICY, proposal, votes(proposal, "vasp-regulator", "auditor-general",
                                                "crypto-council"), frozen, T0)
    assert decision.quorum_met and decision.may_approve
    stale = governance(UnfreezeBody(), created_at=T0 - timedelta(hours=1))
    assert evaluate(POLICY, stale, [], frozen, T0).refused == (
        "this unfreeze was proposed before the current freeze",)


def test_policy_change_must_meet_the_current_bar() -> None:
    document = btc_document()
    document["version"] = 2
    for tier in document["assets"][0]["tiers"]:  # the new policy lowers every bar
        tier.update(approvals_min=1, institutions_min=1, delay_seconds=0)
    for rule in document["governance"].values():
        rule.update(approvals_min=1, institutions_min=1, delay_seconds=0)
    proposal = governance(PolicyChangeBody.from_document(document))
    three = votes(proposal, "vasp-regulator", "auditor-general", "crypto-council")
    decision = evaluate(POLICY, proposal, three, History(), T0)
    assert not decision.quorum_met  # the current rule asks 4 of 5 and 72 h
    assert decision.missing == ("needs 1 more approval from a different institution",
                                "then 72 h of time delay")
    wrong = dict(document, version=3)
    bad = governance(PolicyChangeBody.from_document(wrong))
    assert "must be national-btc v2" in evaluate(POLICY, bad, [], History(), T0).refused[0]
    broken = dict(document, network="moonnet")
    invalid = governance(PolicyChangeBody.from_document(broken))
    assert "unknown network" in evaluate(POLICY, invalid, [], History(), T0).refused[0]


def test_destination_already_listed_is_refused() -> None:
    proposal = governance(DestinationBody("BTC", COLD, "again"))
    assert evaluate(POLICY, proposal, [], History(), T0).refused == (
        f"destination {COLD} is already on the allowlist",)


def test_naive_now_is_refused() -> None:
    with pytest.raises(PolicyError):
        evaluate(POLICY, transfer(), [], History(), datetime(2026, 1, 1))


# -- properties ---------------------------------------------------------------------------
def _two_proposers() -> Policy:
    document = btc_document()
    document["roles"]["proposers"] = ["treasury-ops", "finance-ministry"]
    return loader.from_mapping(document)


TWO_PROPOSERS = _two_proposers()
voters = st.lists(st.tuples(st.sampled_from((*CUSTODIANS, "treasury-ops")),
                            st.sampled_from(("approve", "reject")),
                            st.sampled_from(("ok", "forged", "other"))), max_size=8)


@settings(max_examples=150, deadline=None)
@given(amount=st.integers(1, 900_000_000), cast=voters,
       proposer=st.sampled_from(("treasury-ops", "finance-ministry")),
       hours=st.integers(0, 100))
def test_releasable_implies_a_quorum_of_distinct_custodians(
        amount: int, cast: list[tuple[str, str, str]], proposer: str, hours: int) -> None:
    policy = TWO_PROPOSERS
    proposal = transfer(amount, proposer=proposer)
    other = transfer(amount, proposer=proposer, reference="other")
    ballots = []
    for who, decision, kind in cast:
        ballot = vote(other if kind == "other" else proposal, who, decision)
        if kind == "forged":
            ballot = replace(ballot, custodian=CUSTODIANS[(CUSTODIANS.index(who) + 1) % 5]
                             if who in CUSTODIANS else who)
        ballots.append(ballot)
    now = T0 + timedelta(hours=hours)
    result = evaluate(policy, proposal, ballots, approved(proposal, T0), now)
    tier = policy.assets[0].tier_for(amount)
    assert tier is not None
    if result.quorum_met or result.releasable:
        valid = {b.custodian for b in ballots if b.proposal_digest == proposal.digest
                 and b.decision == "approve" and b.custodian != proposer
                 and policy.custodian(b.custodian) is not None and b.verifies(policy.custodian(b.custodian).approval_public_key)}  # type: ignore[union-attr]
        assert set(result.approvers) <= valid
        assert len(set(result.approvers)) == len(result.approvers) >= tier.rule.approvals_min
        institutions = {policy.custodian(a).institution for a in result.approvers}  # type: ignore[union-attr]
        assert len(institutions) >= tier.rule.institutions_min
        assert proposer not in result.approvers
    if result.releasable:
        assert now >= T0 + timedelta(seconds=tier.rule.delay_seconds)
