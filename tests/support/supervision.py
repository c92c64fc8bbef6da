"""Supervision fixtures: a fixed regulator key, a policy whose settlement destination is a
licensed exchange, and signed licence changes.

The regulator key is derived from a public seed, like the test custodians' keys: for tests
only. `licensed_policy(vault)` is national-btc's rules with a [supervision] table trusting
that key, `SETTLEMENT` as an exchange that must hold licence L-042, and the regulator's
own custodian seat recorded as a reasoned exception (as config/policies/national-btc.toml
does).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.ledger.checkpoint import VerifierKey
from reserve.policy import loader
from reserve.policy.licences import LicenceChange, sign_change
from reserve.policy.model import Policy
from tests.support.workflow import SETTLEMENT, btc_document

REGULATOR = Ed25519PrivateKey.from_private_bytes(
    hashlib.sha256(b"test regulator licence key").digest())
IMPOSTOR = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"not the regulator").digest())
REGULATOR_NAME = "vara-test"
LICENCE = "L-042"
EXCHANGE = "Example Exchange Ltd"
SUPERVISOR = "sara-supervisor"


def regulator_key_text(key: Ed25519PrivateKey = REGULATOR, name: str = REGULATOR_NAME) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return VerifierKey(name=name, public_key=raw).encode()


def supervision_table(**changes: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "supervisors": [SUPERVISOR], "institutions": ["Virtual Assets Regulatory Authority"],
        "may_freeze": True, "regulator_key": regulator_key_text(),
        "licensed_kinds": ["exchange"],
        "exceptions": [{"member": "vasp-regulator", "reason": "test: the regulator's seat "
                        "in the 3-of-5 predates its supervisory role"}]}
    table.update(changes)
    return table


def licensed_document(vault: str | None = None) -> dict[str, Any]:
    document = btc_document(vault)
    for destination in document["destinations"]:
        if destination["address"] == SETTLEMENT:
            destination.update({"kind": "exchange", "licence": LICENCE})
    document["supervision"] = supervision_table()
    return document


def licensed_policy(vault: str | None = None) -> Policy:
    return loader.from_mapping(licensed_document(vault), source="licensed test policy")


def change(status: str, number: int, effective_at: datetime, *,
           key: Ed25519PrivateKey = REGULATOR, licence: str = LICENCE) -> LicenceChange:
    return sign_change(key, REGULATOR_NAME, licence_id=licence, entity=EXCHANGE,
                       scope="exchange: BTC spot and settlement", status=status,
                       effective_at=effective_at, number=number)
