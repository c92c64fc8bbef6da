"""The signing package: everything a custodian's offline signer needs to re-check a release.

A custodian's device must never sign on the coordinator's word. So what it signs from is
self-contained: the ledger entries that decided the release (the proposal, its votes and
state changes, every policy version of the vault, the destinations added, freezes and
unfreezes, the other transfers that count toward the velocity windows, and the chain step
to sign: the PSBT or the Safe transaction), each with its RFC 9162 inclusion proof against
one checkpoint note signed by the ledger key, plus the newest entry of that checkpoint (its
time says how fresh the package is).

The signer (wallets/signer/package.py) trusts none of the selection: it verifies the note
with the key it enrolled, every proof, and then replays the entries with the workflow's own
projection (`replay`, below) and re-runs the pure policy evaluation as of each recorded
time. Inclusion proofs prove presence, not absence: see docs/security-model.md.

The package is plain JSON (entry bodies are their canonical bytes as text), so the file a
custodian carries to an air-gapped machine is exactly what was proven.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reserve.errors import WorkflowError
from reserve.ledger.checkpoint import CheckpointSigner, parse_note
from reserve.proposals.proposal import TransferBody
from reserve.proposals.state import SIGNING
from reserve.transfers import readmodel
from reserve.transfers.licences import LICENCE_KINDS
from reserve.transfers.projection import RELEVANT_KINDS, EntryLike, Projection, ProposalStatus
from reserve.transfers.readmodel import StoredProjection

PACKAGE_FORMAT = "reserve-signing-package/1"
# The chain steps a custodian signs: a Bitcoin PSBT, an EVM Safe transaction.
SIGNABLE_KINDS = ("btc.psbt_created", "evm.safe_tx_created")
VAULT_KINDS = frozenset({"policy.version", "vault.frozen", "vault.unfrozen",
                         "destination.added"})
TRANSITION_KINDS = frozenset({"proposal.state", "proposal.cancelled", "proposal.expired"})
ENTRIES_MAX = 5_000


@dataclass(frozen=True)
class PackageEntry:
    """A ledger entry as a package carries it: the fields of its canonical body."""

    seq: int
    time: str
    kind: str
    actor: str
    payload: dict[str, Any]


def _named_digest(payload: dict[str, Any]) -> str:
    """The proposal an entry is about ("" if none): workflow kinds say `digest`, the
    Bitcoin layer's own entries `proposal_digest`."""
    value = payload.get("digest") or payload.get("proposal_digest")
    return value if isinstance(value, str) else ""


def named_vault(payload: dict[str, Any]) -> str:
    """The vault an entry is about ("" if none): `vault`, or `vault_id` on chain layers'."""
    value = payload.get("vault") or payload.get("vault_id")
    return value if isinstance(value, str) else ""


def _velocity_digests(projection: Projection, status: ProposalStatus) -> set[str]:
    """Other transfers of the vault that the velocity check at approval time counted.

    Requires `status` to have been approved. Generous on purpose: every transfer approved
    within the longest window before this approval, whatever happened to it since.
    """
    policy = projection.vault(status.proposal.vault).policy
    body = status.proposal.body
    if not isinstance(body, TransferBody):
        raise WorkflowError(f"proposal {status.digest[:16]} is not a transfer")
    rules = policy.asset_rules(body.asset)
    window = max((limit.window_seconds for limit in rules.velocity), default=0) \
        if rules is not None else 0
    approved_at = status.approved_at
    if approved_at is None:
        raise WorkflowError(f"proposal {status.digest[:16]} was never approved")
    since = approved_at - timedelta(seconds=window)
    return {other.digest for other in projection.approved_transfers(
        status.proposal.vault, since, approved_at) if other.digest != status.digest}


def named_licences(projection: Projection, status: ProposalStatus) -> frozenset[str]:
    """The counterparty licences the transfer's destinations name under the policy."""
    body = status.proposal.body
    if not isinstance(body, TransferBody):
        return frozenset()
    policy = projection.vault(status.proposal.vault).policy
    return frozenset(d.licence for o in body.outputs
                     if (d := policy.destination(body.asset, o.destination)) is not None
                     and d.licence)


def select_entries(ledger: Any, projection: Projection, status: ProposalStatus) -> list[int]:
    """Sequence numbers of the entries a signer needs to re-decide `status`'s release.

    Reads the ledger once, up to the projection's size: the vault's policy versions,
    destinations, freezes and unfreezes; every entry naming this proposal; every entry
    naming a transfer counted in its velocity windows; every change of a counterparty
    licence its destinations name.
    """
    vault = status.proposal.vault
    digests = {status.digest, *_velocity_digests(projection, status)}
    licences = named_licences(projection, status)
    if isinstance(projection, StoredProjection):
        # The same selection from the indexes: the vault's and licences' kinds through the
        # kind index, the entries naming the proposals through rm_digest_entries.
        seqs = [entry.seq for entry in ledger.entries(0, projection.size, VAULT_KINDS)
                if named_vault(entry.payload) == vault]
        if licences:
            seqs += [entry.seq for entry in ledger.entries(0, projection.size, LICENCE_KINDS)
                     if entry.payload.get("licence_id") in licences]
        seqs = sorted({*seqs, *readmodel.entries_naming(ledger, digests, projection.size)})
        return _bounded(seqs)
    wanted = RELEVANT_KINDS | VAULT_KINDS | LICENCE_KINDS
    seqs = []
    for entry in ledger.entries(0, projection.size):
        kind, payload = entry.kind, entry.payload
        if kind not in wanted and not kind.startswith(("btc.", "evm.")):
            continue
        if (kind in VAULT_KINDS and named_vault(payload) == vault) or \
                _named_digest(payload) in digests or \
                (kind in LICENCE_KINDS and payload.get("licence_id") in licences):
            seqs.append(entry.seq)
    return _bounded(seqs)


