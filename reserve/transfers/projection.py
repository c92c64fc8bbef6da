"""The current state of every vault and proposal, rebuilt by replaying ledger entries.

Nothing here is stored anywhere but the ledger: this projection is a cache that can be
thrown away and rebuilt (tests do exactly that and compare). It is incremental: it
remembers how many entries it has applied and only reads the new ones. Entries of kinds it
does not care about are counted and skipped. An entry that contradicts the workflow (a vote
for an unknown proposal, a digest that does not match its document) raises WorkflowError
naming the sequence number: the service never writes such entries, so one means tampering.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from reserve.errors import EventError, WorkflowError
from reserve.events import Event, decode
from reserve.events.chain_btc import BtcReorg
from reserve.events.custody import DestinationAdded, PolicyVersion, VaultFrozen, VaultUnfrozen
from reserve.events.workflow import (
    PROPOSED_KINDS,
    ProposalApproved,
    ProposalCancelled,
    ProposalExpired,
    ProposalRejected,
    ProposalState,
    ProposedEvent,
)
from reserve.policy import loader
from reserve.policy.evaluate import DestinationRecord, Freeze, History, TransferRecord
from reserve.policy.model import Policy
from reserve.proposals import proposal as proposal_module
from reserve.proposals.approval import Approval
from reserve.proposals.proposal import Proposal, TransferBody, parse_time
from reserve.proposals.state import APPROVED, PROPOSED, check_transition, reversal_target
from reserve.transfers.chain import ChainStep

PROPOSAL_KINDS = {"proposal.created": "transfer", "destination.proposed": "destination.add",
                  "policy.change_proposed": "policy.change",
                  "vault.unfreeze_proposed": "vault.unfreeze"}
TRANSITION_KINDS = frozenset({"proposal.state", "proposal.cancelled", "proposal.expired"})
VOTE_KINDS = {"proposal.approved": "approve", "proposal.rejected": "reject"}
RELEVANT_KINDS = frozenset({*PROPOSAL_KINDS, *TRANSITION_KINDS, *VOTE_KINDS,
                            "policy.version", "vault.frozen", "vault.unfrozen",
                            "destination.added"})
# Compensating chain entries -> the kinds of entry they reverse that undo a confirmation.
REVERSAL_KINDS = {"btc.reorg": frozenset({"btc.confirmed"})}
ENTRIES_PER_READ_MAX = 10_000


class EntryLike(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def time(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...


class LedgerLike(Protocol):
    def size(self) -> int: ...
    def entries(self, start: int = 0, stop: int | None = None,
                kinds: Any = None) -> Iterator[Any]: ...


@dataclass(frozen=True)
class StateChange:
    state: str
    at: datetime
    seq: int
    reason: str


@dataclass(frozen=True)
class ProposalStatus:
    proposal: Proposal
    state: str
    seq: int
    votes: tuple[Approval, ...]
    changes: tuple[StateChange, ...]
    approved_at: datetime | None
    chain_steps: tuple[ChainStep, ...] = ()
    txid: str = ""

    @property
    def digest(self) -> str:
        return self.proposal.digest_hex


@dataclass(frozen=True)
class VaultState:
    vault: str
    policy: Policy
    policy_versions: tuple[tuple[int, str, int], ...]  # (version, sha256, seq)
    freeze: Freeze | None
    destinations: tuple[DestinationRecord, ...]


def _plain_leaf(value: Any) -> Any:
    """Sets become sorted lists (their str() follows the hash seed), the rest str()."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def velocity_window_seconds(policy: Policy) -> int:
    """How far back a decision under `policy` looks at approved transfers (its widest
    velocity window; 0 when it has none)."""
    return max((limit.window_seconds for rules in policy.assets for limit in rules.velocity),
               default=0)


@dataclass(frozen=True)
class ProposalQuery:
    """Which proposals, in which order, how many: one page of a listing.

    `vaults` None means every vault; `after_seq` / `before_seq` are the cursors of the
    page before (the seq of a proposal's `proposal.created` entry, which never changes).
    """

    vaults: frozenset[str] | None = None
    states: frozenset[str] | None = None
    action: str | None = None
    after_seq: int | None = None
    before_seq: int | None = None
    limit: int | None = None
    newest_first: bool = False

    def admits(self, status: ProposalStatus) -> bool:
        return (self.vaults is None or status.proposal.vault in self.vaults) \
            and (self.states is None or status.state in self.states) \
            and (self.action is None or status.proposal.action == self.action) \
            and (self.after_seq is None or status.seq > self.after_seq) \
            and (self.before_seq is None or status.seq < self.before_seq)


