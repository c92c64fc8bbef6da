"""Decide whether a proposal may proceed, and say why, as a pure function.

`evaluate(policy, proposal, approvals, history, now)` reads no clock, file or database: the
service passes the ledger-derived `History` and the time. The `Decision` lists what is
satisfied and what is missing in plain sentences ("needs 1 more approval from a different
institution; 23 h of time delay left"), so operators, custodians and auditors all read the
same explanation. Hard refusals (expired, not allowlisted, quorum unreachable...) are in
`refused`; things that time or more approvals can fix are in `missing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reserve import present
from reserve.errors import PolicyError
from reserve.policy import loader
from reserve.policy.licences import LicenceState, standing_sentence
from reserve.policy.model import ApprovalRule, AssetRules, Destination, Policy
from reserve.present import format_duration
from reserve.proposals.approval import Approval
from reserve.proposals.proposal import (
    DestinationBody,
    PolicyChangeBody,
    Proposal,
    TransferBody,
    UnfreezeBody,
    format_time,
)
from reserve.proposals.state import COUNTED

REJECTED_PREFIX = "rejected:"


@dataclass(frozen=True)
class TransferRecord:
    """Another transfer of the vault that reached `approved` (velocity evidence)."""

    digest: str
    asset: str
    amount: int
    approved_at: datetime
    state: str


@dataclass(frozen=True)
class DestinationRecord:
    """A destination added after the genesis policy; usable once its cooling-off is over."""

    asset: str
    address: str
    label: str
    usable_from: datetime


@dataclass(frozen=True)
class Freeze:
    since: datetime
    by: str
    reason: str


@dataclass(frozen=True)
class History:
    """What the ledger says about the vault that a decision needs."""

    transfers: tuple[TransferRecord, ...] = ()
    destinations: tuple[DestinationRecord, ...] = ()
    freeze: Freeze | None = None
    approved_at: Mapping[str, datetime] = field(default_factory=dict)
    # The licence register (licence id -> its signed changes), for licensed counterparties.
    licences: Mapping[str, LicenceState] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    digest: str
    action: str
    rule_name: str
    satisfied: tuple[str, ...]
    missing: tuple[str, ...]
    refused: tuple[str, ...]
    quorum_met: bool
    rejected: bool  # enough rejections that the quorum can no longer be reached
    may_approve: bool  # may enter `approved` now (quorum, velocity, nothing refused)
    releasable: bool  # may leave `approved` for release/application now
    delay_ends_at: datetime | None
    approvers: tuple[str, ...]
    rejecters: tuple[str, ...]
    institutions: tuple[str, ...]
    ignored: tuple[str, ...]

    def explain(self) -> str:
        if self.refused:
            return "refused: " + "; ".join(self.refused)
        if self.missing:
            return "; ".join(self.missing)
        return "releasable" if self.releasable else "ready"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Notes:
    def __init__(self) -> None:
        self.satisfied: list[str] = []
        self.missing: list[str] = []
        self.refused: list[str] = []
        self.ignored: list[str] = []


@dataclass(frozen=True)
class _Votes:
    approvers: tuple[str, ...]
    rejecters: tuple[str, ...]
    institutions: tuple[str, ...]


def _count_votes(policy: Policy, proposal: Proposal, approvals: Iterable[Approval],
                 notes: _Notes) -> _Votes:
    """Only valid, first votes count: one per custodian, never the proposer's."""
    approvers: list[str] = []
    rejecters: list[str] = []
    voted: set[str] = set()
    ordered = sorted(approvals, key=lambda a: (a.recorded_at is None, a.recorded_at or 0))
    for approval in ordered:
        who = approval.custodian
        custodian = policy.custodian(who)
        if approval.proposal_digest != proposal.digest:
            notes.ignored.append(f"vote by {who} is for another proposal")
        elif custodian is None:
            notes.ignored.append(f"{who} is not a custodian under policy v{policy.version}")
        elif who == proposal.proposer:
            notes.ignored.append(f"{who} proposed this and may not approve it")
        elif who in voted:
            notes.ignored.append(f"{who} already voted")
        elif not approval.verifies(custodian.approval_public_key):
            notes.ignored.append(f"signature by {who} does not verify with their approval key")
        elif approval.recorded_at is not None and approval.recorded_at >= proposal.expires_at:
            notes.ignored.append(f"vote by {who} arrived after expiry")
        else:
            voted.add(who)
            (approvers if approval.decision == "approve" else rejecters).append(who)
    institutions = sorted({policy.custodian(who).institution  # type: ignore[union-attr]
                           for who in approvers})
    return _Votes(tuple(approvers), tuple(rejecters), tuple(institutions))


