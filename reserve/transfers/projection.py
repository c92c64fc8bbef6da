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
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from reserve.errors import WorkflowError
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


class Projection:
    """Vaults and proposals as of the first `size` ledger entries."""

    def __init__(self) -> None:
        self.size = 0
        self.vaults: dict[str, VaultState] = {}
        self.proposals: dict[str, ProposalStatus] = {}

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

    def history(self, vault: str) -> History:
        """The evidence `evaluate` needs about `vault`, derived from the ledger."""
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
        except (KeyError, TypeError, ValueError) as error:
            raise WorkflowError(f"ledger entry {entry.seq} ({entry.kind}) is malformed: "
                                f"{error!r}") from None
        self.size += 1

    def _dispatch(self, entry: EntryLike) -> None:
        kind, payload = entry.kind, entry.payload
        at = parse_time(entry.time)
        if kind == "policy.version":
            self._on_policy(payload, at, entry.seq)
        elif kind in PROPOSAL_KINDS:
            self._on_proposal(PROPOSAL_KINDS[kind], payload, entry.seq)
        elif kind in VOTE_KINDS:
            self._on_vote(VOTE_KINDS[kind], payload, at, entry.seq)
        elif kind in TRANSITION_KINDS:
            self._on_transition(payload, at, entry.seq)
        elif kind == "vault.frozen":
            vault = self.vault(payload["vault"])
            self.vaults[vault.vault] = replace(vault, freeze=Freeze(
                since=at, by=entry.actor, reason=str(payload.get("reason", ""))))
        elif kind == "vault.unfrozen":
            vault = self.vault(payload["vault"])
            self.vaults[vault.vault] = replace(vault, freeze=None)
        elif kind == "destination.added":
            vault = self.vault(payload["vault"])
            record = DestinationRecord(asset=payload["asset"], address=payload["address"],
                                       label=payload["label"],
                                       usable_from=parse_time(payload["usable_from"]))
            self.vaults[vault.vault] = replace(vault,
                                               destinations=(*vault.destinations, record))
        elif kind.startswith(("btc.", "evm.")) and self._chain_digest(payload):
            status = self.proposals[self._chain_digest(payload)]
            step = ChainStep(kind=kind, payload=payload)
            self.proposals[status.digest] = replace(
                status, chain_steps=(*status.chain_steps, step))
            if kind in REVERSAL_KINDS:
                self._on_chain_reversal(status.digest, kind, payload, at, entry.seq)

    def _chain_digest(self, payload: dict[str, Any]) -> str:
        """The proposal a chain fact belongs to ("" if none): chain layers that record
        their own entries name it "proposal_digest", the workflow service "digest"."""
        for key in ("digest", "proposal_digest"):
            value = payload.get(key)
            if isinstance(value, str) and value in self.proposals:
                return value
        return ""

    def _on_policy(self, payload: dict[str, Any], at: datetime, seq: int) -> None:
        policy = loader.from_mapping(payload["policy"], source=f"ledger entry {seq}")
        if loader.policy_sha256(policy) != payload["policy_sha256"]:
            raise WorkflowError(f"ledger entry {seq}: policy_sha256 does not match the policy")
        old = self.vaults.get(policy.vault)
        if old is None:
            if policy.version != 1:
                raise WorkflowError(f"ledger entry {seq}: first policy of {policy.vault} "
                                    f"must be v1, not v{policy.version}")
            self.vaults[policy.vault] = VaultState(
                vault=policy.vault, policy=policy,
                policy_versions=((1, payload["policy_sha256"], seq),), freeze=None,
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
                             (policy.version, payload["policy_sha256"], seq)))

    def _on_proposal(self, action: str, payload: dict[str, Any], seq: int) -> None:
        proposal = proposal_module.from_document(payload["proposal"])
        if proposal.action != action or proposal.digest_hex != payload["digest"]:
            raise WorkflowError(f"ledger entry {seq}: proposal digest or action mismatch")
        if proposal.digest_hex in self.proposals:
            raise WorkflowError(f"ledger entry {seq}: proposal recorded twice")
        self.vault(proposal.vault)
        self.proposals[proposal.digest_hex] = ProposalStatus(
            proposal=proposal, state=PROPOSED, seq=seq, votes=(),
            changes=(StateChange(PROPOSED, proposal.created_at, seq, "proposed"),),
            approved_at=None)

    def _on_vote(self, decision: str, payload: dict[str, Any], at: datetime,
                 seq: int) -> None:
        status = self.proposals.get(payload["digest"])
        if status is None:
            raise WorkflowError(f"ledger entry {seq}: vote for unknown proposal")
        vote = Approval(proposal_digest=bytes.fromhex(payload["digest"]),
                        custodian=payload["custodian"], decision=decision,
                        signature=bytes.fromhex(payload["signature"]), recorded_at=at)
        self.proposals[status.digest] = replace(status, votes=(*status.votes, vote))

    def _on_transition(self, payload: dict[str, Any], at: datetime, seq: int) -> None:
        status = self.proposals.get(payload["digest"])
        if status is None:
            raise WorkflowError(f"ledger entry {seq}: transition of unknown proposal")
        source, target = payload["from"], payload["to"]
        if source != status.state:
            raise WorkflowError(f"ledger entry {seq}: transition from {source} but the "
                                f"proposal is {status.state}")
        check_transition(status.proposal.action, source, target, status.digest)
        self.proposals[status.digest] = replace(
            status, state=target,
            changes=(*status.changes, StateChange(target, at, seq,
                                                  str(payload.get("reason", "")))),
            approved_at=at if target == APPROVED else status.approved_at,
            txid=str(payload.get("txid", status.txid)))

    def _on_chain_reversal(self, digest: str, kind: str, payload: dict[str, Any],
                           at: datetime, seq: int) -> None:
        """A reorg entry naming this proposal undoes its confirmation (derived, not written).

        The chain layer's compensating entry is the evidence; deriving the move from it
        here means no reader ever sees `confirmed` after that entry, and replay gives the
        same answer. A reorg of a confirmation the workflow had not yet acted on (the
        proposal still `broadcast`) changes nothing.
        """
        status = self.proposals[digest]
        if payload["reverses_kind"] not in REVERSAL_KINDS[kind]:
            return
        target = reversal_target(status.proposal.action, status.state)
        txid = str(payload.get("txid", ""))
        if target is None or (status.txid and txid and txid != status.txid):
            return
        reason = (f"{kind} (entry {seq}) reverses confirmation entry "
                  f"{int(payload['reverses_seq'])}: block {payload.get('blockhash', '?')} at "
                  f"height {payload.get('height', '?')} left the best chain; transaction "
                  f"{txid or status.txid} awaits re-confirmation")
        self.proposals[digest] = replace(
            status, state=target,
            changes=(*status.changes, StateChange(target, at, seq, reason)))
