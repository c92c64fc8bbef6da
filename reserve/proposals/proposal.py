"""A proposal and its digest: the exact thing custodians approve.

A proposal is identified by content: SHA-256 over a domain-separated RFC 8785 canonical
JSON document that names the action, vault, network and chain id, policy version, proposer,
times, and the action's body (for a transfer: asset, outputs, fee cap). Change any field and
the digest changes, so an approval signed for one proposal never counts for another, nor on
another vault, network or policy version. The same document is the ledger payload, so
replaying the ledger recomputes every digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import rfc8785

from reserve.errors import WorkflowError
from reserve.flow_classes import check_declarable
from reserve.ledger.canonical import fast_bytes

DOMAIN = b"reserve/proposal/v1\x00"
FORMAT = "reserve-proposal/1"
OUTPUTS_MAX = 100
TEXT_LENGTH_MAX = 500
ADDRESS_LENGTH_MAX = 128
AMOUNT_MAX = 2**256 - 1
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,77})$")
ACTIONS = ("transfer", "destination.add", "policy.change", "vault.unfreeze")


@lru_cache(maxsize=4096)
def format_time(moment: datetime) -> str:
    """UTC, second precision, ending in Z: one spelling per instant, for canonical JSON.
    Memoised (a proposal's document spells its two times each time it is built; equal
    instants hash alike whatever their zone, and spell alike)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise WorkflowError(f"not an ISO time: {text!r}") from None
    if moment.tzinfo is None:
        raise WorkflowError(f"time without a time zone: {text!r}")
    return moment.astimezone(UTC)


def normalize_time(moment: datetime) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise WorkflowError(f"expected an aware datetime, got {moment!r}")
    return moment.astimezone(UTC).replace(microsecond=0)


def parse_amount(value: Any, what: str) -> int:
    """Amounts travel as decimal strings (wei exceed 2**53); ints are accepted in Python."""
    if isinstance(value, int) and not isinstance(value, bool):
        amount = value
    elif isinstance(value, str) and _DECIMAL.match(value):
        amount = int(value)
    else:
        raise WorkflowError(f"{what}: expected a decimal amount in base units, got {value!r}")
    if not 0 <= amount <= AMOUNT_MAX:
        raise WorkflowError(f"{what}: amount {amount} out of range")
    return amount


def _text(value: Any, what: str, *, empty: bool = False,
          limit: int = TEXT_LENGTH_MAX) -> str:
    if not isinstance(value, str) or (not value and not empty) or len(value) > limit:
        raise WorkflowError(f"{what}: expected text of 1..{limit} characters, got {value!r}")
    return value


@dataclass(frozen=True)
class Output:
    destination: str
    amount: int

    def __post_init__(self) -> None:
        _text(self.destination, "output destination", limit=ADDRESS_LENGTH_MAX)
        if parse_amount(self.amount, "output amount") <= 0:
            raise WorkflowError(f"output amount must be positive, got {self.amount}")


@dataclass(frozen=True)
class TransferBody:
    """`flow_class` (reserve.flow_classes.DECLARABLE) is what the proposer says the
    transfer is for the public-sector statement; it is in the digest when given, and a
    transfer without one keeps the document (and digest) it always had."""

    asset: str
    outputs: tuple[Output, ...]
    fee_max: int
    flow_class: str | None = None

    def __post_init__(self) -> None:
        _text(self.asset, "asset", limit=32)
        if not 1 <= len(self.outputs) <= OUTPUTS_MAX:
            raise WorkflowError(f"a transfer needs 1..{OUTPUTS_MAX} outputs")
        parse_amount(self.fee_max, "fee_max")
        if self.flow_class is not None:
            check_declarable(self.flow_class)

    @property
    def amount(self) -> int:
        """The total that leaves the vault: tiers and velocity look at this, not per output."""
        return sum(output.amount for output in self.outputs)

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "asset": self.asset, "fee_max": str(self.fee_max),
            "outputs": [{"destination": o.destination, "amount": str(o.amount)}
                        for o in self.outputs]}
        if self.flow_class is not None:
            document["flow_class"] = self.flow_class
        return document


@dataclass(frozen=True)
class DestinationBody:
    asset: str
    address: str
    label: str

    def __post_init__(self) -> None:
        _text(self.asset, "asset", limit=32)
        _text(self.address, "destination address", limit=ADDRESS_LENGTH_MAX)
        _text(self.label, "destination label")

    def document(self) -> dict[str, Any]:
        return {"destination": {"asset": self.asset, "address": self.address,
                                "label": self.label}}


@dataclass(frozen=True)
class PolicyChangeBody:
    """The proposed policy as canonical JSON text (hashable; parsed by reserve.policy)."""

    policy_json: str

    def __post_init__(self) -> None:
        try:
            value = json.loads(self.policy_json)
        except (TypeError, ValueError):
            raise WorkflowError("policy change: the new policy is not JSON") from None
        if not isinstance(value, dict):
            raise WorkflowError("policy change: the new policy must be a JSON object")

    @classmethod
    def from_document(cls, policy_document: dict[str, Any]) -> PolicyChangeBody:
        return cls(policy_json=bytes(rfc8785.dumps(policy_document)).decode("utf-8"))

    @property
    def policy_document(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.policy_json)
        return value

    def document(self) -> dict[str, Any]:
        return {"policy": self.policy_document}


@dataclass(frozen=True)
class UnfreezeBody:
    def document(self) -> dict[str, Any]:
        return {}