def _bounded(seqs: list[int]) -> list[int]:
    if len(seqs) > ENTRIES_MAX:
        raise WorkflowError(f"a signing package would hold {len(seqs)} entries, over the "
                            f"limit of {ENTRIES_MAX}")
    return seqs


def assemble(ledger: Any, digest: str, seqs: Iterable[int], note: str) -> dict[str, Any]:
    """The package of entries `seqs` (and the checkpoint's newest entry), each with its
    inclusion proof against the tree `note` signs. Requires every seq < its tree size."""
    checkpoint, _ = parse_note(note)
    size = checkpoint.tree_size
    chosen = sorted({*seqs, size - 1}) if size else []
    if chosen and not (0 <= chosen[0] and chosen[-1] < size):
        raise WorkflowError(f"entries {chosen[0]}..{chosen[-1]} are not all in the "
                            f"checkpoint of size {size}")
    entries = []
    for seq in chosen:
        entry = ledger.entry(seq)
        entries.append({"seq": seq, "body": bytes(entry.body).decode("utf-8"),
                        "audit_path": [node.hex() for node in
                                       ledger.inclusion_proof(seq, size)]})
    return {"format": PACKAGE_FORMAT, "digest": digest, "checkpoint": note,
            "entries": entries}


def build_signing_package(ledger: Any, digest: str, *,
                          signer: CheckpointSigner | None = None,
                          now: datetime | None = None) -> dict[str, Any]:
    """The signing package of the released transfer `digest` (a prefix of 8+ hex is fine).

    `ledger` is a reserve.ledger.Ledger; `signer` its checkpoint key (default: the key the
    ledger was opened with). With a key, a checkpoint at the current size is made (or
    reused if one exists at that size: the only write), so the package proves every entry
    up to now; without one, the latest stored checkpoint is used if it covers the entries.
    Refuses (WorkflowError, nothing written) a proposal that is not a transfer in `signing`,
    i.e. not yet released, or already broadcast or failed.
    """
    # The read models where the ledger keeps them (a store); a replay otherwise. The
    # signer trusts neither: it replays what the package proves.
    projection: Projection = StoredProjection(ledger) if hasattr(ledger, "attach") \
        else Projection()
    projection.catch_up(ledger)
    status = projection.status(digest)
    if not isinstance(status.proposal.body, TransferBody):
        raise WorkflowError(f"proposal {status.digest[:16]} is a {status.proposal.action}; "
                            "only transfers are signed")
    if status.state != SIGNING:
        raise WorkflowError(f"proposal {status.digest[:16]} is {status.state}; a signing "
                            "package is made once it is released (signing)")
    if not any(step.kind in SIGNABLE_KINDS for step in status.chain_steps):
        raise WorkflowError(f"proposal {status.digest[:16]} has no PSBT or Safe "
                            "transaction recorded to sign")
    seqs = select_entries(ledger, projection, status)
    return assemble(ledger, status.digest, seqs, _checkpoint(ledger, signer, max(seqs), now))


def _checkpoint(ledger: Any, signer: CheckpointSigner | None, seq_max: int,
                now: datetime | None) -> str:
    """A checkpoint at the current size, signed now; without a key, the latest stored one,
    if it covers entry `seq_max` (the package is then only as fresh as that checkpoint)."""
    if signer is not None or getattr(ledger, "signer", None) is not None:
        note: str = ledger.checkpoint(signer, now=now)
        return note
    latest = ledger.latest_checkpoint()
    if latest is None or parse_note(latest)[0].tree_size <= seq_max:
        raise WorkflowError(f"no stored checkpoint covers entry {seq_max} and no checkpoint "
                            "key was given to sign one: open the ledger with its key")
    return str(latest)


def package_json(package: dict[str, Any]) -> str:
    """The package as the file a custodian carries (sorted keys, one trailing newline)."""
    return json.dumps(package, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


# -- replay, for the signer --------------------------------------------------------------
def replay(entries: Iterable[EntryLike], stop_seq: int | None = None) -> Projection:
    """The workflow's projection of a proven subset of entries, those before `stop_seq`.

    The projection normally applies every entry exactly once in order; a package holds a
    subset, so each entry is applied as if the ones in between were of kinds it skips.
    Requires `entries` in increasing seq order. Raises WorkflowError like the projection
    does for entries that contradict the workflow (a vote for an unknown proposal, a
    transition the state machine forbids).
    """
    projection = Projection()
    previous = -1
    for entry in entries:
        if entry.seq <= previous:
            raise WorkflowError(f"package entries out of order at {entry.seq}")
        previous = entry.seq
        if stop_seq is not None and entry.seq >= stop_seq:
            break
        projection.size = entry.seq
        projection.apply(entry)
    return projection


def change_seq(status: ProposalStatus, state: str) -> int:
    """The seq of the last entry that moved `status` into `state`; -1 if none did."""
    found = [change.seq for change in status.changes if change.state == state]
    return found[-1] if found else -1


__all__ = ["ENTRIES_MAX", "PACKAGE_FORMAT", "SIGNABLE_KINDS", "PackageEntry",
           "assemble", "build_signing_package", "change_seq", "named_licences", "named_vault",
           "package_json", "replay", "select_entries"]
