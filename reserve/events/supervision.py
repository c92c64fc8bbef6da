"""Events of supervision: licence changes signed by the regulator, alert acknowledgements,
and supervisors' countersignatures of reconciliation reports (docs/supervision.md)."""

from __future__ import annotations

from dataclasses import dataclass

from reserve.events.base import ABSENT, Event, Hex, Json, Time


@dataclass(frozen=True)
class LicenceChanged(Event):
    """A counterparty licence's change as the regulator signed it (offline checkable: the
    signature is over the statement these fields make, reserve.policy.licences)."""

    KIND = "licence.changed"
    licence_id: str
    entity: str
    scope: str
    status: str  # active | suspended | revoked
    effective_at: Time
    number: int  # 1, 2, 3 ... per licence: an old statement cannot be replayed
    regulator_key: str  # note verifier key text
    signature: str  # base64 Ed25519
    # Not signed: the open transfers to this licence's counterparty when it was recorded,
    # [{"vault", "digest", "state"}], written by the service so the alert can name them.
    affects: Json = ABSENT


@dataclass(frozen=True)
class AlertAcknowledged(Event):
    """A supervisor saw the alert of entry `alert_seq` (the entry's actor and time say
    who and when)."""

    KIND = "alert.acknowledged"
    alert_seq: int
    alert_kind: str
    note: str


@dataclass(frozen=True)
class ReportAttested(Event):
    """A supervisor countersigned the reconciliation report or the published statement
    checked in at `report_seq` (`report_sha256`: that document's SHA-256)."""

    KIND = "reconcile.attestation"
    report_seq: int
    report_sha256: Hex
    supervisor_key: str  # note verifier key text
    signature: str  # base64 Ed25519 over the attestation statement
    statement: str


EVENTS: tuple[type[Event], ...] = (LicenceChanged, AlertAcknowledged, ReportAttested)
