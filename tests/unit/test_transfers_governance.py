"""Freeze and unfreeze, destination additions, policy changes, velocity, cancellation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reserve.errors import PolicyError, ReserveError, WorkflowError
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.transfers.service import WorkflowService
from tests.support.workflow import (
    DAY,
    HOUR,
    STRANGER,
    T0,
    FakeChain,
    approve,
    btc_document,
    kinds,
    propose,
)


def test_freeze_stops_release_and_unfreeze_needs_quorum_and_delay(
        service: WorkflowService, ledger: Ledger) -> None:
    status = propose(service, 5_000_000)
    approve(service, status, "central-bank", "vasp-regulator")
    assert service.status(status.digest).state == "releasable"
    service.freeze("national-btc", "external-auditor", "suspicious activity",
                   now=T0 + timedelta(minutes=5))
    size = ledger.size()
    with pytest.raises(WorkflowError, match=r"frozen since .* by external-auditor"):
        service.release(status.digest, FakeChain(), "treasury-ops",
                        now=T0 + timedelta(minutes=6))
    assert ledger.size() == size
    with pytest.raises(WorkflowError, match="already frozen"):
        service.freeze("national-btc", "central-bank", "again")
    with pytest.raises(PolicyError, match="treasury-ops may not freeze"):
        service.freeze("national-btc", "treasury-ops", "")
    assert ledger.size() == size
    later = T0 + timedelta(hours=1)
    unfreeze = service.propose_unfreeze(vault="national-btc", proposer="central-bank",
                                        purpose="false alarm", now=later)
    approve(service, unfreeze, "vasp-regulator", "auditor-general", "crypto-council", at=later)
    assert service.status(unfreeze.digest).state == "approved"
    assert service.policy("national-btc") and service.sync().vault("national-btc").freeze
    service.refresh(now=later + timedelta(hours=23))
    assert service.sync().vault("national-btc").freeze is not None
    service.refresh(now=later + timedelta(hours=24))
    assert service.status(unfreeze.digest).state == "applied"
    assert service.sync().vault("national-btc").freeze is None
    assert kinds(ledger)[-3:] == ["proposal.state", "vault.unfrozen", "proposal.state"]
    service.release(status.digest, FakeChain(), "treasury-ops",
                    now=later + timedelta(hours=24))
    assert service.status(status.digest).state == "signing"


def test_freeze_also_stops_signature_shares_and_broadcast(service: WorkflowService) -> None:
    status = propose(service, 5_000_000)
    approve(service, status, "central-bank", "vasp-regulator")
    chain = FakeChain(threshold=0)
    service.release(status.digest, chain, "treasury-ops")
    service.freeze("national-btc", "crypto-council", "key compromise suspected")
    with pytest.raises(WorkflowError, match="frozen"):
        service.add_signature_share(status.digest, chain, "central-bank", "share")
    with pytest.raises(WorkflowError, match="frozen"):
        service.broadcast(status.digest, chain, "treasury-ops")


def test_new_destination_needs_approval_then_cooling_off(service: WorkflowService) -> None:
    with pytest.raises(ReserveError, match="not on the allowlist"):
        propose(service, 5_000_000, destination=STRANGER)
    added = service.propose_destination(vault="national-btc", proposer="treasury-ops",
                                        asset="BTC", address=STRANGER,
                                        label="New custodian bank", purpose="diversify")
    approve(service, added, "central-bank", "vasp-regulator")
    assert service.status(added.digest).state == "proposed"
    approve(service, added, "auditor-general")
    assert service.status(added.digest).state == "applied"
    status = propose(service, 5_000_000, destination=STRANGER)
    approve(service, status, "central-bank", "vasp-regulator")
    assert service.status(status.digest).state == "approved"
    assert service.decision(status.digest, T0 + timedelta(hours=1)).explain() == \
        "destination 'New custodian bank' is cooling off for another 47 h"
    service.refresh(now=T0 + timedelta(hours=47))
    assert service.status(status.digest).state == "approved"
    service.refresh(now=T0 + timedelta(hours=48))
    assert service.status(status.digest).state == "releasable"


def test_policy_change_applies_after_quorum_and_delay(service: WorkflowService,
                                                      ledger: Ledger) -> None:
    old = propose(service, 5_000_000)
    document = btc_document()
    document["version"] = 2
    document["assets"][0]["tiers"][1]["delay_seconds"] = 12 * HOUR
    change = service.propose_policy_change(policy=loader.from_mapping(document),
                                           proposer="finance-ministry", purpose="faster")
    approve(service, change, "central-bank", "vasp-regulator", "auditor-general")
    assert service.status(change.digest).state == "proposed"  # policy change needs 4
    approve(service, change, "crypto-council")
    service.refresh(now=T0 + timedelta(hours=71))
    assert service.policy("national-btc").version == 1
    service.refresh(now=T0 + timedelta(hours=72))
    assert service.policy("national-btc").version == 2
    assert "policy.change_applied" in kinds(ledger)
    service.refresh(now=T0 + timedelta(hours=72))
    stale = service.status(old.digest)
    assert stale.state == "cancelled"
    assert "made under policy v1; v2 is in force" in stale.changes[-1].reason


def test_policy_change_must_be_next_version(service: WorkflowService, ledger: Ledger) -> None:
    document = btc_document()
    document["version"] = 5
    size = ledger.size()
    with pytest.raises(PolicyError, match="must be national-btc v2"):
        service.propose_policy_change(policy=loader.from_mapping(document),
                                      proposer="finance-ministry", purpose="skip")
    assert ledger.size() == size


def test_velocity_holds_back_approval_until_the_window_frees(service: WorkflowService) -> None:
    first = propose(service, 600_000_000, expires_in_seconds=14 * DAY)
    second = propose(service, 600_000_000, expires_in_seconds=14 * DAY, reference="second")
    everyone = ("finance-ministry", "central-bank", "vasp-regulator", "auditor-general")
    approve(service, first, *everyone)
    approve(service, second, *everyone, at=T0 + timedelta(hours=1))
    assert service.status(first.digest).state == "approved"
    held = service.status(second.digest)
    assert held.state == "proposed"
    explanation = service.decision(second.digest, T0 + timedelta(hours=1)).explain()
    assert "24 h velocity limit: 6.00000000 BTC already moving + 6.00000000 BTC would " \
           "exceed 10.00000000 BTC; room again at 2026-01-06T09:00:00Z" in explanation
    service.refresh(now=T0 + timedelta(hours=24))
    assert service.status(second.digest).state == "approved"


def test_cancel(service: WorkflowService, ledger: Ledger) -> None:
    status = propose(service, 5_000_000)
    with pytest.raises(PolicyError, match="may not cancel"):
        service.cancel(status.digest, "someone", "no")
    service.cancel(status.digest, "treasury-ops", "typo in reference")
    assert service.status(status.digest).state == "cancelled"
    size = ledger.size()
    with pytest.raises(WorkflowError, match=r"illegal transition .*cancelled -> cancelled"):
        service.cancel(status.digest, "treasury-ops", "again")
    signing = propose(service, 5_000_000, reference="2")
    approve(service, signing, "central-bank", "vasp-regulator")
    service.release(signing.digest, FakeChain(), "treasury-ops")
    size = ledger.size()
    with pytest.raises(WorkflowError, match="signing -> cancelled"):
        service.cancel(signing.digest, "central-bank", "too late")
    assert ledger.size() == size
    service.fail(signing.digest, "treasury-ops", "node rejected the transaction")
    assert service.status(signing.digest).state == "failed"
