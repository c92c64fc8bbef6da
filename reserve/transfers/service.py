"""The workflow service: validate, then record, every step of a proposal in the ledger.

Each action reads the projection (caught up with the ledger), decides with the pure policy
evaluation, and appends its entries with `expected_size`: if another writer appended in
between, the ledger raises LedgerConflict and the action re-reads and decides again. So two
custodians approving at once on SQLite or PostgreSQL can neither double count nor lose a
vote, and two transfers reaching quorum at once cannot both squeeze under a velocity
limit. Every refusal raises before anything is written. `now` is injectable everywhere
(tests and the end-to-end demo advance the clock instead of sleeping).

Every action takes a `prelude`: entries its caller wants recorded with the action, such as
the API's `api.request` entry. They open the same `append_many` batch as the action's own
entries (one commit, prelude first), or form a batch alone when the action has nothing of
its own to write; an action that refuses writes neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from reserve.errors import (
    ApprovalError,
    EventError,
    FreezeMirrorFailed,
    LedgerConflict,
    PolicyError,
    ReserveError,
    WorkflowError,
)
from reserve.events import ABSENT, Event, event_type
from reserve.events.access import ApiRequest
from reserve.events.custody import (
    DestinationAdded,
    PolicyChangeApplied,
    PolicyVersion,
    VaultFrozen,
    VaultUnfrozen,
)
from reserve.events.workflow import (
    DestinationProposed,
    PolicyChangeProposed,
    ProposalApproved,
    ProposalCancelled,
    ProposalCreated,
    ProposalExpired,
    ProposalMoved,
    ProposalRejected,
    ProposalState,
    ProposedEvent,
    UnfreezeProposed,
)
from reserve.ledger.kinds import KINDS
from reserve.policy import loader
from reserve.policy.evaluate import Decision, History, TransferRecord, evaluate
from reserve.policy.licences import LicenceChange, admit
from reserve.policy.model import Policy
from reserve.proposals.approval import Approval
from reserve.proposals.proposal import (
    Body,
    DestinationBody,
    Output,
    PolicyChangeBody,
    Proposal,
    TransferBody,
    UnfreezeBody,
    format_time,
)
from reserve.proposals.state import (
    APPLIED,
    APPROVED,
    BROADCAST,
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    FAILED,
    OPEN,
    PROPOSED,
    REJECTED,
    RELEASABLE,
    SIGNING,
    check_transition,
)
from reserve.transfers.chain import ChainAdapter, ChainStep, FreezeMirror, ReleaseOrder
from reserve.transfers.licences import LicenceBook, event_of
from reserve.transfers.projection import (
    LedgerLike,
    Projection,
    ProposalQuery,
    ProposalStatus,
)
from reserve.transfers.readmodel import StoredProjection

Item = tuple[str, str, dict[str, Any]]


def _item(event: Event, actor: str) -> Item:
    """A ledger item (kind, actor, payload) for `append_many`, from its typed event."""
    return event.KIND, actor, event.to_payload()
RETRIES_MAX = 64
WORKFLOW_ACTOR = "workflow"
CREATION_EVENTS: dict[str, type[ProposedEvent]] = {
    "transfer": ProposalCreated, "destination.add": DestinationProposed,
    "policy.change": PolicyChangeProposed, "vault.unfreeze": UnfreezeProposed}
TRANSITION_EVENT: dict[str, type[ProposalMoved]] = {EXPIRED: ProposalExpired,
                                                     CANCELLED: ProposalCancelled}


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _transition(status: ProposalStatus, source: str, target: str, reason: str,
                actor: str = WORKFLOW_ACTOR, txid: str = ABSENT, depth: int = ABSENT) -> Item:
    check_transition(status.proposal.action, source, target, status.digest)
    event = TRANSITION_EVENT.get(target, ProposalState)
    return _item(event(vault=status.proposal.vault, digest=status.digest, source=source,
                       target=target, reason=reason[:1000], txid=txid, depth=depth), actor)


def _policy_version_item(policy: Policy, actor: str, reason: str, digest: str = "") -> Item:
    return _item(PolicyVersion(vault=policy.vault, version=policy.version,
                               policy_sha256=loader.policy_sha256(policy),
                               policy=loader.to_document(policy), reason=reason,
                               digest=digest or ABSENT), actor)


def decide(policy: Policy, status: ProposalStatus, history: History,
           licences: Any, now: datetime, votes: Sequence[Approval] | None = None
           ) -> Decision:
    """What `policy` says about `status` at `now`, given the vault's `history` (its
    velocity window at `now`) and the licence register: the one rule every decision of
    the service takes (the API's answer cache decides from kept inputs through it too)."""
    if status.approved_at and status.digest not in history.approved_at:
        # Approved before the velocity window the history covers: its delay still runs
        # from its own approval.
        history = replace(history, approved_at={**history.approved_at,
                                                status.digest: status.approved_at})
    return evaluate(policy, status.proposal, status.votes if votes is None else votes,
                    replace(history, licences=licences), now)


class WorkflowService:
    """Drives proposals through the state machine, recording every step in `ledger`.

    With a `freeze_mirror`, every freeze or unfreeze the service records is carried to the
    chain right after the ledger commit (the EVM guard's `frozen` flag): the ledger first,
    so a node that is down never blocks a freeze; FreezeMirrorFailed then reports that the
    chain did not follow, and `mirror_freeze` re-applies the ledger's state later.
    """

    def __init__(self, ledger: Any, *, clock: Callable[[], datetime] | None = None,
                 retries_max: int = RETRIES_MAX,
                 freeze_mirror: FreezeMirror | None = None) -> None:
        self.ledger = ledger
        self.clock = clock or _utc_now
        self.retries_max = retries_max
        self.freeze_mirror = freeze_mirror
        # The read-model tables when the ledger keeps them (a store), a replay otherwise.
        self.projection: Projection = StoredProjection(ledger) \
            if hasattr(ledger, "attach") else Projection()
        self.licences = LicenceBook()
        # When a list, every entry `_commit` appends (its prelude's too) is added to it: the
        # API's WorkflowAccess checks from it that the request's entry was written, without
        # reading it back from the ledger.
        self.appended: list[Any] | None = None
        # (digest, time, ledger size after its append, decision) of the last proposal
        # recorded or voted on without a transition: its decision at that time, as long as
        # nothing else was appended (the append held nothing but the proposal or the vote
        # and api.request entries).
        self._proposed: tuple[str, datetime, int, Decision] | None = None

    # -- plumbing ------------------------------------------------------------------------
    def _now(self, now: datetime | None) -> datetime:
        moment = now if now is not None else self.clock()
        if moment.tzinfo is None:
            raise WorkflowError("the workflow clock must give timezone-aware times")
        return moment.astimezone(UTC)

    def _commit(self, build: Callable[[], list[Item]], now: datetime,
                prelude: Sequence[Item] = ()) -> list[Any]:
        """Build entries from fresh state and append them after `prelude`, in one batch,
        unless the ledger moved meanwhile. Returns the action's own entries."""
        ledger: LedgerLike = self.ledger
        for _ in range(self.retries_max):
            self._catch_up(ledger)
            items = build()
            if not items and not prelude:
                return []
            stored = self.projection if isinstance(self.projection, StoredProjection) \
                else None
            try:
                if stored is not None:
                    stored.arm(True)
                entries = list(self.ledger.append_many([*prelude, *items], now=now,
                                                       expected_size=self.projection.size))
            except LedgerConflict:
                if stored is not None:
                    stored.stale()
                continue
            finally:
                if stored is not None:
                    stored.arm(False)
            if len(entries) != len(prelude) + len(items):
                raise WorkflowError(f"the ledger appended {len(entries)} entries, not "
                                    f"{len(prelude) + len(items)}")
            if self.appended is not None:
                self.appended += entries
            self.projection.apply_all(entries)
            self.licences.apply_all(entries)
            self._mirror_entries(entries[len(prelude):])
            return entries[len(prelude):]
        raise WorkflowError(f"gave up after {self.retries_max} concurrent ledger updates; "
                            "try again")

    def _mirror_entries(self, entries: list[Any]) -> None:
        """Carry the freezes and unfreezes just recorded to the chain, vault by vault."""
        if self.freeze_mirror is None:
            return
        vaults = list(dict.fromkeys(
            (VaultFrozen if entry.kind == VaultFrozen.KIND else VaultUnfrozen).of(entry).vault
            for entry in entries if entry.kind in (VaultFrozen.KIND, VaultUnfrozen.KIND)))
        failures = []
        for vault in vaults:
            try:
                self.mirror_freeze(vault)
            except ReserveError as error:  # node down, key missing: the ledger stands
                state = "frozen" if self.projection.vault(vault).freeze else "unfrozen"
                failures.append(f"{vault} is {state} in the ledger but the chain did not "
                                f"follow: {error}")
        if failures:
            raise FreezeMirrorFailed("; ".join(failures) + "; the ledger's entries stand: "
                                     "re-apply with `reserve evm sync`", list(entries))

    def mirror_freeze(self, vault: str) -> str | None:
        """Make the chain's freeze of `vault` match the ledger's; the tx id, None if it did.

        A no-op (None) without a mirror or for a vault the mirror does not cover.
        """
        mirror = self.freeze_mirror
        if mirror is None or not mirror.covers(vault):
            return None
        frozen = self.sync().vault(vault).freeze is not None
        return mirror.freeze(vault) if frozen else mirror.unfreeze(vault)

    def _catch_up(self, ledger: LedgerLike) -> None:
        """The projection and the licence register, both as of the same ledger size."""
        self.projection.catch_up(ledger)
        self.licences.catch_up(ledger, self.projection.size)

    def forget_cached_state(self) -> None:
        """After a group commit that failed: forget what was read or applied inside it
        (none of it is in the ledger); the next request reads the ledger afresh."""
        if isinstance(self.projection, StoredProjection):
            self.projection.forget()
        else:
            self.projection = Projection()
        self.licences = LicenceBook()

    def sync(self) -> Projection:
        self._catch_up(self.ledger)
        return self.projection

    def status(self, digest: str) -> ProposalStatus:
        return self.sync().status(digest)

    def proposals(self, vault: str | None = None,
                  states: Iterable[str] | None = None) -> list[ProposalStatus]:
        return self.sync().select(vault, states)

    def page(self, query: ProposalQuery) -> list[ProposalStatus]:
        """One page of proposals (a listing's cost is its page, not the history)."""
        return self.sync().page(query)

    def count(self, query: ProposalQuery) -> int:
        return self.sync().count(query)

    def policy(self, vault: str) -> Policy:
        return self.sync().vault(vault).policy

    def _decide(self, status: ProposalStatus, now: datetime,
                votes: Sequence[Approval] | None = None,
                history: History | None = None) -> Decision:
        projection = self.projection
        if history is None:
            history = projection.history(status.proposal.vault, now)
        return decide(projection.vault(status.proposal.vault).policy, status, history,
                      self.licences.licences, now, votes)

    def decision(self, digest: str, now: datetime | None = None) -> Decision:
        """What the policy says about a proposal now, with its explanation."""
        moment = self._now(now)
        status = self.status(digest)
        proposed = self._proposed
        if proposed is not None and proposed[:3] == (status.digest, moment, self.projection.size):
            return proposed[3]  # the decision `propose` just took, on these very inputs
        return self._decide(status, moment)

    def decisions(self, statuses: Sequence[ProposalStatus], now: datetime | None = None
                  ) -> list[Decision]:
        """`decision` for each of `statuses` (as read), in order: each vault's history
        (its velocity window) is read once for all of them, not once per proposal."""
        moment = self._now(now)
        projection = self.sync()
        histories: dict[str, History] = {}
        found = []
        for status in statuses:
            vault = status.proposal.vault
            if vault not in histories:
                histories[vault] = projection.history(vault, moment)
            found.append(self._decide(status, moment, history=histories[vault]))
        return found

    # -- automatic transitions -----------------------------------------------------------
    def _plan_advance(self, status: ProposalStatus, votes: Sequence[Approval],
                      history: History, now: datetime,
                      decided: list[Decision] | None = None) -> tuple[list[Item], History]:
        """Entries that move an open proposal as far as the policy allows at `now`; the
        first decision taken is appended to `decided` (if given)."""
        if status.state not in OPEN:
            return [], history
        proposal, state = status.proposal, status.state
        decision = self._decide(status, now, votes, history)
        if decided is not None:
            decided.append(decision)
        if decision.refused:
            target = EXPIRED if now >= proposal.expires_at else \
                REJECTED if decision.rejected and state == PROPOSED else CANCELLED
            return [_transition(status, state, target, "; ".join(decision.refused))], history
        items: list[Item] = []
        if state == PROPOSED and decision.may_approve:
            items.append(_transition(status, PROPOSED, APPROVED,
                                     "quorum met: " + ", ".join(decision.approvers)))
            state = APPROVED
            history = replace(history, approved_at={**history.approved_at,
                                                    status.digest: now})
            if isinstance(proposal.body, TransferBody):
                history = replace(history, transfers=(*history.transfers, TransferRecord(
                    digest=status.digest, asset=proposal.body.asset,
                    amount=proposal.body.amount, approved_at=now, state=APPROVED)))
            decision = self._decide(status, now, votes, history)
        if state == APPROVED and decision.releasable:
            items.append(_transition(status, APPROVED, RELEASABLE, "time delay over"))
            state = RELEASABLE
        if state == RELEASABLE and decision.releasable and \
                not isinstance(proposal.body, TransferBody):
            items += self._apply_items(status, now)
            items.append(_transition(status, RELEASABLE, APPLIED, "applied"))
        return items, history

    def _apply_items(self, status: ProposalStatus, now: datetime) -> list[Item]:
        """The effect of an approved governance proposal, recorded with its application."""
        proposal, body = status.proposal, status.proposal.body
        vault = self.projection.vault(proposal.vault)
        base = {"vault": proposal.vault, "digest": status.digest}
        if isinstance(body, DestinationBody):
            usable = now + timedelta(seconds=vault.policy.destination_cooling_seconds)
            return [_item(DestinationAdded(
                **base, asset=body.asset, address=body.address, label=body.label,
                usable_from=usable), WORKFLOW_ACTOR)]
        if isinstance(body, PolicyChangeBody):
            new = loader.from_mapping(body.policy_document, source="proposed policy")
            return [_item(PolicyChangeApplied(**base, version=new.version), WORKFLOW_ACTOR),
                    _policy_version_item(new, WORKFLOW_ACTOR, "change", status.digest)]
        if isinstance(body, UnfreezeBody):
            return [_item(VaultUnfrozen(**base), WORKFLOW_ACTOR)]
        raise WorkflowError(f"nothing to apply for a {proposal.action}")

    def _plan_refresh(self, now: datetime, vault: str | None) -> list[Item]:
        items: list[Item] = []
        histories: dict[str, History] = {}
        changed: set[str] = set()
        # Transfers first; a governance change ends the pass for its vault, so nothing in
        # the same batch is decided under rules that batch itself replaces.
        pending = sorted(self.projection.select(vault, OPEN),
                         key=lambda s: (s.proposal.action != "transfer", s.seq))
        for status in pending:
            name = status.proposal.vault
            if name in changed:
                continue
            history = histories.get(name) or self.projection.history(name, now)
            planned, histories[name] = self._plan_advance(status, status.votes, history, now)
            items += planned
            if any(kind == ProposalState.KIND and ProposalState.from_payload(payload).target
                   == APPLIED for kind, _, payload in planned):
                changed.add(name)
        return items

    def refresh(self, now: datetime | None = None, vault: str | None = None,
                prelude: Sequence[Item] = ()) -> list[Any]:
        """Record every transition that time alone has made due (delays over, expiries)."""
        moment = self._now(now)
        return self._commit(lambda: self._plan_refresh(moment, vault), moment, prelude)

    # -- policy --------------------------------------------------------------------------
    def register_policy(self, policy: Policy, actor: str, now: datetime | None = None,
                        prelude: Sequence[Item] = ()) -> list[Any]:
        """Record the first policy (v1) of a new vault; later versions need a proposal."""
        def build() -> list[Item]:
            existing = self.projection.vaults.get(policy.vault)
            if existing is not None:
                if loader.policy_sha256(existing.policy) == loader.policy_sha256(policy):
                    return []
                raise WorkflowError(
                    f"vault {policy.vault} already has policy v{existing.policy.version}; "
                    "changes go through a policy change proposal")
            if policy.version != 1:
                raise PolicyError(f"the first policy of a vault is v1, not v{policy.version}")
            return [_policy_version_item(policy, actor, "genesis")]
        return self._commit(build, self._now(now), prelude)

    # -- proposals -----------------------------------------------------------------------
    def propose(self, proposal: Proposal, now: datetime | None = None,
                prelude: Sequence[Item] = ()) -> ProposalStatus:
        """Record a proposal after checking it against the policy in force."""
        moment = self._now(now)
        decided: list[Decision] = []

        def build() -> list[Item]:
            decided.clear()
            policy = self.projection.vault(proposal.vault).policy
            if proposal.digest_hex in self.projection.proposals:
                raise WorkflowError(f"proposal {proposal.digest_hex[:16]} already exists")
            if proposal.created_at > moment + timedelta(minutes=5):
                raise WorkflowError("proposal is dated in the future")
            lifetime = (proposal.expires_at - proposal.created_at).total_seconds()
            if lifetime > policy.proposal_lifetime_max_seconds:
                raise PolicyError(f"proposal lifetime {lifetime:.0f} s exceeds the policy's "
                                  f"maximum of {policy.proposal_lifetime_max_seconds} s")
            decision = evaluate(policy, proposal, (), replace(
                self.projection.history(proposal.vault, moment),
                licences=self.licences.licences), moment)
            if decision.refused:
                raise PolicyError("proposal refused: " + "; ".join(decision.refused))
            self._check_delay_fits(policy, proposal, moment)
            decided.append(decision)
            return [_item(CREATION_EVENTS[proposal.action](
                vault=proposal.vault, digest=proposal.digest_hex, action=proposal.action,
                proposal=proposal.document()), proposal.proposer)]
        self._proposed = None
        self._commit(build, moment, prelude)
        if decided and all(kind == ApiRequest.KIND for kind, _, _ in prelude):
            # Nothing in the batch changes a decision's inputs (votes, approvals in the
            # window, destinations, freeze, licences): `decision` at `moment` is this one.
            self._proposed = (proposal.digest_hex, moment, self.projection.size, decided[-1])
        return self.projection.proposals[proposal.digest_hex]

    @staticmethod
    def _check_delay_fits(policy: Policy, proposal: Proposal, now: datetime) -> None:
        """A proposal that would expire before its time delay could end is refused now."""
        body = proposal.body
        if isinstance(body, TransferBody):
            rules = policy.asset_rules(body.asset)
            tier = rules.tier_for(body.amount) if rules else None
            delay = tier.rule.delay_seconds if tier else 0
        else:
            names = {DestinationBody: "destination_add", PolicyChangeBody: "policy_change",
                     UnfreezeBody: "unfreeze"}
            delay = getattr(policy.governance, names[type(body)]).delay_seconds
        if proposal.expires_at <= now + timedelta(seconds=delay):
            raise PolicyError(f"proposal expires at {format_time(proposal.expires_at)}, "
                              f"before its {delay} s time delay could end; give it a later "
                              "expiry")

    def _new(self, vault: str, proposer: str, body: Body, purpose: str, reference: str,
             expires_in_seconds: int | None, now: datetime | None,
             prelude: Sequence[Item]) -> ProposalStatus:
        moment = self._now(now)
        policy = self.policy(vault)
        lifetime = expires_in_seconds or policy.proposal_lifetime_max_seconds
        created = moment.replace(microsecond=0)
        proposal = Proposal(vault=vault, network=policy.network, chain=policy.chain,
                            policy_version=policy.version, proposer=proposer,
                            purpose=purpose, reference=reference, created_at=created,
                            expires_at=created + timedelta(seconds=lifetime), body=body)
        return self.propose(proposal, moment, prelude)

    def propose_transfer(self, *, vault: str, proposer: str, asset: str,
                         outputs: Sequence[tuple[str, int]], fee_max: int, purpose: str,
                         reference: str = "", expires_in_seconds: int | None = None,
                         now: datetime | None = None,
                         prelude: Sequence[Item] = (),
                         flow_class: str | None = None) -> ProposalStatus:
        body = TransferBody(asset=asset, fee_max=fee_max,
                            outputs=tuple(Output(d, a) for d, a in outputs),
                            flow_class=flow_class)
        return self._new(vault, proposer, body, purpose, reference, expires_in_seconds, now,
                         prelude)

    def propose_destination(self, *, vault: str, proposer: str, asset: str, address: str,
                            label: str, purpose: str, reference: str = "",
                            expires_in_seconds: int | None = None,
                            now: datetime | None = None,
                            prelude: Sequence[Item] = ()) -> ProposalStatus:
        body = DestinationBody(asset=asset, address=address, label=label)
        return self._new(vault, proposer, body, purpose, reference, expires_in_seconds, now,
                         prelude)

    def propose_policy_change(self, *, policy: Policy, proposer: str, purpose: str,
                              reference: str = "", expires_in_seconds: int | None = None,
                              now: datetime | None = None,
                              prelude: Sequence[Item] = ()) -> ProposalStatus:
        body = PolicyChangeBody.from_document(loader.to_document(policy))
        return self._new(policy.vault, proposer, body, purpose, reference,
                         expires_in_seconds, now, prelude)

    def propose_unfreeze(self, *, vault: str, proposer: str, purpose: str,
                         reference: str = "", expires_in_seconds: int | None = None,
                         now: datetime | None = None,
                         prelude: Sequence[Item] = ()) -> ProposalStatus:
        return self._new(vault, proposer, UnfreezeBody(), purpose, reference,
                         expires_in_seconds, now, prelude)

    # -- votes, cancel, freeze -----------------------------------------------------------
    def _check_vote(self, approval: Approval, now: datetime) -> ProposalStatus:
        """Every reason a vote must not count, each a clear ApprovalError."""
        status = self.projection.proposals.get(approval.proposal_digest.hex())
        if status is None:
            raise ApprovalError(f"no proposal with digest {approval.proposal_digest.hex()}")
        proposal = status.proposal
        policy = self.projection.vault(proposal.vault).policy
        who = approval.custodian
        custodian = policy.custodian(who)
        if custodian is None:
            raise ApprovalError(f"{who!r} is not a custodian of {proposal.vault} under "
                                f"policy v{policy.version}")
        if who == proposal.proposer:
            raise ApprovalError(f"{who} proposed {status.digest[:16]} and may not vote on it")
        if not approval.verifies(custodian.approval_public_key):
            raise ApprovalError(f"signature does not verify with {who}'s approval key: "
                                "forged, wrong key, or signed for another proposal")
        if status.state != PROPOSED:
            raise ApprovalError(f"votes are closed: proposal {status.digest[:16]} is "
                                f"{status.state}")
        if now >= proposal.expires_at:
            raise ApprovalError(f"proposal {status.digest[:16]} expired at "
                                f"{format_time(proposal.expires_at)}")
        if proposal.policy_version != policy.version:
            raise ApprovalError(f"proposal was made under policy v{proposal.policy_version};"
                                f" v{policy.version} is in force")
        earlier = [v for v in status.votes if v.custodian == who]
        if earlier:
            raise ApprovalError(f"{who} already voted ({earlier[0].decision}) on "
                                f"{status.digest[:16]}")
        return status

    def vote(self, approval: Approval, now: datetime | None = None,
             prelude: Sequence[Item] = ()) -> Decision:
        """Verify and record an approval or rejection, then any transition it causes."""
        moment = self._now(now)
        decided: list[Decision] = []

        def build() -> list[Item]:
            decided.clear()
            status = self._check_vote(approval, moment)
            recorded = replace(approval, recorded_at=moment)
            vote = ProposalApproved if approval.decision == "approve" else ProposalRejected
            item = _item(vote(vault=status.proposal.vault, digest=status.digest,
                              custodian=approval.custodian, decision=approval.decision,
                              signature=approval.signature.hex()), approval.custodian)
            history = self.projection.history(status.proposal.vault, moment)
            planned, _ = self._plan_advance(status, (*status.votes, recorded), history,
                                            moment, decided)
            if planned:  # a transition: the answer is decided on the state it leads to
                decided.clear()
            return [item, *planned]
        self._proposed = None
        self._commit(build, moment, prelude)
        digest = approval.proposal_digest.hex()
        if decided and all(kind == ApiRequest.KIND for kind, _, _ in prelude):
            # The vote moved nothing: the proposal's state, the vault's window and the
            # licences are as the decision above read them, with this vote among the
            # votes, so `decision` at `moment` is that one.
            self._proposed = (digest, moment, self.projection.size, decided[-1])
        return self.decision(digest, moment)

    def cancel(self, digest: str, actor: str, reason: str, now: datetime | None = None,
               prelude: Sequence[Item] = ()) -> ProposalStatus:
        """The proposer, a custodian or an auditor may cancel before signing starts."""
        moment = self._now(now)

        def build() -> list[Item]:
            status = self.projection.status(digest)
            policy = self.projection.vault(status.proposal.vault).policy
            if actor != status.proposal.proposer and not policy.may_freeze(actor):
                raise PolicyError(f"{actor} may not cancel {status.digest[:16]}: only its "
                                  "proposer, a custodian or an auditor may")
            return [_transition(status, status.state, CANCELLED, reason or "cancelled",
                                actor)]
        self._commit(build, moment, prelude)
        return self.status(digest)

    def freeze(self, vault: str, actor: str, reason: str, now: datetime | None = None,
               prelude: Sequence[Item] = ()) -> list[Any]:
        """Any single custodian or auditor freezes a vault at once: the safe direction."""
        moment = self._now(now)

        def build() -> list[Item]:
            state = self.projection.vault(vault)
            if not state.policy.may_freeze(actor):
                raise PolicyError(f"{actor} may not freeze {vault}: only custodians, "
                                  "auditors and supervisors the policy grants it may")
            if state.freeze is not None:
                raise WorkflowError(f"{vault} is already frozen since "
                                    f"{format_time(state.freeze.since)} by {state.freeze.by}")
            return [_item(VaultFrozen(vault=vault, reason=reason[:1000]), actor)]
        return self._commit(build, moment, prelude)

    # -- supervision ---------------------------------------------------------------------
    def trusted_regulator_keys(self) -> frozenset[str]:
        """The regulator keys the vaults' policies in force name."""
        return frozenset(state.policy.supervision.regulator_key
                         for state in self.projection.vaults.values()
                         if state.policy.supervision is not None
                         and state.policy.supervision.regulator_key)

    def _affected(self, licence_id: str) -> list[dict[str, str]]:
        """Open transfers paying a destination that names `licence_id`."""
        found = []
        for status in sorted(self.projection.proposals.values(), key=lambda s: s.seq):
            body = status.proposal.body
            if status.state not in (*OPEN, SIGNING) or not isinstance(body, TransferBody):
                continue
            policy = self.projection.vault(status.proposal.vault).policy
            if any((d := policy.destination(body.asset, o.destination)) is not None
                   and d.licence == licence_id for o in body.outputs):
                found.append({"vault": status.proposal.vault, "digest": status.digest,
                              "state": status.state})
        return found

    def record_licence_change(self, change: LicenceChange, actor: str,
                              now: datetime | None = None,
                              prelude: Sequence[Item] = ()) -> Any:
        """Record a regulator's signed licence change; LicenceError, nothing written, when
        it is unsigned, forged, replayed, out of order or signed by a key no policy names.
        A suspension takes effect through the policy evaluation: pending transfers to the
        counterparty stop being releasable (and signable) from `effective_at` on."""
        moment = self._now(now)

        def build() -> list[Item]:
            admit(self.licences.licences, change, self.trusted_regulator_keys())
            event = replace(event_of(change), affects=self._affected(change.licence_id))
            return [_item(event, actor)]
        return self._commit(build, moment, prelude)[0]

    def record_event(self, event: Event, actor: str, now: datetime | None = None,
                     prelude: Sequence[Item] = (),
                     check: Callable[[int], None] | None = None) -> Any:
        """Record one event that changes no custody state (an alert acknowledgement, an
        attestation) after `check(ledger size)` passes on fresh state; it raises to
        refuse, and then nothing is written."""
        moment = self._now(now)

        def build() -> list[Item]:
            if check is not None:
                check(self.projection.size)
            return [_item(event, actor)]
        return self._commit(build, moment, prelude)[0]

    # -- the chain seam ------------------------------------------------------------------
    def _require(self, digest: str, states: frozenset[str]) -> ProposalStatus:
        status = self.projection.status(digest)
        if status.state not in states:
            raise WorkflowError(f"proposal {status.digest[:16]} is {status.state}; this step "
                                f"needs {' or '.join(sorted(states))}")
        if not isinstance(status.proposal.body, TransferBody):
            raise WorkflowError(f"proposal {status.digest[:16]} is a "
                                f"{status.proposal.action}, not a transfer")
        return status

    def _require_unfrozen(self, status: ProposalStatus) -> None:
        freeze = self.projection.vault(status.proposal.vault).freeze
        if freeze is not None:
            raise WorkflowError(f"{status.proposal.vault} is frozen since "
                                f"{format_time(freeze.since)} by {freeze.by}: nothing is "
                                "released until a quorum unfreezes it")

    def _require_operator(self, status: ProposalStatus, actor: str, step: str) -> None:
        """Only an operator the vault's policy names may hand a transfer to the chain."""
        policy = self.projection.vault(status.proposal.vault).policy
        if actor not in {operator.id for operator in policy.operators}:
            raise WorkflowError(f"{actor!r} is not an operator of {policy.vault} (policy "
                                f"v{policy.version}): only its operators may {step}")

    @staticmethod
    def _step_items(status: ProposalStatus, step: ChainStep | None, actor: str) -> list[Item]:
        """The ledger entry for a chain step, unless the chain layer already wrote it.

        The step must be a well-formed event of its kind, and where it names a vault or a
        proposal they must be this proposal's: the workflow adds its own `vault` and
        `digest` beside the chain layer's names (for the kinds that carry both), and a
        step about another vault or proposal is refused, nothing written.
        """
        if step is None or step.recorded:
            return []
        if step.kind not in KINDS or not step.kind.startswith(("btc.", "evm.")):
            raise WorkflowError(f"chain adapter reported unknown step kind {step.kind!r}")
        event_class = event_type(step.kind)
        names = {"vault": status.proposal.vault, "digest": status.digest}
        payload = {**dict(step.payload),
                   **{key: value for key, value in names.items()
                      if key in event_class.wire_keys()}}
        try:
            event = event_class.from_payload(payload)
        except EventError as error:
            raise WorkflowError(f"chain adapter reported a malformed step: {error}") from None
        for name, expected in names.items():
            named = getattr(event, name, ABSENT)
            if named is not ABSENT and named != expected:
                raise WorkflowError(f"chain adapter's {step.kind} names {name} "
                                    f"{str(named)[:80]!r}, not this proposal's {expected!r}")
        return [(step.kind, actor, payload)]

    def order(self, digest: str) -> ReleaseOrder:
        """Exactly what was approved, for a chain layer (or a custodian's signer) to check."""
        return ReleaseOrder.from_proposal(self.status(digest).proposal)

    def release(self, digest: str, adapter: ChainAdapter, actor: str,
                now: datetime | None = None, prelude: Sequence[Item] = ()) -> ChainStep:
        """Hand a releasable transfer to a chain layer: it builds what must be signed."""
        moment = self._now(now)
        self.refresh(moment)
        status = self._require(digest, frozenset({RELEASABLE}))
        self._require_operator(status, actor, "release it")
        self._require_unfrozen(status)
        decision = self._decide(status, moment)
        if not decision.releasable:
            raise WorkflowError(f"not releasable: {decision.explain()}")
        step = adapter.prepare(ReleaseOrder.from_proposal(status.proposal))

        def build() -> list[Item]:
            current = self._require(digest, frozenset({RELEASABLE}))
            self._require_unfrozen(current)
            if not self._decide(current, moment).releasable:
                raise WorkflowError("no longer releasable: "
                                    f"{self._decide(current, moment).explain()}")
            return [_transition(current, RELEASABLE, SIGNING, "handed to the chain layer",
                                actor), *self._step_items(current, step, actor)]
        self._commit(build, moment, prelude)
        return step

    def add_signature_share(self, digest: str, adapter: ChainAdapter, signer: str,
                            share: str, now: datetime | None = None,
                            prelude: Sequence[Item] = ()) -> ChainStep:
        """Pass one custodian's signature share to the chain layer and record it."""
        moment = self._now(now)
        status = self._require(self.status(digest).digest, frozenset({SIGNING}))
        self._require_unfrozen(status)
        step = adapter.add_share(ReleaseOrder.from_proposal(status.proposal),
                                 status.chain_steps, signer, share)

        def build() -> list[Item]:
            current = self._require(digest, frozenset({SIGNING}))
            self._require_unfrozen(current)
            return self._step_items(current, step, signer)
        self._commit(build, moment, prelude)
        return step

    def broadcast(self, digest: str, adapter: ChainAdapter, actor: str,
                  now: datetime | None = None, prelude: Sequence[Item] = ()) -> str:
        """Finalise and broadcast through the chain layer; returns the transaction id."""
        moment = self._now(now)
        status = self._require(self.status(digest).digest, frozenset({SIGNING}))
        self._require_operator(status, actor, "broadcast it")
        self._require_unfrozen(status)
        report = adapter.broadcast(ReleaseOrder.from_proposal(status.proposal),
                                   status.chain_steps)

        def build() -> list[Item]:
            # The transaction is on the network now: record the fact whatever happened since.
            current = self._require(digest, frozenset({SIGNING}))
            return [*self._step_items(current, report.step, actor),
                    _transition(current, SIGNING, BROADCAST, "broadcast", actor,
                                txid=report.txid)]
        self._commit(build, moment, prelude)
        return report.txid

    def check_confirmation(self, digest: str, adapter: ChainAdapter, *,
                           confirmations_min: int = 1, actor: str = WORKFLOW_ACTOR,
                           now: datetime | None = None,
                           prelude: Sequence[Item] = ()) -> int:
        """Ask the chain layer how deep the transaction is; record `confirmed` when deep."""
        moment = self._now(now)
        status = self._require(self.status(digest).digest, frozenset({BROADCAST}))
        report = adapter.confirmation(ReleaseOrder.from_proposal(status.proposal),
                                      status.chain_steps, status.txid)
        if report.depth < confirmations_min:
            self._commit(lambda: [], moment, prelude)  # not deep yet: the prelude alone
            return report.depth

        def build() -> list[Item]:
            current = self._require(digest, frozenset({BROADCAST}))
            return [*self._step_items(current, report.step, actor),
                    _transition(current, BROADCAST, CONFIRMED,
                                f"{report.depth} confirmations", actor, depth=report.depth)]
        self._commit(build, moment, prelude)
        return report.depth

    def fail(self, digest: str, actor: str, reason: str, now: datetime | None = None,
             prelude: Sequence[Item] = ()) -> ProposalStatus:
        """Record that signing or broadcast failed for good (terminal)."""
        moment = self._now(now)

        def build() -> list[Item]:
            current = self._require(digest, frozenset({SIGNING, BROADCAST}))
            return [_transition(current, current.state, FAILED, reason or "failed", actor)]
        self._commit(build, moment, prelude)
        return self.status(digest)