Body = TransferBody | DestinationBody | PolicyChangeBody | UnfreezeBody
_ACTION_OF: dict[type, str] = {TransferBody: "transfer", DestinationBody: "destination.add",
                               PolicyChangeBody: "policy.change", UnfreezeBody: "vault.unfreeze"}


@dataclass(frozen=True)
class Proposal:
    """Requires aware times (kept to the second, UTC) and created_at < expires_at."""

    vault: str
    network: str
    chain: str
    policy_version: int
    proposer: str
    purpose: str
    reference: str
    created_at: datetime
    expires_at: datetime
    body: Body
    _digest: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("vault", "network", "chain", "proposer"):
            _text(getattr(self, name), name, limit=128)
        _text(self.purpose, "purpose")
        _text(self.reference, "reference", empty=True)
        if not isinstance(self.policy_version, int) or isinstance(self.policy_version, bool) \
                or self.policy_version < 1:
            raise WorkflowError(f"policy_version must be a positive int: {self.policy_version!r}")
        if type(self.body) not in _ACTION_OF:
            raise WorkflowError(f"unknown proposal body {type(self.body).__name__}")
        object.__setattr__(self, "created_at", normalize_time(self.created_at))
        object.__setattr__(self, "expires_at", normalize_time(self.expires_at))
        if self.expires_at <= self.created_at:
            raise WorkflowError("a proposal must expire after it is created")
        object.__setattr__(self, "_digest", hashlib.sha256(
            DOMAIN + canonical_document(self.document())).digest())

    @property
    def action(self) -> str:
        return _ACTION_OF[type(self.body)]

    @property
    def digest(self) -> bytes:
        return self._digest

    @property
    def digest_hex(self) -> str:
        return self._digest.hex()

    def document(self) -> dict[str, Any]:
        """The canonical JSON document that is hashed and recorded in the ledger."""
        return {"format": FORMAT, "action": self.action, "vault": self.vault,
                "network": self.network, "chain": self.chain,
                "policy_version": self.policy_version, "proposer": self.proposer,
                "purpose": self.purpose, "reference": self.reference,
                "created_at": format_time(self.created_at),
                "expires_at": format_time(self.expires_at), **self.body.document()}


def canonical_document(document: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of `document`: the ledger's fast encoder where it vouches for the
    bytes (the same bytes, property-tested against `rfc8785`), else `rfc8785` itself."""
    fast = fast_bytes(document)
    return fast if fast is not None else bytes(rfc8785.dumps(document))


def body_from_document(action: str, document: dict[str, Any]) -> Body:
    """The body of a proposal document of `action` (its common fields are not checked:
    `from_document` checks the whole document)."""
    if action == "transfer":
        outputs = document["outputs"]
        if not isinstance(outputs, list):
            raise WorkflowError("transfer outputs must be a list")
        flow_class = document.get("flow_class")
        if "flow_class" in document and not isinstance(flow_class, str):
            raise WorkflowError("transfer flow_class must be text")
        return TransferBody(
            asset=document["asset"], fee_max=parse_amount(document["fee_max"], "fee_max"),
            flow_class=flow_class,
            outputs=tuple(Output(destination=o["destination"],
                                 amount=parse_amount(o["amount"], "output amount"))
                          for o in outputs))
    if action == "destination.add":
        target = document["destination"]
        return DestinationBody(asset=target["asset"], address=target["address"],
                               label=target["label"])
    if action == "policy.change":
        if not isinstance(document["policy"], dict):
            raise WorkflowError("policy change: policy must be an object")
        return PolicyChangeBody.from_document(document["policy"])
    if action == "vault.unfreeze":
        return UnfreezeBody()
    raise WorkflowError(f"unknown proposal action {action!r}; expected one of {ACTIONS}")


_COMMON = {"format", "action", "vault", "network", "chain", "policy_version", "proposer",
           "purpose", "reference", "created_at", "expires_at"}
_BODY_KEYS = {"transfer": {"asset", "outputs", "fee_max"}, "destination.add": {"destination"},
              "policy.change": {"policy"}, "vault.unfreeze": set()}
_OPTIONAL_KEYS = {"transfer": {"flow_class"}}


def from_document(document: Any) -> Proposal:
    """Parse a proposal document (ledger payload or file); unknown or missing keys refused."""
    if not isinstance(document, dict):
        raise WorkflowError("a proposal document must be a JSON object")
    if document.get("format") != FORMAT:
        raise WorkflowError(f"not a proposal of format {FORMAT}: {document.get('format')!r}")
    action = document.get("action")
    if action not in _BODY_KEYS:
        raise WorkflowError(f"unknown proposal action {action!r}; expected one of {ACTIONS}")
    optional = _OPTIONAL_KEYS.get(action, set()) & set(document)
    expected = _COMMON | _BODY_KEYS[action] | optional
    if set(document) != expected:
        extra, missing = set(document) - expected, expected - set(document)
        raise WorkflowError(f"proposal document: unexpected keys {sorted(extra)}, "
                            f"missing keys {sorted(missing)}")
    try:
        return Proposal(
            vault=document["vault"], network=document["network"], chain=document["chain"],
            policy_version=document["policy_version"], proposer=document["proposer"],
            purpose=document["purpose"], reference=document["reference"],
            created_at=parse_time(document["created_at"]),
            expires_at=parse_time(document["expires_at"]),
            body=body_from_document(action, document))
    except (KeyError, TypeError, AttributeError) as error:
        raise WorkflowError(f"malformed proposal document: {error!r}") from None