def _quorum_sentence(need_approvals: int, need_institutions: int) -> str:
    if need_institutions >= need_approvals:
        more = _plural(need_institutions, "more approval")
        where = "a different institution" if need_institutions == 1 else \
            "different institutions"
        return f"needs {more} from {where}"
    if need_institutions:
        return (f"needs {_plural(need_approvals, 'more approval')}, at least "
                f"{need_institutions} from institutions not yet represented")
    return f"needs {_plural(need_approvals, 'more approval')}"


def _check_quorum(policy: Policy, proposal: Proposal, rule: ApprovalRule, votes: _Votes,
                  notes: _Notes) -> bool:
    need_approvals = max(0, rule.approvals_min - len(votes.approvers))
    need_institutions = max(0, rule.institutions_min - len(votes.institutions))
    if not need_approvals and not need_institutions:
        notes.satisfied.append(f"quorum: {_plural(len(votes.approvers), 'approval')} "
                               f"({', '.join(votes.approvers)}; {rule.approvals_min} needed) "
                               f"from {_plural(len(votes.institutions), 'institution')} "
                               f"({rule.institutions_min} needed)")
        return True
    # Those who may still approve: custodians other than the proposer who have not voted.
    still = [c for c in policy.custodians if c.id != proposal.proposer
             and c.id not in votes.approvers and c.id not in votes.rejecters]
    reachable_institutions = set(votes.institutions) | {c.institution for c in still}
    if len(votes.approvers) + len(still) < rule.approvals_min or \
            len(reachable_institutions) < rule.institutions_min:
        rejections = _plural(len(votes.rejecters), "rejection")
        notes.refused.append(f"{REJECTED_PREFIX} after {rejections} the quorum of "
                             f"{rule.approvals_min} approvals from "
                             f"{rule.institutions_min} institutions can no longer be "
                             "reached")
        return False
    notes.missing.append(_quorum_sentence(need_approvals, need_institutions))
    return False


def _check_scope(policy: Policy, proposal: Proposal, now: datetime, notes: _Notes) -> None:
    for name in ("vault", "network", "chain"):
        if getattr(proposal, name) != getattr(policy, name):
            notes.refused.append(f"proposal is for {name} {getattr(proposal, name)!r} but the "
                                 f"policy governs {getattr(policy, name)!r}")
    if proposal.policy_version != policy.version:
        notes.refused.append(f"proposal was made under policy v{proposal.policy_version}; "
                             f"v{policy.version} is in force")
    if isinstance(proposal.body, TransferBody) and not policy.may_propose(proposal.proposer):
        notes.refused.append(f"{proposal.proposer} may not propose transfers under this policy")
    elif policy.member(proposal.proposer) is None:
        # Governance proposals (allowlist, policy change, unfreeze) come from any member.
        notes.refused.append(f"{proposal.proposer} is not a member of this policy")
    if now >= proposal.expires_at:
        notes.refused.append(f"expired at {format_time(proposal.expires_at)}")
    else:
        notes.satisfied.append(f"expires at {format_time(proposal.expires_at)}")


def _rule_for(policy: Policy, proposal: Proposal, notes: _Notes) -> tuple[str, ApprovalRule]:
    body = proposal.body
    if isinstance(body, TransferBody):
        rules = policy.asset_rules(body.asset)
        if rules is None:
            notes.refused.append(f"asset {body.asset!r} is not governed by this policy")
            return "none", ApprovalRule(1, 1, 0)
        tier = rules.tier_for(body.amount)
        if tier is None:
            notes.refused.append(f"amount {_units(body.amount, rules)} is above every tier")
            return "none", ApprovalRule(1, 1, 0)
        notes.satisfied.append(f"tier {tier.name}: {tier.rule.approvals_min} approvals from "
                               f"{tier.rule.institutions_min} institutions, "
                               f"{format_duration(tier.rule.delay_seconds)} delay")
        return tier.name, tier.rule
    name = {DestinationBody: "destination_add", PolicyChangeBody: "policy_change",
            UnfreezeBody: "unfreeze"}[type(body)]
    return name, getattr(policy.governance, name)


