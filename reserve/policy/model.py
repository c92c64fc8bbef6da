"""The custody policy of one vault, as immutable values.

A policy is versioned: every version is recorded in the ledger, and a proposal names the
version it was made under, so an approval given under one version never counts under
another. Amounts are integers in the asset's base units (sat, wei, token units).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Custodian:
    """A key holder who may approve; the approval key is separate from any funds key."""

    id: str
    name: str
    institution: str
    approval_public_key: bytes


@dataclass(frozen=True)
class Operator:
    """A member who may propose (if listed as proposer) or freeze (if auditor), never approve."""

    id: str
    name: str
    institution: str


@dataclass(frozen=True)
class ApprovalRule:
    """How many approvals, from how many distinct institutions, then how long to wait."""

    approvals_min: int
    institutions_min: int
    delay_seconds: int


@dataclass(frozen=True)
class Tier:
    """Transfers whose total is in [amount_min, amount_max] follow `rule` (None = no max)."""

    name: str
    amount_min: int
    amount_max: int | None
    rule: ApprovalRule

    def contains(self, amount: int) -> bool:
        return self.amount_min <= amount and (self.amount_max is None or
                                              amount <= self.amount_max)


@dataclass(frozen=True)
class VelocityLimit:
    """At most `amount_max` may leave the vault in any rolling window of `window_seconds`."""

    window_seconds: int
    amount_max: int


@dataclass(frozen=True)
class AssetRules:
    asset: str
    unit: str
    tiers: tuple[Tier, ...]
    velocity: tuple[VelocityLimit, ...]

    def tier_for(self, amount: int) -> Tier | None:
        for tier in self.tiers:
            if tier.contains(amount):
                return tier
        return None


@dataclass(frozen=True)
class Destination:
    """An allowlisted address; `kind` (e.g. "exchange") and the counterparty's `licence`
    id are optional ("" when absent), a policy may require a licence for some kinds."""

    asset: str
    address: str
    label: str
    kind: str = ""
    licence: str = ""


@dataclass(frozen=True)
class ConflictException:
    """A recorded, reasoned exception to the separation of supervising and key holding."""

    member: str
    reason: str


@dataclass(frozen=True)
class Supervision:
    """Who supervises the vault and what the supervisor's seat may do.

    `supervisors` are person ids, `institutions` the supervising institutions: neither may
    hold one of the vault's keys (or propose) unless `exceptions` records why. The
    `regulator_key` (a note verifier key, `name+hash+base64`) is the only key whose licence
    changes this vault trusts; destinations of a kind in `licensed_kinds` must name a
    counterparty licence, which must be active at release and signing.
    """

    supervisors: frozenset[str]
    institutions: frozenset[str]
    may_freeze: bool
    regulator_key: str
    licensed_kinds: frozenset[str]
    exceptions: tuple[ConflictException, ...]


@dataclass(frozen=True)
class Governance:
    """Rules for proposals that change the rules themselves, the allowlist, or a freeze."""

    policy_change: ApprovalRule
    destination_add: ApprovalRule
    unfreeze: ApprovalRule


@dataclass(frozen=True)
class Policy:
    vault: str
    version: int
    network: str
    chain: str  # CAIP-2 chain id, e.g. "bip122:0f9188f13cb7b2c71f2a335e3a4fc328", "eip155:31337"
    description: str
    custodians: tuple[Custodian, ...]
    operators: tuple[Operator, ...]
    proposers: frozenset[str]
    auditors: frozenset[str]
    assets: tuple[AssetRules, ...]
    destinations: tuple[Destination, ...]
    governance: Governance
    proposal_lifetime_max_seconds: int
    destination_cooling_seconds: int
    supervision: Supervision | None = None

    def custodian(self, member_id: str) -> Custodian | None:
        for custodian in self.custodians:
            if custodian.id == member_id:
                return custodian
        return None

    def member(self, member_id: str) -> Custodian | Operator | None:
        found = self.custodian(member_id)
        if found is not None:
            return found
        for operator in self.operators:
            if operator.id == member_id:
                return operator
        return None

    def asset_rules(self, asset: str) -> AssetRules | None:
        for rules in self.assets:
            if rules.asset == asset:
                return rules
        return None

    def may_propose(self, member_id: str) -> bool:
        return member_id in self.proposers

    def may_freeze(self, member_id: str) -> bool:
        """Any single custodian or auditor may freeze: stopping is the safe direction; so
        may a supervisor where the policy's supervision grants it."""
        return self.custodian(member_id) is not None or member_id in self.auditors or \
            self.supervisor_may_freeze(member_id)

    def supervisor_may_freeze(self, member_id: str) -> bool:
        return self.supervision is not None and self.supervision.may_freeze and \
            member_id in self.supervision.supervisors

    def supervises(self, member_id: str) -> bool:
        return self.supervision is not None and member_id in self.supervision.supervisors

    def institutions(self) -> frozenset[str]:
        return frozenset(custodian.institution for custodian in self.custodians)

    def destination(self, asset: str, address: str) -> Destination | None:
        for destination in self.destinations:
            if destination.asset == asset and destination.address == address:
                return destination
        return None
