"""Licensed counterparties: the regulator's signed licence changes and the register they make.

The virtual-assets regulator licenses the providers the reserve trades through. Every change
of a licence (granted active, suspended, reinstated, revoked) is a statement the regulator
signs with its Ed25519 key, offline; the service records the statement and its signature as
a `licence.changed` ledger entry, and anyone holding the ledger (or an export) and the
regulator's public key re-checks every change without trusting the service.

A statement carries its `number`: a licence's changes are numbered 1, 2, 3 ... so an old
signed statement (an earlier "active") cannot be replayed after a suspension. A change
takes effect at its `effective_at`; the register answers "what was this licence's status
at time t" (`LicenceState.status_at`), which the policy evaluation asks at release and the
custodian's signer asks as of its checkpoint.

Pure: no clock, no I/O. Signatures use `cryptography`'s Ed25519; the signed bytes are the
RFC 8785 canonical JSON of the statement behind a domain prefix.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from reserve.errors import CheckpointError, LicenceError
from reserve.ledger.checkpoint import VerifierKey
from reserve.present import licence_sentence
from reserve.proposals.proposal import format_time, parse_time

STATEMENT_FORMAT = "reserve-licence-change/1"
DOMAIN = b"reserve/licence/v1\x00"
STATUSES = ("active", "suspended", "revoked")
CHANGES_PER_LICENCE_MAX = 10_000
_LICENCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TEXT_MAX = 200


@dataclass(frozen=True)
class LicenceChange:
    """One signed statement of the regulator about one licence."""

    licence_id: str
    entity: str
    scope: str
    status: str
    effective_at: datetime
    number: int
    regulator_key: str  # note verifier key text, name+hash+base64
    signature: str  # base64 Ed25519 over signed_bytes()

    def statement(self) -> dict[str, Any]:
        return {"format": STATEMENT_FORMAT, "licence_id": self.licence_id,
                "entity": self.entity, "scope": self.scope, "status": self.status,
                "effective_at": format_time(self.effective_at), "number": self.number,
                "regulator_key": self.regulator_key}

    def signed_bytes(self) -> bytes:
        return DOMAIN + bytes(rfc8785.dumps(self.statement()))

    def document(self) -> dict[str, Any]:
        """The file the regulator hands over: the statement and its signature."""
        return {**self.statement(), "signature": self.signature}


def _check_fields(licence_id: str, entity: str, scope: str, status: str,
                  number: int) -> None:
    if not _LICENCE_ID.match(licence_id):
        raise LicenceError(f"licence id {licence_id!r} must be 1-64 letters, digits, '.', "
                           "'_' or '-'")
    for name, value in (("entity", entity), ("scope", scope)):
        if not value or len(value) > TEXT_MAX or any(ord(c) < 32 for c in value):
            raise LicenceError(f"licence {name} must be 1-{TEXT_MAX} printable characters")
    if status not in STATUSES:
        raise LicenceError(f"licence status must be one of {', '.join(STATUSES)}, "
                           f"not {status!r}")
    if not 1 <= number <= CHANGES_PER_LICENCE_MAX:
        raise LicenceError(f"change number {number} is out of range "
                           f"[1, {CHANGES_PER_LICENCE_MAX}]")


def sign_change(private_key: Ed25519PrivateKey, name: str, *, licence_id: str, entity: str,
                scope: str, status: str, effective_at: datetime,
                number: int) -> LicenceChange:
    """The regulator's signed change (run offline, on the regulator's machine)."""
    _check_fields(licence_id, entity, scope, status, number)
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = VerifierKey(name=name, public_key=public).encode()
    unsigned = LicenceChange(licence_id, entity, scope, status, effective_at, number, key, "")
    signature = base64.b64encode(private_key.sign(unsigned.signed_bytes())).decode()
    return LicenceChange(licence_id, entity, scope, status, effective_at, number, key,
                         signature)


def verify_change(change: LicenceChange) -> VerifierKey:
    """The regulator key that signed `change`; LicenceError if the signature is missing,
    malformed or does not verify over exactly these fields."""
    _check_fields(change.licence_id, change.entity, change.scope, change.status,
                  change.number)
    if not change.signature:
        raise LicenceError(f"licence {change.licence_id} change {change.number} carries no "
                           "regulator signature")
    try:
        key = VerifierKey.parse(change.regulator_key)
        raw = base64.b64decode(change.signature, validate=True)
    except (CheckpointError, binascii.Error, ValueError):
        raise LicenceError(f"licence {change.licence_id} change {change.number}: malformed "
                           "regulator key or signature") from None
    try:
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw, change.signed_bytes())
    except (InvalidSignature, ValueError):
        raise LicenceError(f"licence {change.licence_id} change {change.number}: the "
                           f"regulator signature does not verify with {key.name}'s key "
                           "(forged or edited after signing)") from None
    return key


def change_from_document(document: Any) -> LicenceChange:
    """Parse a regulator's change file (not yet verified: call `verify_change`)."""
    if not isinstance(document, dict) or document.get("format") != STATEMENT_FORMAT:
        raise LicenceError(f"not a licence change (expected format {STATEMENT_FORMAT})")
    try:
        return LicenceChange(
            licence_id=str(document["licence_id"]), entity=str(document["entity"]),
            scope=str(document["scope"]), status=str(document["status"]),
            effective_at=parse_time(str(document["effective_at"])),
            number=int(document["number"]), regulator_key=str(document["regulator_key"]),
            signature=str(document.get("signature") or ""))
    except (KeyError, TypeError, ValueError) as error:
        raise LicenceError(f"malformed licence change: {error}") from None


