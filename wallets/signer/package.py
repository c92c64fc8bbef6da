"""The custodian's signer checks a release itself, offline, from a signing package.

A custodian's device never trusts the coordinator's word. It trusts only what the custodian
enrolled with (`Enrolment`: the ledger's verifier key, the vault, and the vault's policy
hash or custodian set) and re-derives everything else from the package
(reserve/transfers/package.py):

1. the checkpoint note is signed by the enrolled ledger key, and is fresh enough;
2. every entry's RFC 9162 inclusion proof verifies against that checkpoint's root;
3. the entries replay through the workflow's own projection: the proposal document hashes
   to the digest named, votes, state changes and chain steps are legal moves;
4. the policy in force is the enrolled one, and the proposal was made under it;
5. the pure policy evaluation, re-run as of the recorded times, says the transfer could be
   approved when it was (quorum of valid signatures over this digest, distinct
   institutions, tier, allowlist, velocity) and released when it was (time delay over,
   destinations past cooling-off, not frozen); and as of the checkpoint the vault is not
   frozen and no newer policy replaced the one it was approved under;
6. the chain step to sign moves exactly what the proposal says, output for output
   (`check_bitcoin`, `check_evm`, reusing the PSBT and Safe checks).

Any failure raises SignerError with the reason. Pure: no clock (`now` is passed), no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from reserve.errors import MismatchError, ReserveError, SignerError
from reserve.ledger.checkpoint import Checkpoint, VerifierKey, verify_note
from reserve.ledger.merkle import leaf_hash, verify_inclusion
from reserve.policy import loader
from reserve.policy.evaluate import Decision, evaluate
from reserve.policy.model import Policy
from reserve.present import format_amount
from reserve.proposals.proposal import Proposal, TransferBody, format_time, parse_time
from reserve.proposals.state import APPROVED, RELEASABLE, SIGNING
from reserve.transfers.chain import ChainStep, ReleaseOrder
from reserve.transfers.licences import LICENCE_KINDS, register_of
from reserve.transfers.package import (
    ENTRIES_MAX,
    PACKAGE_FORMAT,
    SIGNABLE_KINDS,
    PackageEntry,
    change_seq,
    named_vault,
    replay,
)
from reserve.transfers.projection import Projection, ProposalStatus

ENROLMENT_FORMAT = "reserve-signer-enrolment/1"
CHECKPOINT_AGE_MAX_SECONDS_DEFAULT = 86_400
CLOCK_SKEW_SECONDS = 300
TIME_DISORDER_SECONDS = 60
AUDIT_PATH_MAX = 64


@dataclass(frozen=True)
class EnrolledCustodian:
    id: str
    institution: str
    approval_public_key: str  # hex


@dataclass(frozen=True)
class Enrolment:
    """What a custodian's device trusts, set once when the custodian joins the vault.

    Either `policy_sha256` (the exact policy; a policy change means enrolling again) or
    `custodians` (the custodian set: any policy version with exactly these custodians and
    keys is accepted, its other rules taken from the ledger). `safe_address` and `tokens`
    (asset name -> ERC-20 address) are for EVM vaults.
    """

    ledger_key: VerifierKey
    vault: str
    policy_sha256: str = ""
    custodians: tuple[EnrolledCustodian, ...] = ()
    checkpoint_age_max_seconds: int = CHECKPOINT_AGE_MAX_SECONDS_DEFAULT
    safe_address: str = ""
    tokens: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if bool(self.policy_sha256) == bool(self.custodians):
            raise SignerError("an enrolment names the policy hash or the custodian set "
                              "(exactly one)")
        if self.policy_sha256 and (len(self.policy_sha256) != 64 or any(
                c not in "0123456789abcdef" for c in self.policy_sha256)):
            raise SignerError("enrolment policy_sha256 must be 64 lowercase hex digits")
        if not self.vault:
            raise SignerError("an enrolment names its vault")
        if not 0 < self.checkpoint_age_max_seconds <= 366 * 86_400:
            raise SignerError("checkpoint_age_max_seconds must be within 1 s .. 366 days")

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "format": ENROLMENT_FORMAT, "ledger_key": self.ledger_key.encode(),
            "vault": self.vault, "checkpoint_age_max_seconds": self.checkpoint_age_max_seconds}
        if self.policy_sha256:
            document["policy_sha256"] = self.policy_sha256
        else:
            document["custodians"] = [
                {"id": c.id, "institution": c.institution,
                 "approval_public_key": c.approval_public_key} for c in self.custodians]
        if self.safe_address:
            document["safe_address"] = self.safe_address
        if self.tokens:
            document["tokens"] = dict(self.tokens)
        return document

    @classmethod
    def from_json(cls, document: Any) -> Enrolment:
        if not isinstance(document, dict) or document.get("format") != ENROLMENT_FORMAT:
            raise SignerError(f"not an enrolment (expected format {ENROLMENT_FORMAT})")
        try:
            return cls(
                ledger_key=VerifierKey.parse(str(document["ledger_key"])),
                vault=str(document["vault"]),
                policy_sha256=str(document.get("policy_sha256", "")),
                custodians=tuple(sorted(
                    (EnrolledCustodian(str(c["id"]), str(c["institution"]),
                                       str(c["approval_public_key"]).lower())
                     for c in document.get("custodians", ())), key=lambda c: c.id)),
                checkpoint_age_max_seconds=int(document.get(
                    "checkpoint_age_max_seconds", CHECKPOINT_AGE_MAX_SECONDS_DEFAULT)),
                safe_address=str(document.get("safe_address", "")),
                tokens=tuple(sorted((str(k), str(v))
                                    for k, v in dict(document.get("tokens", {})).items())))
        except SignerError:
            raise
        except (ReserveError, KeyError, TypeError, ValueError) as error:
            raise SignerError(f"malformed enrolment: {error}") from None


def custodian_set(policy: Policy) -> tuple[EnrolledCustodian, ...]:
    """A policy's custodians as an enrolment holds them (sorted by id)."""
    return tuple(sorted((EnrolledCustodian(c.id, c.institution, c.approval_public_key.hex())
                         for c in policy.custodians), key=lambda c: c.id))


