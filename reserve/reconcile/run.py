"""Produce, sign and check in a reconciliation report (the shell that ties the parts).

Order matters: the ledger is checkpointed first and only entries inside that checkpoint are
read, so the report names exactly the ledger state it judged; then every vault is scanned at
one pinned block; the pure core compares; the auditor signs; the report's hash is appended
as a `reconcile.report` entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from reserve.errors import ReconcileError
from reserve.ledger.canonical import canonical_bytes
from reserve.ledger.checkpoint import parse_note
from reserve.ledger.entry import Entry, format_time
from reserve.ledger.store import Ledger
from reserve.reconcile import evm as reconcile_evm
from reserve.reconcile.bitcoin import pinned_chain_views, vault_descriptors
from reserve.reconcile.compute import ledger_view, reconcile
from reserve.reconcile.releases import releases_of
from reserve.reconcile.report import (
    AuditorSigner,
    BlockPin,
    LedgerPin,
    VaultScope,
    build_body,
    check_in,
    coins_digest,
)
from wallets.bitcoin.rpc import BitcoinRPC
from wallets.bitcoin.vault import Vault

VAULTS_MAX = 100
# (a web3 connection, the EVM vaults to reconcile on its chain)
EVMVaults = tuple[Any, Sequence["reconcile_evm.EVMTarget"]]


def compute_body(ledger: Ledger, node: BitcoinRPC | None, vaults: Sequence[tuple[Vault, int]],
                 *, now: datetime | None = None, evm: EVMVaults | None = None
                 ) -> dict[str, Any]:
    """The unsigned report body. `vaults` are (vault, derivation range end) pairs; `evm`
    (web3, targets) adds an `evm` section for EVM vaults (reserve.reconcile.evm).

    Requires 1 <= len(vaults) + EVM targets <= VAULTS_MAX, Bitcoin vaults on one network
    with a node, distinct ids. Without Bitcoin vaults the report's `block` is the EVM pin.
    """
    targets = evm[1] if evm else ()
    if not 1 <= len(vaults) + len(targets) <= VAULTS_MAX:
        raise ReconcileError(f"reconcile 1 to {VAULTS_MAX} vaults, got "
                             f"{len(vaults) + len(targets)}")
    networks = {vault.network for vault, _end in vaults}
    ids = [v.vault_id for v, _e in vaults] + [t.vault_id for t in targets]
    if len(networks) > 1 or len(set(ids)) != len(ids):
        raise ReconcileError("vaults of one report must share a network and have distinct ids")
    if vaults and node is None:
        raise ReconcileError("Bitcoin vaults need a Bitcoin node")
    note = ledger.checkpoint(now=now)
    checkpoint, _signatures = parse_note(note)
    entries = list(ledger.entries(0, checkpoint.tree_size))
    released = releases_of(entries)  # the workflow's evidence, read once for every vault
    evm_part = reconcile_evm.section(evm[0], targets, entries, released) if evm else None
    views = [(vault, ledger_view(entries, vault.vault_id, releases=released), end)
             for vault, end in vaults]
    if vaults and node is not None:
        block, chains = pinned_chain_views(node, networks.pop(), views)
    else:
        pin = evm_part["block"] if evm_part else {}
        block, chains = BlockPin(f"evm:{pin['chain_id']}", pin["number"], pin["hash"]), []
    results = [reconcile(view, chain) for (_v, view, _e), chain in zip(views, chains, strict=True)]
    scopes = [VaultScope(vault.vault_id, chain.asset, vault_descriptors(vault), end,
                         coins_digest(chain.coins))
              for (vault, end), chain in zip(vaults, chains, strict=True)]
    body = build_body(created=format_time(now or ledger.now()),
                      ledger=LedgerPin(checkpoint.tree_size, checkpoint.root_hash.hex(), note),
                      block=block, scopes=scopes, results=results)
    if evm_part is not None:
        body["evm"] = evm_part
        canonical_bytes(body)
    return body


def run_report(ledger: Ledger, node: BitcoinRPC | None, vaults: Sequence[tuple[Vault, int]],
               signer: AuditorSigner, *, actor: str = "auditor",
               now: datetime | None = None, evm: EVMVaults | None = None
               ) -> tuple[dict[str, Any], Entry]:
    """Compute, sign and check in a report; returns the signed document and its entry."""
    document = signer.sign(compute_body(ledger, node, vaults, now=now, evm=evm))
    return document, check_in(ledger, document, actor)
