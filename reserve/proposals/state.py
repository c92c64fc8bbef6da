"""The proposal state machine: which moves are legal, in one table.

    proposed -> approved (quorum met) -> releasable (delay over) -> signing -> broadcast
             -> confirmed
    rejected, expired, cancelled, failed are terminal branches; governance proposals
    (destination, policy change, unfreeze) end in `applied` instead of going to a chain.
    confirmed -> broadcast happens only on chain evidence: a reorg entry (`btc.reorg`)
    naming the proposal says its confirmed transaction left the best chain.

A move not in the table raises WorkflowError and the caller writes nothing.
"""

from __future__ import annotations

from reserve.errors import WorkflowError

PROPOSED = "proposed"
APPROVED = "approved"
RELEASABLE = "releasable"
SIGNING = "signing"
BROADCAST = "broadcast"
CONFIRMED = "confirmed"
APPLIED = "applied"
REJECTED = "rejected"
EXPIRED = "expired"
CANCELLED = "cancelled"
FAILED = "failed"

STATES = (PROPOSED, APPROVED, RELEASABLE, SIGNING, BROADCAST, CONFIRMED, APPLIED,
          REJECTED, EXPIRED, CANCELLED, FAILED)
TERMINAL = frozenset({CONFIRMED, APPLIED, REJECTED, EXPIRED, CANCELLED, FAILED})
# Before signing starts nothing has left the custodians' hands, so a proposal may still be
# cancelled or expire; once signing starts only the chain decides (broadcast or failed).
OPEN = frozenset({PROPOSED, APPROVED, RELEASABLE})
# States that count toward velocity limits: approved or further along. A failed transfer
# still counts, because signature shares may exist for it.
COUNTED = frozenset({APPROVED, RELEASABLE, SIGNING, BROADCAST, CONFIRMED, FAILED})

_TRANSFER: dict[str, frozenset[str]] = {
    PROPOSED: frozenset({APPROVED, REJECTED, EXPIRED, CANCELLED}),
    APPROVED: frozenset({RELEASABLE, EXPIRED, CANCELLED}),
    RELEASABLE: frozenset({SIGNING, EXPIRED, CANCELLED}),
    SIGNING: frozenset({BROADCAST, FAILED}),
    BROADCAST: frozenset({CONFIRMED, FAILED}),
}
# Moves that only a chain reorganisation makes: a recorded `proposal.state` entry can never
# make them (they are not in _TRANSFER), so "confirmed" is undone only by the chain layer's
# own compensating entry, which the projection reads (see Projection._on_chain_reversal).
_REVERSAL: dict[str, str] = {CONFIRMED: BROADCAST}
_GOVERNANCE: dict[str, frozenset[str]] = {
    PROPOSED: frozenset({APPROVED, REJECTED, EXPIRED, CANCELLED}),
    APPROVED: frozenset({RELEASABLE, EXPIRED, CANCELLED}),
    RELEASABLE: frozenset({APPLIED, EXPIRED, CANCELLED}),
}


def allowed(action: str, source: str) -> frozenset[str]:
    table = _TRANSFER if action == "transfer" else _GOVERNANCE
    return table.get(source, frozenset())


def check_transition(action: str, source: str, target: str, digest_hex: str = "") -> None:
    """Raise WorkflowError unless `source -> target` is legal for this kind of proposal."""
    if target not in allowed(action, source):
        legal = ", ".join(sorted(allowed(action, source))) or "none (terminal)"
        label = f"proposal {digest_hex[:16]}" if digest_hex else "proposal"
        raise WorkflowError(f"illegal transition for {label} ({action}): {source} -> "
                            f"{target}; allowed from {source}: {legal}")


def reversal_target(action: str, source: str) -> str | None:
    """The state a chain reorg takes a `source` proposal back to; None if it does not move.

    Only a transfer's confirmation can be undone by the chain: the transaction is back in
    the mempool (or gone), so the proposal awaits re-confirmation in `broadcast`.
    """
    return _REVERSAL.get(source) if action == "transfer" else None
