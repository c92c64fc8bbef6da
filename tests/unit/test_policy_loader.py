"""Policy files: the shipped ones load, and each kind of mistake is a clear PolicyError."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reserve.errors import PolicyError
from reserve.policy import loader
from reserve.policy.testkeys import TEST_MEMBERS, public_key_hex_of
from tests.support.workflow import BTC_POLICY, EVM_POLICY, btc_document


def test_shipped_policies_load_and_round_trip() -> None:
    for path in (BTC_POLICY, EVM_POLICY):
        policy = loader.load_file(path)
        assert loader.from_mapping(loader.to_document(policy)) == policy
        assert len(policy.custodians) == 5
        assert len(policy.institutions()) == 5
    btc = loader.load_file(BTC_POLICY)
    assert [t.name for t in btc.assets[0].tiers] == ["small", "large", "very_large"]
    assert btc.assets[0].tier_for(150_000_000).rule.delay_seconds == 86400  # type: ignore[union-attr]
    assert btc.assets[0].tier_for(10**12).rule.approvals_min == 4  # type: ignore[union-attr]
    evm = loader.load_file(EVM_POLICY)
    assert evm.assets[0].velocity[0].amount_max == 200 * 10**18  # beyond 2**53 and TOML ints


def test_shipped_keys_are_the_labelled_test_keys() -> None:
    policy = loader.load_file(BTC_POLICY)
    assert {c.id for c in policy.custodians} == set(TEST_MEMBERS)
    for custodian in policy.custodians:
        assert custodian.approval_public_key.hex() == public_key_hex_of(custodian.id)
    assert "TEST KEYS ONLY" in BTC_POLICY.read_text()


def test_ledger_document_has_amounts_as_decimal_strings() -> None:
    document = loader.to_document(loader.load_file(EVM_POLICY))
    assert document["assets"][0]["velocity"][0]["amount_max"] == "200000000000000000000"
    assert loader.policy_sha256(loader.from_mapping(document)) == \
        loader.policy_sha256(loader.load_file(EVM_POLICY))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        target: Any = document
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        target[int(last) if last.isdigit() else last] = value
    return edit


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        target: Any = document
        keys = path.split(".")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        del target[keys[-1]]
    return edit


def _duplicate_custodian_key(document: dict[str, Any]) -> None:
    document["custodians"][1]["approval_public_key"] = \
        document["custodians"][0]["approval_public_key"]


def _sixth_member_same_id(document: dict[str, Any]) -> None:
    document["operators"].append(copy.deepcopy(document["operators"][0]))


def _custodian_proposes_five_needed(document: dict[str, Any]) -> None:
    document["roles"]["proposers"] = ["treasury-ops", "finance-ministry"]
    document["assets"][0]["tiers"][2]["approvals_min"] = 5


BAD_POLICIES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown proposer", _set("roles.proposers", ["treasury-ops", "nobody"]),
     "unknown custodian or operator 'nobody'"),
    ("unknown auditor", _set("roles.auditors", ["ghost"]), "unknown custodian or operator"),
    ("threshold above custodians", _set("assets.0.tiers.2.approvals_min", 6),
     "threshold 6 is larger than the custodian set (5 custodians)"),
    ("institutions above approvals", _set("assets.0.tiers.0.institutions_min", 3),
     "institutions_min 3 exceeds approvals_min 2"),
    ("overlapping tiers", _set("assets.0.tiers.1.amount_min", "5000000"),
     "tiers 'small' and 'large' overlap"),
    ("gap between tiers", _set("assets.0.tiers.1.amount_min", "20000000"),
     "gap between tiers 'small' and 'large'"),
    ("negative limit", _set("assets.0.velocity.0.amount_max", -5), "negative amount -5"),
    ("negative tier bound", _set("assets.0.tiers.0.amount_max", "-1"), "negative amount"),
    ("negative delay", _set("assets.0.tiers.1.delay_seconds", -1), "out of range"),
    ("float amount", _set("assets.0.velocity.0.amount_max", 1.5), "expected an amount"),
    ("bad key", _set("custodians.0.approval_public_key", "abcd"), "not a hex Ed25519"),
    ("shared key", _duplicate_custodian_key, "key used by another custodian"),
    ("duplicate member", _sixth_member_same_id, "is used more than once"),
    ("typo key", _set("custodians.0.instituton", "x"), "unknown key 'instituton'"),
    ("missing governance", _delete("governance.unfreeze"), "missing required table"),
    ("unknown network", _set("network", "moonnet"), "unknown network 'moonnet'"),
    ("wrong format", _set("format", "v0"), "expected 'reserve-policy/1'"),
    ("no proposers", _set("roles.proposers", []), "at least one proposer"),
    ("destination of unknown asset", _set("destinations.0.asset", "DOGE"),
     "asset 'DOGE' has no [[assets]] rules"),
    ("bigger tier asks less", _set("assets.0.tiers.2.approvals_min", 2),
     "asks for fewer approvals"),
    ("custodian proposer makes quorum unreachable", _custodian_proposes_five_needed,
     "needs 5 approvals but a custodian who proposes leaves only 4"),
    ("bad vault id", _set("vault", "National BTC!"), "is not an identifier"),
    ("version zero", _set("version", 0), "out of range"),
]


@pytest.mark.parametrize(("name", "edit", "message"), BAD_POLICIES,
                         ids=[case[0] for case in BAD_POLICIES])
def test_each_kind_of_error_is_reported_clearly(
        name: str, edit: Callable[[dict[str, Any]], None], message: str) -> None:
    document = btc_document()
    edit(document)
    with pytest.raises(PolicyError) as caught:
        loader.from_mapping(document, source="bad.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("bad.toml: invalid policy")


def test_all_problems_are_listed_at_once() -> None:
    document = btc_document()
    document["network"] = "moonnet"
    document["assets"][0]["velocity"][0]["amount_max"] = -1
    with pytest.raises(PolicyError, match=r"\(2 problems\)"):
        loader.from_mapping(document)


def test_toml_syntax_and_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("vault = \n")
    with pytest.raises(PolicyError, match="invalid TOML"):
        loader.load_file(broken)
    with pytest.raises(PolicyError, match="policy file not found"):
        loader.load_file(tmp_path / "absent.toml")


def test_edited_toml_copy_loads(tmp_path: Path) -> None:
    text = BTC_POLICY.read_text().replace("version = 1", "version = 2")
    path = tmp_path / "v2.toml"
    path.write_text(text)
    assert loader.load_file(path).version == 2