@dataclass(frozen=True)
class LicenceState:
    """Every recorded change of one licence, in order (`seqs` are their ledger entries)."""

    licence_id: str
    regulator_key: str
    changes: tuple[LicenceChange, ...]
    seqs: tuple[int, ...]

    @property
    def latest(self) -> LicenceChange:
        return self.changes[-1]

    def in_force(self, at: datetime) -> LicenceChange | None:
        """The change in force at `at` (the latest one already effective), None if none."""
        found = None
        for change in self.changes:
            if change.effective_at <= at and (found is None or
                                              change.effective_at >= found.effective_at):
                found = change
        return found

    def status_at(self, at: datetime) -> str:
        change = self.in_force(at)
        return change.status if change is not None else "not yet effective"


Register = Mapping[str, LicenceState]


def admit(register: Register, change: LicenceChange, trusted: Iterable[str] | None = None
          ) -> LicenceState:
    """The licence's state once `change` is added; LicenceError if it may not be.

    The signature must verify; when `trusted` is given the signing key must be one of
    those (the regulator keys the vaults' policies name); a licence's changes are all
    signed by the key of its first change and numbered one after another; a revoked
    licence changes no more.
    """
    key = verify_change(change)
    if trusted is not None and change.regulator_key not in set(trusted):
        raise LicenceError(f"licence {change.licence_id}: signed by {key.name}, a key no "
                           "vault's policy names as its regulator (supervision.regulator_key)")
    state = register.get(change.licence_id)
    if state is None:
        if change.number != 1:
            raise LicenceError(f"licence {change.licence_id} is not in the register: its "
                               f"first change must be number 1, not {change.number}")
        return LicenceState(change.licence_id, change.regulator_key, (change,), ())
    if change.regulator_key != state.regulator_key:
        raise LicenceError(f"licence {change.licence_id} was issued under another regulator "
                           "key; its changes must all be signed by that key")
    if change.number != state.latest.number + 1:
        raise LicenceError(f"licence {change.licence_id}: change number {change.number} does "
                           f"not follow {state.latest.number} (replayed or out of order)")
    if state.latest.status == "revoked":
        raise LicenceError(f"licence {change.licence_id} is revoked; it changes no more")
    return LicenceState(state.licence_id, state.regulator_key, (*state.changes, change),
                        state.seqs)


def recorded(state: LicenceState, seq: int) -> LicenceState:
    """`state` with its newest change recorded at ledger entry `seq`."""
    return LicenceState(state.licence_id, state.regulator_key, state.changes,
                        (*state.seqs, seq))


def standing_sentence(state: LicenceState | None, licence_id: str, entity_hint: str,
                      at: datetime) -> tuple[str, str]:
    """(status, sentence) of a counterparty licence at `at`: "active" when it may be paid.

    For example "counterparty Example Exchange's licence L-042 suspended since
    2026-01-05T09:00:00Z".
    """
    if state is None:
        return "unknown", licence_sentence(entity_hint, licence_id, "unknown", None)
    change = state.in_force(at)
    if change is None:
        first = state.changes[0]
        return "not yet effective", licence_sentence(first.entity, licence_id,
                                                     "not yet effective", first.effective_at)
    return change.status, licence_sentence(change.entity, licence_id, change.status,
                                           change.effective_at)