@dataclass(frozen=True)
class VerifiedPackage:
    """A package that passed every check except the chain step's (see check_bitcoin/evm)."""

    digest: str
    proposal: Proposal
    policy: Policy
    policy_sha256: str
    order: ReleaseOrder
    step: ChainStep
    checkpoint: Checkpoint
    checkpoint_time: datetime
    approved_at: datetime
    released_at: datetime
    approval: Decision
    release: Decision

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why it passes: the package's checks, then the policy engine's own sentences."""
        seen: list[str] = []
        for line in (*self.approval.satisfied, *self.release.satisfied):
            if line not in seen:
                seen.append(line)
        return (f"checkpoint of {self.checkpoint.tree_size} entries signed by "
                f"{self.checkpoint.origin}; newest entry {format_time(self.checkpoint_time)}",
                f"policy {self.policy.vault} v{self.policy.version} "
                f"(sha256 {self.policy_sha256[:16]}...) matches this device's enrolment",
                f"approved {format_time(self.approved_at)} by "
                f"{', '.join(self.approval.approvers)} "
                f"({', '.join(self.approval.institutions)})",
                f"released {format_time(self.released_at)}, vault not frozen",
                *seen)


# -- 1, 2: the checkpoint and the proofs -------------------------------------------------
def _proven_entries(package: dict[str, Any], key: VerifierKey
                    ) -> tuple[Checkpoint, list[PackageEntry]]:
    note = package.get("checkpoint")
    if not isinstance(note, str):
        raise SignerError("package carries no checkpoint note")
    try:
        checkpoint = verify_note(note, key)
    except ReserveError as error:
        raise SignerError(f"checkpoint is not signed by the enrolled ledger key "
                          f"{key.name}: {error}") from None
    raw = package.get("entries")
    if not isinstance(raw, list) or not 0 < len(raw) <= ENTRIES_MAX + 1:
        raise SignerError(f"a package holds 1..{ENTRIES_MAX + 1} entries")
    entries: list[PackageEntry] = []
    for item in raw:
        entries.append(_proven_entry(item, checkpoint))
    seqs = [entry.seq for entry in entries]
    if seqs != sorted(set(seqs)):
        raise SignerError("package entries are not in increasing order of seq")
    return checkpoint, entries


def _proven_entry(item: Any, checkpoint: Checkpoint) -> PackageEntry:
    try:
        seq, body = int(item["seq"]), str(item["body"]).encode("utf-8")
        path = [bytes.fromhex(node) for node in item["audit_path"]]
    except (KeyError, TypeError, ValueError):
        raise SignerError("malformed package entry (needs seq, body, audit_path)") from None
    size = checkpoint.tree_size
    if len(path) > AUDIT_PATH_MAX or not verify_inclusion(leaf_hash(body), seq, size, path,
                                                          checkpoint.root_hash):
        raise SignerError(f"entry {seq}: inclusion proof does not verify against the "
                          f"checkpoint of {size} entries (altered or not in the ledger)")
    try:
        fields = json.loads(body)
        entry = PackageEntry(seq=int(fields["seq"]), time=str(fields["time"]),
                             kind=str(fields["kind"]), actor=str(fields["actor"]),
                             payload=dict(fields["payload"]))
    except (KeyError, TypeError, ValueError):
        raise SignerError(f"entry {seq}: body is not a ledger entry") from None
    if entry.seq != seq:
        raise SignerError(f"entry {seq}: body says seq {entry.seq}")
    return entry


def _check_times(entries: Sequence[PackageEntry]) -> None:
    """Entry times must not go backwards (beyond TIME_DISORDER_SECONDS): with the newest no
    later than this device's clock, no entry (a release, say) can be dated into the future
    to end a delay early.

    A little disorder is honest: a step's entries are dated when its action began, a chain
    layer's own entry (btc.psbt_created) when it was written, milliseconds apart.
    """
    latest: PackageEntry | None = None
    for entry in entries:
        try:
            at = parse_time(entry.time)
        except ReserveError:
            raise SignerError(f"entry {entry.seq}: time {entry.time!r} is not a time") from None
        if latest is not None and at < parse_time(latest.time) - timedelta(
                seconds=TIME_DISORDER_SECONDS):
            raise SignerError(f"entry {entry.seq} is dated {entry.time}, before entry "
                              f"{latest.seq} ({latest.time}): the ledger's times go "
                              "backwards")
        if latest is None or at > parse_time(latest.time):
            latest = entry


def _checkpoint_time(entries: Sequence[PackageEntry], checkpoint: Checkpoint,
                     enrolment: Enrolment, now: datetime) -> datetime:
    """The time of the checkpoint's newest entry, which the package must carry."""
    _check_times(entries)
    newest = entries[-1]
    if newest.seq != checkpoint.tree_size - 1:
        raise SignerError(f"package lacks the checkpoint's newest entry "
                          f"{checkpoint.tree_size - 1}, so its freshness is unknown")
    at = parse_time(newest.time)
    age = (now - at).total_seconds()
    if age > enrolment.checkpoint_age_max_seconds:
        raise SignerError(f"checkpoint is stale: its newest entry is from {format_time(at)}, "
                          f"more than {enrolment.checkpoint_age_max_seconds} s ago")
    if age < -CLOCK_SKEW_SECONDS:
        raise SignerError(f"checkpoint's newest entry is dated {format_time(at)}, in this "
                          "device's future: check the clock")
    return at


