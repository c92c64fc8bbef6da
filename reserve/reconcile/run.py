"""Produce, sign and check in a reconciliation report (the shell that ties the parts).

Order matters: the ledger is checkpointed first and only entries inside that checkpoint are
read, so the report names exactly the ledger state it judged; then every vault is scanned at
one pinned block; the pure core compares; the auditor signs; the report's hash is appended
as a `reconcile.report` entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from reserve.errors import ReconcileError
from reserve.ledger import Entry, Ledger
from reserve.ledger.checkpoint import parse_note
from reserve.ledger.entry import format_time
from reserve.reconcile.bitcoin import pinned_chain_views, vault_descriptors
from reserve.reconcile.compute import ledger_view, reconcile
from reserve.reconcile.report import (
    AuditorSigner,
    LedgerPin,
    VaultScope,
    build_body,
    check_in,
    coins_digest,
)
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.bitcoin.vault import Vault

VAULTS_MAX = 100


def compute_body(ledger: Ledger, node: BitcoinRPC, vaults: Sequence[tuple[Vault, int]], *,
                 now: datetime | None = None) -> dict[str, Any]:
    """The unsigned report body. `vaults` are (vault, derivation range end) pairs.

    Requires 1 <= len(vaults) <= VAULTS_MAX, all on one network, distinct ids.
    """
    if not 1 <= len(vaults) <= VAULTS_MAX:
        raise ReconcileError(f"reconcile 1 to {VAULTS_MAX} vaults, got {len(vaults)}")
    networks = {vault.network for vault, _end in vaults}
    if len(networks) != 1 or len({v.vault_id for v, _e in vaults}) != len(vaults):
        raise ReconcileError("vaults of one report must share a network and have distinct ids")
    note = ledger.checkpoint(now=now)
    checkpoint, _signatures = parse_note(note)
    entries = list(ledger.entries(0, checkpoint.tree_size))
    views = [(vault, ledger_view(entries, vault.vault_id), end) for vault, end in vaults]
    block, chains = pinned_chain_views(node, networks.pop(), views)
    results = [reconcile(view, chain) for (_v, view, _e), chain in zip(views, chains, strict=True)]
    scopes = [VaultScope(vault.vault_id, chain.asset, vault_descriptors(vault), end,
                         coins_digest(chain.coins))
              for (vault, end), chain in zip(vaults, chains, strict=True)]
    return build_body(created=format_time(now or datetime.now(UTC)),
                      ledger=LedgerPin(checkpoint.tree_size, checkpoint.root_hash.hex(), note),
                      block=block, scopes=scopes, results=results)


def run_report(ledger: Ledger, node: BitcoinRPC, vaults: Sequence[tuple[Vault, int]],
               signer: AuditorSigner, *, actor: str = "auditor",
               now: datetime | None = None) -> tuple[dict[str, Any], Entry]:
    """Compute, sign and check in a report; returns the signed document and its entry."""
    document = signer.sign(compute_body(ledger, node, vaults, now=now))
    return document, check_in(ledger, document, actor)
