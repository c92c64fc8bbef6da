"""The policy's [supervision] table: separation of duties checked on load, licensed kinds,
the supervisor's freeze grant, and policies without the table keeping their hashes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from reserve.errors import PolicyError
from reserve.policy import loader
from tests.support.supervision import (
    SUPERVISOR,
    licensed_document,
    licensed_policy,
    supervision_table,
)
from tests.support.workflow import btc_document, btc_policy


def _load(document: dict[str, Any]) -> Any:
    return loader.from_mapping(document, source="test")


def test_a_supervising_institution_holding_a_key_is_a_conflict() -> None:
    document = licensed_document()
    document["supervision"]["exceptions"] = []
    with pytest.raises(PolicyError) as refused:
        _load(document)
    message = str(refused.value)
    assert ("separation of duties: vasp-regulator of Virtual Assets Regulatory Authority "
            "supervises national-btc and holds one of its approval keys") in message
    assert "[[supervision.exceptions]] member = 'vasp-regulator'" in message


def test_a_reasoned_exception_is_accepted_and_shown() -> None:
    policy = licensed_policy()
    assert policy.supervision is not None
    assert [e.member for e in policy.supervision.exceptions] == ["vasp-regulator"]
    from reserve import present

    words = present.policy_words(policy)
    assert any(line.startswith("conflict accepted: vasp-regulator supervises") for line in words)


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda d: d["supervision"]["exceptions"][0].update(reason="because"),
     "a reason of at least 20 characters is required"),
    (lambda d: d["supervision"]["exceptions"].append(
        {"member": "central-bank", "reason": "a long enough reason for nothing at all"}),
     "'central-bank' has no conflict to except"),
    (lambda d: d["supervision"].update(supervisors=["treasury-ops"]),
     "treasury-ops supervises national-btc and may propose its transfers"),
    (lambda d: d["supervision"]["institutions"].append("Ministry of Finance")
     or d["supervision"]["exceptions"].append({"member": "finance-ministry",
                                               "reason": "a long enough reason, for this test"}),
     "treasury-ops supervises national-btc and may propose its transfers"),
    (lambda d: d["supervision"].update(supervisors=["central-bank"]),
     "central-bank supervises national-btc and holds one of its approval keys"),
    (lambda d: d["destinations"][1].pop("licence"),
     "a exchange destination must name its counterparty's licence"),
    (lambda d: d["supervision"].pop("regulator_key"),
     "the regulator's key that signs them is required"),
    (lambda d: d["supervision"].update(regulator_key="not-a-key"), "not a verifier key"),
    (lambda d: d["supervision"].update(may_freeze="yes"), "expected true or false"),
    (lambda d: d["supervision"].update(supervisors=[], institutions=[]),
     "names no supervisors and no institutions"),
    (lambda d: d["supervision"].update(surprise=1), "unknown key 'surprise'"),
])
def test_each_supervision_mistake_is_named(edit: Any, expected: str) -> None:
    document = licensed_document()
    edit(document)
    with pytest.raises(PolicyError, match="invalid policy") as refused:
        _load(document)
    assert expected in str(refused.value)


def test_the_supervisor_freezes_only_where_granted() -> None:
    granted = licensed_policy()
    assert granted.may_freeze(SUPERVISOR) and not granted.may_freeze("nobody")
    document = licensed_document()
    document["supervision"] = supervision_table(may_freeze=False)
    assert not _load(document).may_freeze(SUPERVISOR)


def test_the_document_round_trips_and_old_policies_keep_their_hash() -> None:
    policy = licensed_policy()
    again = _load(copy.deepcopy(loader.to_document(policy)))
    assert again == policy
    assert loader.policy_sha256(again) == loader.policy_sha256(policy)
    plain = btc_document()
    plain.pop("supervision", None)
    for destination in plain["destinations"]:
        destination.pop("kind", None)
        destination.pop("licence", None)
    without = _load(plain)
    document = loader.to_document(without)
    assert "supervision" not in document
    assert all(set(d) == {"asset", "address", "label"} for d in document["destinations"])


def test_the_shipped_national_policy_records_the_regulators_seat_as_an_exception() -> None:
    policy = btc_policy()
    assert policy.supervision is not None
    assert {e.member for e in policy.supervision.exceptions} == {"vasp-regulator"}
    assert loader.conflicts(policy)[0][0] == "vasp-regulator"