# -- 3, 4: replay and the policy ---------------------------------------------------------
def _replay(entries: Sequence[PackageEntry], stop_seq: int | None = None) -> Projection:
    try:
        return replay(entries, stop_seq)
    except ReserveError as error:
        raise SignerError(f"package entries do not replay: {error}") from None


def _check_enrolled(policy: Policy, enrolment: Enrolment, when: str) -> str:
    sha = loader.policy_sha256(policy)
    if policy.vault != enrolment.vault:
        raise SignerError(f"package is for vault {policy.vault!r}; this device is enrolled "
                          f"for {enrolment.vault!r}")
    if enrolment.policy_sha256 and sha != enrolment.policy_sha256:
        raise SignerError(f"policy {policy.vault} v{policy.version} in force {when} "
                          f"(sha256 {sha}) is not the enrolled policy "
                          f"(sha256 {enrolment.policy_sha256})")
    if enrolment.custodians and custodian_set(policy) != enrolment.custodians:
        raise SignerError(f"policy {policy.vault} v{policy.version} in force {when} has "
                          "another custodian set than the enrolled one")
    return sha


def _status(projection: Projection, digest: str) -> ProposalStatus:
    status = projection.proposals.get(digest)
    if status is None:
        raise SignerError(f"no proposal {digest} in the package: it was never proposed "
                          "(or its proposal entry is missing)")
    return status


def _refusal(decision: Decision, what: str) -> SignerError:
    reasons = [*decision.refused, *decision.missing]
    if decision.ignored:
        reasons.append("ignored: " + "; ".join(decision.ignored))
    return SignerError(f"{what}: " + "; ".join(reasons or ["policy says no"]))


def _decide_at(entries: Sequence[PackageEntry], status: ProposalStatus, state: str
               ) -> tuple[Decision, datetime, Policy]:
    """The policy's decision on `status` just before the entry that moved it into `state`,
    at that entry's time, from the entries before it."""
    seq = change_seq(status, state)
    if seq < 0:
        raise SignerError(f"proposal {status.digest[:16]} never entered {state}")
    at = next(change.at for change in status.changes if change.seq == seq)
    before = _replay(entries, seq)
    earlier = _status(before, status.digest)
    policy = before.vault(status.proposal.vault).policy
    decision = evaluate(policy, earlier.proposal, earlier.votes,
                        replace(before.history(status.proposal.vault),
                                licences=_register(entries, seq)), at)
    return decision, at, policy


