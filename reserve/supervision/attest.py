"""A supervisor's countersignature of a reconciliation report or a published statement,
checkable offline.

The supervisor signs, with its own Ed25519 key, a statement naming the document by the
seq of its ledger entry (`reconcile.report` or `statement.published`) and its SHA-256,
and what it checked; the service records it as a `reconcile.attestation` entry, and the
document is then shown with who has checked it. Anyone with the ledger re-checks the
signature against the key the entry names.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from reserve.errors import CheckpointError, ReconcileError
from reserve.events.records import ReconcileReport
from reserve.events.supervision import ReportAttested
from reserve.events.transparency import StatementPublished
from reserve.ledger.checkpoint import VerifierKey
from reserve.supervision.keys import SigningKey
from reserve.transfers import readmodel

FORMAT = "reserve-attestation/1"
DOMAIN = b"reserve/attestation/v1\x00"
STATEMENT_MAX = 500
ATTESTATION_KINDS = frozenset({ReportAttested.KIND})


def _signed_bytes(report_seq: int, report_sha256: str, key: str, statement: str) -> bytes:
    return DOMAIN + bytes(rfc8785.dumps({
        "format": FORMAT, "report_seq": report_seq, "report_sha256": report_sha256,
        "supervisor_key": key, "statement": statement}))


def subject_sha256(entry: Any) -> str:
    """The SHA-256 of the document an attestable entry checked in; ReconcileError for an
    entry of another kind."""
    if entry.kind == ReconcileReport.KIND:
        return str(ReconcileReport.of(entry).report_sha256)
    if entry.kind == StatementPublished.KIND:
        return str(StatementPublished.of(entry).statement_sha256)
    raise ReconcileError(f"entry {entry.seq} is a {entry.kind}: only reconciliation reports "
                         "and published statements are attested")


def attest(key: SigningKey, report_entry: Any, statement: str) -> ReportAttested:
    """The attestation event of `report_entry` (a `reconcile.report` or
    `statement.published` entry)."""
    sha256 = subject_sha256(report_entry)
    if not statement.strip() or len(statement) > STATEMENT_MAX:
        raise ReconcileError(f"an attestation says what was checked in 1-{STATEMENT_MAX} "
                             "characters")
    verifier = key.verifier.encode()
    data = _signed_bytes(report_entry.seq, sha256, verifier, statement)
    return ReportAttested(report_seq=report_entry.seq, report_sha256=sha256,
                          supervisor_key=verifier,
                          signature=base64.b64encode(key.private_key.sign(data)).decode(),
                          statement=statement)


def verify(attestation: ReportAttested, report_entry: Any) -> VerifierKey:
    """The supervisor key that signed; ReconcileError when it names another report or the
    signature does not verify."""
    sha256 = subject_sha256(report_entry)
    if attestation.report_seq != report_entry.seq or attestation.report_sha256 != sha256:
        raise ReconcileError(f"attestation names report {attestation.report_seq} "
                             f"({attestation.report_sha256[:16]}), not entry "
                             f"{report_entry.seq} ({sha256[:16]})")
    try:
        key = VerifierKey.parse(attestation.supervisor_key)
        raw = base64.b64decode(attestation.signature, validate=True)
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw, _signed_bytes(
            attestation.report_seq, attestation.report_sha256, attestation.supervisor_key,
            attestation.statement))
    except (CheckpointError, binascii.Error, InvalidSignature, ValueError):
        raise ReconcileError("the supervisor's signature does not verify over this "
                             "attestation") from None
    return key


@dataclass(frozen=True)
class Attestation:
    seq: int
    time: str
    by: str
    key: str
    statement: str
    verified: bool

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "by": self.by, "key": self.key,
                "statement": self.statement, "verified": self.verified}


def _document_sha256(entry: Any) -> str | None:
    """The SHA-256 of the document a report or statement entry checked in (else None)."""
    if entry.kind == ReconcileReport.KIND:
        return str(ReconcileReport.of(entry).report_sha256)
    if entry.kind == StatementPublished.KIND:
        return str(StatementPublished.of(entry).statement_sha256)
    return None


def attestations_by_report(ledger: Any, report_entries: list[Any]
                           ) -> dict[int, list[Attestation]]:
    """report seq -> its attestations, each re-verified, oldest first.

    The attestations are found through the document index (`rm_digest_entries`, by the
    document's SHA-256), so the cost is theirs, not the history's since the report."""
    reports = {entry.seq: entry for entry in report_entries}
    found: dict[int, list[Attestation]] = {seq: [] for seq in reports}
    by_sha = {sha: seq for seq, entry in reports.items()
              if (sha := _document_sha256(entry)) is not None}
    if not by_sha:
        return found
    readmodel.current(ledger)
    for seq in readmodel.entries_naming(ledger, by_sha, ledger.size()):
        entry = ledger.entry(seq)
        if entry.kind not in ATTESTATION_KINDS:
            continue
        event = ReportAttested.of(entry)
        report = reports.get(event.report_seq)
        if report is None or by_sha.get(event.report_sha256) != report.seq:
            continue
        try:
            verify(event, report)
            ok = True
        except ReconcileError:
            ok = False
        found[report.seq].append(Attestation(entry.seq, entry.time, entry.actor,
                                             event.supervisor_key, event.statement, ok))
    return found


def attestations_of(ledger: Any, report_entry: Any) -> list[Attestation]:
    """Every attestation of the report (or statement), each re-verified, oldest first."""
    return attestations_by_report(ledger, [report_entry])[report_entry.seq]