class Projection:
    """Vaults and proposals as of the first `size` ledger entries.

    In memory by default (a replay: tests, the signer, the verifier's comparison); the
    read models (reserve/transfers/readmodel.py) run the same transitions over mappings
    backed by tables, so the rules of replay live here once.
    """

    def __init__(self, vaults: MutableMapping[str, VaultState] | None = None,
                 proposals: MutableMapping[str, ProposalStatus] | None = None) -> None:
        self.size = 0
        self.vaults: MutableMapping[str, VaultState] = {} if vaults is None else vaults
        self.proposals: MutableMapping[str, ProposalStatus] = \
            {} if proposals is None else proposals

    # -- reading -------------------------------------------------------------------------
    def vault(self, vault: str) -> VaultState:
        state = self.vaults.get(vault)
        if state is None:
            raise WorkflowError(f"unknown vault {vault!r}: no policy registered for it")
        return state

    def status(self, digest_hex: str) -> ProposalStatus:
        matches = [d for d in self.proposals if d.startswith(digest_hex.lower())] \
            if len(digest_hex) >= 8 else []
        if len(matches) != 1:
            what = "ambiguous" if matches else "unknown"
            raise WorkflowError(f"{what} proposal {digest_hex!r}")
        return self.proposals[matches[0]]

    def select(self, vault: str | None = None, states: Iterable[str] | None = None
               ) -> list[ProposalStatus]:
        """Proposals of `vault` (all vaults if None) in `states` (all if None), oldest first."""
        wanted = frozenset(states) if states is not None else None
        found = [s for s in self.proposals.values()
                 if (vault is None or s.proposal.vault == vault)
                 and (wanted is None or s.state in wanted)]
        return sorted(found, key=lambda s: s.seq)

    def page(self, query: ProposalQuery) -> list[ProposalStatus]:
        """The proposals `query` admits, by seq in its order, at most `query.limit`."""
        found = sorted((s for s in self.proposals.values() if query.admits(s)),
                       key=lambda s: s.seq, reverse=query.newest_first)
        return found if query.limit is None else found[:query.limit]

    def approved_transfers(self, vault: str, since: datetime, until: datetime
                           ) -> list[ProposalStatus]:
        """Transfers of `vault` approved in (since, until], whatever happened since."""
        return sorted((s for s in self.proposals.values()
                       if s.proposal.vault == vault and isinstance(s.proposal.body, TransferBody)
                       and s.approved_at is not None and since < s.approved_at <= until),
                      key=lambda s: s.seq)

    def count(self, query: ProposalQuery) -> int:
        """How many proposals `query` admits, whatever its limit."""
        return sum(1 for s in self.proposals.values() if query.admits(s))

    def history(self, vault: str, now: datetime | None = None) -> History:
        """The evidence `evaluate` needs about `vault`, derived from the ledger.

        In memory every approved transfer is in it; the stored projection gives only those
        inside the policy's widest velocity window before `now` (the only ones a decision
        at `now` counts). A decision adds its own proposal's approval time
        (`WorkflowService._decide`), so nothing here needs every open proposal.
        """
        state = self.vault(vault)
        mine = [s for s in self.proposals.values() if s.proposal.vault == vault]
        transfers = tuple(
            TransferRecord(digest=s.digest, asset=s.proposal.body.asset,
                           amount=s.proposal.body.amount, approved_at=s.approved_at,
                           state=s.state)
            for s in mine if isinstance(s.proposal.body, TransferBody) and s.approved_at)
        return History(transfers=transfers, destinations=state.destinations,
                       freeze=state.freeze,
                       approved_at={s.digest: s.approved_at for s in mine if s.approved_at})

    def snapshot(self) -> dict[str, Any]:
        """A plain comparable picture of everything (used to check replay equality)."""
        def plain(value: Any) -> Any:
            # Key order of payloads may differ between a fresh append and a read-back.
            return json.loads(json.dumps(asdict(value), sort_keys=True, default=_plain_leaf))
        return {"size": self.size,
                "vaults": {k: plain(v) for k, v in sorted(self.vaults.items())},
                "proposals": {k: plain(v) for k, v in sorted(self.proposals.items())}}

    # -- replay --------------------------------------------------------------------------
    def catch_up(self, ledger: LedgerLike) -> int:
        """Apply entries this projection has not seen; returns how many were applied."""
        stop = ledger.size()
        applied = 0
        while self.size < stop:
            batch_stop = min(stop, self.size + ENTRIES_PER_READ_MAX)
            before = self.size
            for entry in ledger.entries(start=self.size, stop=batch_stop):
                self.apply(entry)
            applied += self.size - before
            if self.size == before:
                raise WorkflowError(f"ledger reports size {stop} but yields no entry "
                                    f"at {self.size}")
        return applied

    def apply_all(self, entries: Iterable[EntryLike]) -> None:
        for entry in entries:
            self.apply(entry)

    def apply(self, entry: EntryLike) -> None:
        """Requires entry.seq == self.size (entries are applied in order, exactly once)."""
        if entry.seq != self.size:
            raise WorkflowError(f"projection expected entry {self.size}, got {entry.seq}")
        try:
            self._dispatch(entry)
        except EventError as error:
            raise WorkflowError(f"ledger entry {entry.seq} does not fit its kind: "
                                f"{error}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise WorkflowError(f"ledger entry {entry.seq} ({entry.kind}) is malformed: "
                                f"{error!r}") from None
        self.size += 1

    def _dispatch(self, entry: EntryLike) -> None:
        kind = entry.kind
        if kind not in RELEVANT_KINDS and not kind.startswith(("btc.", "evm.")):
            return
        event = decode(kind, entry.payload)
        at = parse_time(entry.time)
        if isinstance(event, PolicyVersion):
            self._on_policy(event, at, entry.seq)
        elif isinstance(event, PROPOSED_KINDS):
            self._on_proposal(PROPOSAL_KINDS[kind], event, entry.seq)
        elif isinstance(event, ProposalApproved | ProposalRejected):
            self._on_vote(VOTE_KINDS[kind], event, at, entry.seq)
        elif isinstance(event, ProposalState | ProposalCancelled | ProposalExpired):
            self._on_transition(event, at, entry.seq)
        elif isinstance(event, VaultFrozen):
            vault = self.vault(event.vault)
            self.vaults[vault.vault] = replace(vault, freeze=Freeze(
                since=at, by=entry.actor, reason=event.reason))
        elif isinstance(event, VaultUnfrozen):
            vault = self.vault(event.vault)
            self.vaults[vault.vault] = replace(vault, freeze=None)
        elif isinstance(event, DestinationAdded):
            vault = self.vault(event.vault)
            record = DestinationRecord(asset=event.asset, address=event.address,
                                       label=event.label, usable_from=event.usable_from)
            self.vaults[vault.vault] = replace(vault,
                                               destinations=(*vault.destinations, record))
        elif digest := self._chain_digest(event):
            status = self.proposals[digest]
            step = ChainStep(kind=kind, payload=entry.payload)
            self.proposals[status.digest] = replace(
                status, chain_steps=(*status.chain_steps, step))
            if isinstance(event, BtcReorg):
                self._on_chain_reversal(status.digest, event, at, entry.seq)

    def _chain_digest(self, event: Event) -> str:
        """The proposal a chain fact belongs to ("" if none): each chain event names it
        `digest` (`proposal_digest` on the wire of the chain layers' own entries)."""
        value = getattr(event, "digest", None)
        return value if isinstance(value, str) and value in self.proposals else ""

    def _on_policy(self, event: PolicyVersion, at: datetime, seq: int) -> None:
        policy = loader.from_mapping(event.policy, source=f"ledger entry {seq}")
        if loader.policy_sha256(policy) != event.policy_sha256:
            raise WorkflowError(f"ledger entry {seq}: policy_sha256 does not match the policy")
        old = self.vaults.get(policy.vault)
        if old is None:
            if policy.version != 1:
                raise WorkflowError(f"ledger entry {seq}: first policy of {policy.vault} "
                                    f"must be v1, not v{policy.version}")
            self.vaults[policy.vault] = VaultState(
                vault=policy.vault, policy=policy,
                policy_versions=((1, event.policy_sha256, seq),), freeze=None,
                destinations=())
            return
        if policy.version != old.policy.version + 1:
            raise WorkflowError(f"ledger entry {seq}: {policy.vault} v{policy.version} "
                                f"does not follow v{old.policy.version}")
        # Destinations new in this version cool off like any other addition.
        usable_from = at + timedelta(seconds=policy.destination_cooling_seconds)
        known = {(d.asset, d.address) for d in old.policy.destinations} | \
            {(d.asset, d.address) for d in old.destinations}
        added = tuple(DestinationRecord(d.asset, d.address, d.label, usable_from)
                      for d in policy.destinations if (d.asset, d.address) not in known)
        self.vaults[policy.vault] = replace(
            old, policy=policy, destinations=old.destinations + added,
            policy_versions=(*old.policy_versions,
                             (policy.version, event.policy_sha256, seq)))

    def _on_proposal(self, action: str, event: ProposedEvent, seq: int) -> None:
        proposal = proposal_module.from_document(event.proposal)
        if proposal.action != action or proposal.digest_hex != event.digest:
            raise WorkflowError(f"ledger entry {seq}: proposal digest or action mismatch")
        if proposal.digest_hex in self.proposals:
            raise WorkflowError(f"ledger entry {seq}: proposal recorded twice")
        self.vault(proposal.vault)
        self.proposals[proposal.digest_hex] = ProposalStatus(
            proposal=proposal, state=PROPOSED, seq=seq, votes=(),
            changes=(StateChange(PROPOSED, proposal.created_at, seq, "proposed"),),
            approved_at=None)

    def _on_vote(self, decision: str, event: ProposalApproved | ProposalRejected,
                 at: datetime, seq: int) -> None:
        status = self.proposals.get(event.digest)
        if status is None:
            raise WorkflowError(f"ledger entry {seq}: vote for unknown proposal")
        vote = Approval(proposal_digest=bytes.fromhex(event.digest),
                        custodian=event.custodian, decision=decision,
                        signature=bytes.fromhex(event.signature), recorded_at=at)
        self.proposals[status.digest] = replace(status, votes=(*status.votes, vote))

    def _on_transition(self, event: ProposalState | ProposalCancelled | ProposalExpired,
                       at: datetime, seq: int) -> None:
        status = self.proposals.get(event.digest)
        if status is None:
            raise WorkflowError(f"ledger entry {seq}: transition of unknown proposal")
        source, target = event.source, event.target
        if source != status.state:
            raise WorkflowError(f"ledger entry {seq}: transition from {source} but the "
                                f"proposal is {status.state}")
        check_transition(status.proposal.action, source, target, status.digest)
        self.proposals[status.digest] = replace(
            status, state=target,
            changes=(*status.changes, StateChange(target, at, seq, event.reason)),
            approved_at=at if target == APPROVED else status.approved_at,
            txid=event.txid or status.txid)

    def _on_chain_reversal(self, digest: str, event: BtcReorg, at: datetime,
                           seq: int) -> None:
        """A reorg entry naming this proposal undoes its confirmation (derived, not written).

        The chain layer's compensating entry is the evidence; deriving the move from it
        here means no reader ever sees `confirmed` after that entry, and replay gives the
        same answer. A reorg of a confirmation the workflow had not yet acted on (the
        proposal still `broadcast`) changes nothing.
        """
        status = self.proposals[digest]
        if event.reverses_kind not in REVERSAL_KINDS[event.KIND]:
            return
        target = reversal_target(status.proposal.action, status.state)
        txid = event.txid
        if target is None or (status.txid and txid and txid != status.txid):
            return
        reason = (f"{event.KIND} (entry {seq}) reverses confirmation entry "
                  f"{event.reverses_seq}: block {event.blockhash} at height {event.height} "
                  f"left the best chain; transaction {txid or status.txid} awaits "
                  "re-confirmation")
        self.proposals[digest] = replace(
            status, state=target,
            changes=(*status.changes, StateChange(target, at, seq, reason)))
