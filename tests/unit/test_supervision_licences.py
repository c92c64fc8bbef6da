"""Licence changes: signed by the regulator, refused (nothing written) when forged, unsigned,
replayed or from a key no policy trusts; a suspension holds a transfer with a sentence that
says so, a revocation refuses it; the register re-checks offline from an export."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from reserve.errors import LicenceError, WorkflowError
from reserve.ledger import Ledger
from reserve.policy.licences import change_from_document, verify_change
from reserve.transfers.licences import LicenceBook
from reserve.transfers.service import WorkflowService
from tests.support.supervision import (
    EXCHANGE,
    IMPOSTOR,
    LICENCE,
    change,
    licensed_policy,
    regulator_key_text,
)
from tests.support.workflow import (
    DAY,
    HOUR,
    MEMORY_URL,
    SETTLEMENT,
    T0,
    FakeChain,
    approve,
    propose,
    workflow_service,
)

EARLIER = T0 - timedelta(days=30)


def _service() -> tuple[Ledger, WorkflowService]:
    ledger = Ledger.open(MEMORY_URL)
    return ledger, workflow_service(ledger, licensed_policy())


@pytest.mark.parametrize("tamper", [
    lambda c: replace(c, status="active" if c.status != "active" else "suspended"),
    lambda c: replace(c, entity="Someone Else Ltd"),
    lambda c: replace(c, signature=change("active", 1, T0 + DAY * timedelta(seconds=1)).signature),
])
def test_a_forged_change_is_refused_and_nothing_is_written(tamper: object) -> None:
    ledger, service = _service()
    before = ledger.size()
    with pytest.raises(LicenceError, match="does not verify"):
        service.record_licence_change(tamper(change("active", 1, EARLIER)), "regulator")  # type: ignore[operator]
    assert ledger.size() == before


def test_a_missing_signature_is_refused_and_nothing_is_written() -> None:
    ledger, service = _service()
    before = ledger.size()
    document = change("active", 1, EARLIER).document()
    document.pop("signature")
    with pytest.raises(LicenceError, match="carries no regulator signature"):
        service.record_licence_change(change_from_document(document), "regulator")
    assert ledger.size() == before


def test_a_key_no_policy_names_is_refused() -> None:
    ledger, service = _service()
    impostor = change("active", 1, EARLIER, key=IMPOSTOR)
    verify_change(impostor)  # well signed, by the wrong key
    with pytest.raises(LicenceError, match="a key no vault's policy names as its regulator"):
        service.record_licence_change(impostor, "regulator")
    assert ledger.size() == 1


def test_an_old_statement_cannot_be_replayed_after_a_suspension() -> None:
    _ledger, service = _service()
    active = change("active", 1, EARLIER)
    service.record_licence_change(active, "regulator")
    service.record_licence_change(change("suspended", 2, T0), "regulator")
    with pytest.raises(LicenceError, match="change number 1 does not follow 2"):
        service.record_licence_change(active, "regulator")
    service.record_licence_change(change("revoked", 3, T0), "regulator")
    with pytest.raises(LicenceError, match="is revoked; it changes no more"):
        service.record_licence_change(change("active", 4, T0), "regulator")


def test_a_suspension_holds_an_approved_transfer_and_reinstatement_frees_it() -> None:
    _ledger, service = _service()
    service.record_licence_change(change("active", 1, EARLIER), "regulator")
    status = propose(service, 5_000_000, SETTLEMENT)
    suspended = service.record_licence_change(change("suspended", 2, T0 - timedelta(hours=1)),
                                              "regulator")
    assert suspended.payload["affects"] == [{"vault": "national-btc",
                                             "digest": status.digest, "state": "proposed"}]
    approve(service, status, "central-bank", "vasp-regulator")
    assert service.status(status.digest).state == "approved"  # held: not releasable
    decision = service.decision(status.digest)
    sentence = (f"counterparty {EXCHANGE}'s licence {LICENCE} suspended since "
                "2026-01-05T08:00:00Z")
    assert sentence in decision.missing and not decision.releasable
    with pytest.raises(WorkflowError, match="needs releasable"):
        service.release(status.digest, FakeChain(), "treasury-ops")
    service.record_licence_change(change("active", 3, T0), "regulator")
    service.refresh(T0 + timedelta(seconds=1))
    assert service.status(status.digest).state == "releasable"
    assert f"counterparty {EXCHANGE}'s licence {LICENCE} active since 2026-01-05T09:00:00Z" in \
        service.decision(status.digest, T0 + timedelta(seconds=1)).satisfied


def test_a_revocation_cancels_the_pending_transfer_with_its_reason() -> None:
    _ledger, service = _service()
    service.record_licence_change(change("active", 1, EARLIER), "regulator")
    status = propose(service, 5_000_000, SETTLEMENT)
    service.record_licence_change(change("revoked", 2, T0), "regulator")
    service.refresh(T0 + timedelta(seconds=1))
    moved = service.status(status.digest)
    assert moved.state == "cancelled"
    assert f"licence {LICENCE} revoked since" in moved.changes[-1].reason


def test_a_licence_never_recorded_holds_the_transfer() -> None:
    _ledger, service = _service()
    status = propose(service, 5_000_000, SETTLEMENT)
    approve(service, status, "central-bank", "vasp-regulator")
    assert "is not in the licence register" in " ".join(service.decision(status.digest).missing)
    assert service.status(status.digest).state == "approved"


def test_a_future_suspension_takes_effect_at_its_time() -> None:
    _ledger, service = _service()
    service.record_licence_change(change("active", 1, EARLIER), "regulator")
    service.record_licence_change(change("suspended", 2, T0 + 2 * timedelta(hours=1)),
                                  "regulator")
    status = propose(service, 5_000_000, SETTLEMENT)
    approve(service, status, "central-bank", "vasp-regulator")
    assert service.decision(status.digest, T0 + timedelta(seconds=HOUR)).releasable
    assert not service.decision(status.digest, T0 + timedelta(seconds=3 * HOUR)).releasable


def test_the_register_rebuilt_from_the_ledger_matches_the_services() -> None:
    ledger, service = _service()
    for number, status in enumerate(("active", "suspended", "active"), start=1):
        service.record_licence_change(change(status, number, EARLIER + timedelta(days=number)),
                                      "regulator")
    book = LicenceBook()
    book.catch_up(ledger)
    service.sync()
    assert book.licences == service.licences.licences
    assert book.licences[LICENCE].seqs == (1, 2, 3)
    assert book.licences[LICENCE].regulator_key == regulator_key_text()