def _check_destinations(policy: Policy, body: TransferBody, history: History,
                        now: datetime, notes: _Notes) -> bool:
    """Every output must go to an allowlisted destination past its cooling-off."""
    usable = True
    for output in body.outputs:
        listed = policy.destination(body.asset, output.destination)
        added = [r for r in history.destinations
                 if r.asset == body.asset and r.address == output.destination]
        if listed is not None and not added:
            notes.satisfied.append(f"destination {listed.label!r} is allowlisted")
        elif added:
            record = min(added, key=lambda r: r.usable_from)
            if record.usable_from <= now:
                notes.satisfied.append(f"destination {record.label!r} is allowlisted")
            else:
                usable = False
                notes.missing.append(
                    f"destination {record.label!r} is cooling off for another "
                    f"{format_duration((record.usable_from - now).total_seconds())}")
        else:
            usable = False
            notes.refused.append(f"destination {output.destination} is not on the allowlist")
    return usable


def _check_licences(policy: Policy, body: TransferBody, history: History, now: datetime,
                    notes: _Notes) -> bool:
    """Every output to a destination that names a counterparty licence needs that licence
    active now, in a change signed by the regulator key this policy trusts. A suspension
    (or a licence not yet in force) holds the transfer; a revocation refuses it."""
    usable = True
    trusted = policy.supervision.regulator_key if policy.supervision is not None else ""
    for output in body.outputs:
        destination: Destination | None = policy.destination(body.asset, output.destination)
        if destination is None or not destination.licence:
            continue
        state = history.licences.get(destination.licence)
        if state is not None and state.regulator_key != trusted:
            usable = False
            notes.missing.append(f"counterparty licence {destination.licence} of "
                                 f"{destination.label!r} is signed by a key this policy "
                                 "does not trust as its regulator")
            continue
        status, sentence = standing_sentence(state, destination.licence, destination.label,
                                             now)
        if status == "active":
            notes.satisfied.append(sentence)
        elif status == "revoked":
            usable = False
            notes.refused.append(sentence)
        else:
            usable = False
            notes.missing.append(sentence)
    return usable


def _units(amount: int, rules: AssetRules) -> str:
    """'1.50000000 BTC': the asset's units for people (exact; base units stay in JSON)."""
    return present.format_amount(amount, rules.asset)


def _check_velocity(rules: AssetRules, proposal: Proposal, amount: int, history: History,
                    now: datetime, notes: _Notes) -> bool:
    """Approving now must keep every rolling window within its limit."""
    others = sorted((t for t in history.transfers if t.asset == rules.asset
                     and t.digest != proposal.digest_hex and t.state in COUNTED),
                    key=lambda t: t.approved_at)
    fits = True
    for limit in rules.velocity:
        window = timedelta(seconds=limit.window_seconds)
        inside = [t for t in others if t.approved_at > now - window]
        used = sum(t.amount for t in inside)
        label = f"{format_duration(limit.window_seconds)} velocity limit"
        if amount > limit.amount_max:
            notes.refused.append(f"amount {_units(amount, rules)} exceeds the {label} of "
                                 f"{_units(limit.amount_max, rules)}")
            fits = False
        elif used + amount > limit.amount_max:
            moving, room_at = used, now
            for record in inside:  # oldest first: when it leaves the window, room grows
                used -= record.amount
                room_at = record.approved_at + window
                if used + amount <= limit.amount_max:
                    break
            notes.missing.append(f"{label}: {_units(moving, rules)} already moving + "
                                 f"{_units(amount, rules)} would exceed "
                                 f"{_units(limit.amount_max, rules)}; room again at "
                                 f"{format_time(room_at)}")
            fits = False
        else:
            notes.satisfied.append(f"within the {label} ({_units(used + amount, rules)} of "
                                   f"{_units(limit.amount_max, rules)})")
    return fits


