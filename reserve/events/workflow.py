"""Events of the proposal workflow: proposals, votes and transitions of their state."""

from __future__ import annotations

from dataclasses import dataclass

from reserve.events.base import ABSENT, Event, Hex, Json


@dataclass(frozen=True)
class _Proposed(Event):
    vault: str
    digest: Hex
    action: str
    proposal: Json  # the signed proposal document (reserve.proposals)


@dataclass(frozen=True)
class ProposalCreated(_Proposed):
    KIND = "proposal.created"


@dataclass(frozen=True)
class DestinationProposed(_Proposed):
    KIND = "destination.proposed"


@dataclass(frozen=True)
class PolicyChangeProposed(_Proposed):
    KIND = "policy.change_proposed"


@dataclass(frozen=True)
class UnfreezeProposed(_Proposed):
    KIND = "vault.unfreeze_proposed"


@dataclass(frozen=True)
class _Voted(Event):
    vault: str
    digest: Hex
    custodian: str
    decision: str
    signature: Hex  # Ed25519 over the proposal digest and the decision


@dataclass(frozen=True)
class ProposalApproved(_Voted):
    KIND = "proposal.approved"


@dataclass(frozen=True)
class ProposalRejected(_Voted):
    KIND = "proposal.rejected"


@dataclass(frozen=True)
class _Moved(Event):
    """A proposal went from state `source` to `target` (`from` and `to` on the wire)."""

    WIRE = {"source": "from", "target": "to"}
    vault: str
    digest: Hex
    source: str
    target: str
    reason: str
    txid: Hex = ABSENT  # on the way to broadcast
    depth: int = ABSENT  # on the way to confirmed


@dataclass(frozen=True)
class ProposalState(_Moved):
    KIND = "proposal.state"


@dataclass(frozen=True)
class ProposalCancelled(_Moved):
    KIND = "proposal.cancelled"


@dataclass(frozen=True)
class ProposalExpired(_Moved):
    KIND = "proposal.expired"


PROPOSED_KINDS = (ProposalCreated, DestinationProposed, PolicyChangeProposed, UnfreezeProposed)
ProposedEvent = ProposalCreated | DestinationProposed | PolicyChangeProposed | UnfreezeProposed
ProposalMoved = ProposalState | ProposalCancelled | ProposalExpired
EVENTS: tuple[type[Event], ...] = (*PROPOSED_KINDS, ProposalApproved, ProposalRejected,
                                   ProposalState, ProposalCancelled, ProposalExpired)