def _register(entries: Sequence[PackageEntry], stop_seq: int | None = None) -> Any:
    """The licence register from the package's proven licence entries (each signature is
    checked again here, against the key it names; the policy says which key it trusts)."""
    try:
        return register_of(entries, stop_seq)
    except ReserveError as error:
        raise SignerError(f"package licence entries do not verify: {error}") from None


def _check_licences_now(entries: Sequence[PackageEntry], status: ProposalStatus,
                        policy: Policy, at: datetime) -> None:
    """As of the checkpoint, every counterparty licence the transfer pays must be active:
    a suspension recorded after the release still stops the signature."""
    decision = evaluate(policy, status.proposal, status.votes,
                        replace(_replay(entries).history(status.proposal.vault),
                                licences=_register(entries)), at)
    held = [line for line in (*decision.missing, *decision.refused)
            if line.startswith("counterparty ")]
    if held:
        raise SignerError("; ".join(held))


def verify_signing_package(package: Any, enrolment: Enrolment, *,
                           now: datetime) -> VerifiedPackage:
    """Check `package` against `enrolment` as of this device's time `now` (aware).

    Returns what passed; raises SignerError with the reason otherwise. The chain step
    still needs `check_bitcoin` or `check_evm`.
    """
    if not isinstance(package, dict) or package.get("format") != PACKAGE_FORMAT:
        raise SignerError(f"not a signing package (expected format {PACKAGE_FORMAT})")
    digest = str(package.get("digest", "")).lower()
    if len(digest) != 64:
        raise SignerError("package digest must be 64 hex digits")
    checkpoint, entries = _proven_entries(package, enrolment.ledger_key)
    checkpoint_time = _checkpoint_time(entries, checkpoint, enrolment, now)
    # Only the enrolled vault's entries are replayed; others (the checkpoint's newest entry
    # may be about another vault) serve as proven context only.
    entries = [e for e in entries if named_vault(e.payload) == enrolment.vault
               or e.kind in LICENCE_KINDS]
    final = _replay(entries)
    status = _status(final, digest)
    proposal = status.proposal
    if not isinstance(proposal.body, TransferBody):
        raise SignerError(f"proposal {digest[:16]} is a {proposal.action}, not a transfer")
    if status.state != SIGNING:
        raise SignerError(f"proposal {digest[:16]} is {status.state}, not released for "
                          "signing")
    approval, approved_at, _ = _decide_at(entries, status, APPROVED)
    if not approval.may_approve:
        raise _refusal(approval, f"not approvable when it was approved "
                                 f"({format_time(approved_at)})")
    if change_seq(status, RELEASABLE) < 0:
        raise SignerError(f"proposal {digest[:16]} never became releasable")
    release, released_at, policy = _decide_at(entries, status, SIGNING)
    if not release.releasable:
        raise _refusal(release, f"not releasable when it was released "
                                f"({format_time(released_at)})")
    sha = _check_enrolled(policy, enrolment, "at release")
    vault = final.vault(proposal.vault)
    if vault.freeze is not None:
        raise SignerError(f"vault {proposal.vault} is frozen since "
                          f"{format_time(vault.freeze.since)} by {vault.freeze.by}"
                          f"{f' ({vault.freeze.reason})' if vault.freeze.reason else ''}")
    if vault.policy.version != proposal.policy_version:
        raise SignerError(f"stale policy version: the proposal was approved under policy "
                          f"v{proposal.policy_version}; v{vault.policy.version} is in force "
                          "as of the checkpoint")
    _check_enrolled(vault.policy, enrolment, "as of the checkpoint")
    _check_licences_now(entries, status, vault.policy, now)
    steps = [step for step in status.chain_steps if step.kind in SIGNABLE_KINDS]
    if not steps:
        raise SignerError(f"package holds no PSBT or Safe transaction for {digest[:16]}")
    return VerifiedPackage(
        digest=digest, proposal=proposal, policy=policy, policy_sha256=sha,
        order=ReleaseOrder.from_proposal(proposal), step=steps[-1], checkpoint=checkpoint,
        checkpoint_time=checkpoint_time, approved_at=approved_at, released_at=released_at,
        approval=approval, release=release)


