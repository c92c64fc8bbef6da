"""The closed set of ledger entry kinds.

Every event of the reserve becomes an entry of one of these kinds; anything else is refused
at append time so a typo cannot create a new, unverified event type. Kinds are
`domain.event`, grouped here by the part of the system that writes them.
"""

from __future__ import annotations

KINDS: frozenset[str] = frozenset({
    # the ledger itself
    "ledger.note",
    "ledger.anchor",
    # custody policy and destinations
    "policy.version",
    "policy.change_proposed",
    "policy.change_applied",
    "destination.proposed",
    "destination.added",
    "destination.removed",
    "vault.registered",
    "vault.frozen",
    "vault.unfreeze_proposed",
    "vault.unfrozen",
    # the transfer workflow
    "proposal.created",
    "proposal.approved",
    "proposal.rejected",
    "proposal.state",
    "proposal.cancelled",
    "proposal.expired",
    # Bitcoin
    "btc.psbt_created",
    "btc.share_received",
    "btc.finalized",
    "btc.broadcast",
    "btc.confirmed",
    "btc.deposit",
    "btc.reorg",
    # EVM
    "evm.safe_tx_created",
    "evm.signature_received",
    "evm.executed",
    "evm.confirmed",
    "evm.deposit",
    "evm.reorg",
    # reconciliation and access
    "reconcile.report",
    "api.request",
    "auth.token_issued",
    "auth.token_revoked",
    "auth.user_changed",
})


def is_known(kind: str) -> bool:
    return kind in KINDS