def _check_governance(policy: Policy, proposal: Proposal, history: History,
                      notes: _Notes) -> None:
    body = proposal.body
    if isinstance(body, DestinationBody):
        if policy.asset_rules(body.asset) is None:
            notes.refused.append(f"asset {body.asset!r} is not governed by this policy")
        if policy.destination(body.asset, body.address) is not None or any(
                r.asset == body.asset and r.address == body.address
                for r in history.destinations):
            notes.refused.append(f"destination {body.address} is already on the allowlist")
    elif isinstance(body, PolicyChangeBody):
        try:
            new = loader.from_mapping(body.policy_document, source="proposed policy")
        except PolicyError as error:
            notes.refused.append(str(error))
            return
        if new.vault != policy.vault or new.version != policy.version + 1:
            notes.refused.append(f"a change of {policy.vault} v{policy.version} must be "
                                 f"{policy.vault} v{policy.version + 1}, not "
                                 f"{new.vault} v{new.version}")
    elif isinstance(body, UnfreezeBody):
        if history.freeze is None:
            notes.refused.append("the vault is not frozen")
        elif proposal.created_at < history.freeze.since:
            # An unfreeze prepared in advance must not undo a freeze that came after it.
            notes.refused.append("this unfreeze was proposed before the current freeze")


def _freeze_sentence(policy: Policy, freeze: Freeze) -> str:
    rule = policy.governance.unfreeze
    return (f"vault frozen since {format_time(freeze.since)} by {freeze.by}"
            f"{f' ({freeze.reason})' if freeze.reason else ''}; unfreezing needs "
            f"{rule.approvals_min} approvals from {rule.institutions_min} institutions and a "
            f"{format_duration(rule.delay_seconds)} delay")


def _check_delay(rule: ApprovalRule, approved_at: datetime | None, quorum_met: bool,
                 now: datetime, notes: _Notes) -> tuple[bool, datetime | None]:
    delay = format_duration(rule.delay_seconds)
    if approved_at is None:
        if rule.delay_seconds:
            notes.missing.append(f"then {delay} of time delay" if not quorum_met else
                                 f"{delay} of time delay starts once approved")
        return False, None
    ends = approved_at + timedelta(seconds=rule.delay_seconds)
    if now < ends:
        notes.missing.append(f"{format_duration((ends - now).total_seconds())} of time delay "
                             f"left (ends {format_time(ends)})")
        return False, ends
    if rule.delay_seconds:
        notes.satisfied.append(f"time delay of {delay} ended {format_time(ends)}")
    return True, ends


def evaluate(policy: Policy, proposal: Proposal, approvals: Iterable[Approval],
             history: History, now: datetime) -> Decision:
    """Decide on `proposal` under `policy` at `now`. Pure: no clock, no I/O.

    Requires an aware `now`. `history.approved_at` holds when this proposal entered
    `approved` (its delay runs from then); absent means it has not yet.
    """
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise PolicyError(f"evaluate needs an aware datetime for now, got {now!r}")
    notes = _Notes()
    _check_scope(policy, proposal, now, notes)
    rule_name, rule = _rule_for(policy, proposal, notes)
    votes = _count_votes(policy, proposal, approvals, notes)
    quorum_met = _check_quorum(policy, proposal, rule, votes, notes)
    approved_at = history.approved_at.get(proposal.digest_hex)
    fits, usable, frozen = True, True, False
    body = proposal.body
    if isinstance(body, TransferBody):
        usable = _check_destinations(policy, body, history, now, notes)
        usable = _check_licences(policy, body, history, now, notes) and usable
        rules = policy.asset_rules(body.asset)
        if rules is not None and approved_at is None:
            fits = _check_velocity(rules, proposal, body.amount, history, now, notes)
        if history.freeze is not None:
            frozen = True
            notes.missing.append(_freeze_sentence(policy, history.freeze))
    else:
        _check_governance(policy, proposal, history, notes)
    delay_over, ends = _check_delay(rule, approved_at, quorum_met, now, notes)
    ok = not notes.refused
    return Decision(
        digest=proposal.digest_hex, action=proposal.action, rule_name=rule_name,
        satisfied=tuple(notes.satisfied), missing=tuple(notes.missing),
        refused=tuple(notes.refused), quorum_met=quorum_met,
        rejected=any(r.startswith(REJECTED_PREFIX) for r in notes.refused),
        may_approve=ok and quorum_met and fits,
        releasable=ok and quorum_met and approved_at is not None and delay_over
        and usable and not frozen,
        delay_ends_at=ends, approvers=votes.approvers, rejecters=votes.rejecters,
        institutions=votes.institutions, ignored=tuple(notes.ignored))
