"""Events of custody: policy versions, destinations and the state of each vault."""

from __future__ import annotations

from dataclasses import dataclass

from reserve.events.base import ABSENT, Event, Hex, Iso, Json


@dataclass(frozen=True)
class PolicyVersion(Event):
    """A vault's custody policy in force from this entry on (v1, or applied by `digest`)."""

    KIND = "policy.version"
    vault: str
    version: int
    policy_sha256: Hex
    policy: Json
    reason: str
    digest: Hex = ABSENT  # the policy-change proposal that brought it in, after v1


@dataclass(frozen=True)
class PolicyChangeApplied(Event):
    KIND = "policy.change_applied"
    vault: str
    digest: Hex
    version: int


@dataclass(frozen=True)
class DestinationAdded(Event):
    """An allowlisted destination, usable once its cooling period is over."""

    KIND = "destination.added"
    vault: str
    digest: Hex
    asset: str
    address: str
    label: str
    usable_from: Iso


@dataclass(frozen=True)
class VaultRegistered(Event):
    """A vault the service watches, on Bitcoin (a descriptor) or an EVM chain (a Safe)."""

    KIND = "vault.registered"
    BY = "chain"


@dataclass(frozen=True)
class BitcoinVaultRegistered(VaultRegistered):
    WIRE = {"vault": "vault_id"}
    chain: str
    vault: str
    network: str
    threshold: int
    descriptor: str
    custodians: Json  # [{"name", "institution"}]


@dataclass(frozen=True)
class EvmVaultRegistered(VaultRegistered):
    WIRE = {"vault": "vault_id"}
    chain: str
    vault: str
    chain_id: int
    safe: str
    guard: str
    registry: str
    token: str
    owners: Json  # [address]
    threshold: int
    safe_singleton: str
    safe_proxy_factory: str
    safe_fallback_handler: str
    block_number: int
    # The token's ERC-20 symbol and decimals, read at deployment so that every page and
    # report can show its amounts in its own units (older entries lack them).
    token_symbol: str = ABSENT
    token_decimals: int = ABSENT


VaultRegistered.VARIANTS = {"bitcoin": BitcoinVaultRegistered, "evm": EvmVaultRegistered}


@dataclass(frozen=True)
class VaultFrozen(Event):
    """One custodian or auditor stopped every release from the vault, at once."""

    KIND = "vault.frozen"
    vault: str
    reason: str


@dataclass(frozen=True)
class VaultUnfrozen(Event):
    KIND = "vault.unfrozen"
    vault: str
    digest: Hex


EVENTS: tuple[type[Event], ...] = (PolicyVersion, PolicyChangeApplied, DestinationAdded,
                                   VaultRegistered, VaultFrozen, VaultUnfrozen)