# -- 6: the chain step -------------------------------------------------------------------
def check_bitcoin(verified: VerifiedPackage, vault: Any) -> Any:
    """The PSBT of the package, proven to spend `vault`'s coins (a wallets.bitcoin Vault)
    and to pay exactly the proposal's outputs; returns (psbt, summary)."""
    from wallets.bitcoin.adapter import approved_transfer
    from wallets.bitcoin.psbt_check import check_against_transfer, describe, parse_psbt

    if verified.step.kind != "btc.psbt_created":
        raise SignerError(f"package's chain step is {verified.step.kind}, not a PSBT")
    if vault.vault_id != verified.proposal.vault or vault.network != verified.proposal.network:
        raise SignerError(f"vault config is {vault.vault_id} on {vault.network}; the package "
                          f"is for {verified.proposal.vault} on {verified.proposal.network}")
    payload = verified.step.payload
    try:
        # The recorded psbt_sha256 is of the full PSBT the service built (with previous
        # transactions); the entry carries the compact one, and every check is on it.
        psbt = parse_psbt(str(payload["psbt_base64"]))
        summary = describe(psbt, vault)
        check_against_transfer(summary, vault, approved_transfer(verified.order))
    except SignerError:
        raise
    except (ReserveError, KeyError) as error:
        raise SignerError(f"PSBT refused: {error}") from None
    return psbt, summary


def check_evm(verified: VerifiedPackage, enrolment: Enrolment) -> Any:
    """The Safe transaction of the package, proven to move exactly the proposal's one
    output from the enrolled Safe; returns a wallets.signer.evm Review."""
    from wallets.evm.adapter import chain_id_of
    from wallets.evm.safe_tx import SafeTx, checksum, safe_tx_hash
    from wallets.evm.transfer import ETH, ApprovedEVMTransfer, require_matches
    from wallets.signer.evm import Review

    if verified.step.kind != "evm.safe_tx_created":
        raise SignerError(f"package's chain step is {verified.step.kind}, not a Safe "
                          "transaction")
    if not enrolment.safe_address:
        raise SignerError("this enrolment names no Safe address: enrol with --safe")
    order = verified.order
    payload = verified.step.payload
    try:
        if len(order.outputs) != 1:
            raise SignerError("a Safe transfer pays exactly one destination")
        asset = order.asset if order.asset == ETH else dict(enrolment.tokens).get(order.asset)
        if asset is None:
            raise SignerError(f"this enrolment names no token address for {order.asset}")
        transfer = ApprovedEVMTransfer.from_json(dict(payload["transfer"]))
        expected = ApprovedEVMTransfer(
            proposal_digest=order.proposal_digest, policy_version=order.policy_version,
            vault_id=order.vault_id, chain_id=chain_id_of(order.chain),
            safe_address=checksum(enrolment.safe_address), asset=asset,
            to=order.outputs[0].destination, amount_wei=order.outputs[0].amount,
            nonce=transfer.nonce)
        if transfer != expected:
            raise MismatchError("approved transfer", expected.as_json(), transfer.as_json())
        tx = SafeTx.from_json(dict(payload["safe_tx"]))
        require_matches(transfer, tx)
        digest = safe_tx_hash(transfer.chain_id, transfer.safe_address, tx)
        claimed = str(payload["safe_tx_hash"]).lower().removeprefix("0x")
        if claimed != digest.hex():
            raise MismatchError("Safe transaction hash", digest.hex(), claimed)
    except SignerError:
        raise
    except (ReserveError, KeyError, TypeError, ValueError) as error:
        raise SignerError(f"Safe transaction refused: {error}") from None
    return Review(transfer=transfer, tx=tx, digest=digest)


def describe_package(verified: VerifiedPackage) -> list[str]:
    """What will be signed, in asset units, then why the signer lets it through."""
    proposal, body = verified.proposal, verified.proposal.body
    if not isinstance(body, TransferBody):
        raise SignerError(f"proposal {verified.digest[:16]} is not a transfer")
    lines = [f"proposal   {verified.digest}",
             f"vault      {proposal.vault} on {proposal.network} ({proposal.chain})",
             f"purpose    {proposal.purpose} (reference {proposal.reference or '-'}, "
             f"proposed by {proposal.proposer})"]
    labels = {d.address.lower(): d.label for d in verified.policy.destinations
              if d.asset == body.asset}
    lines += [f"pays       {format_amount(o.amount, body.asset)} to {o.destination}"
              + (f" ({labels[o.destination.lower()]})" if o.destination.lower() in labels
                 else " (a destination added by proposal)")
              for o in body.outputs]
    lines.append(f"total      {format_amount(body.amount, body.asset)}; fee at most "
                 f"{format_amount(body.fee_max, body.asset)}")
    lines.append(f"signs      {verified.step.kind}")
    lines.append("passes because:")
    lines += [f"  - {reason}" for reason in verified.reasons]
    return lines
