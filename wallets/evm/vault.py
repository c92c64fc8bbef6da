"""EVM vaults: a Safe v1.4.1 whose owners are the custodians and whose guard is ReserveGuard.

Deployment follows Safe's own path: singleton, proxy factory and fallback handler once per
chain, then one proxy per vault created with `setup(owners, threshold, ...)`. The guard is
deployed for that Safe and switched on by a Safe transaction that the owners sign at their
threshold, so even the initial on-chain policy is something the custodians approved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from reserve.errors import EVMError, NodeUnavailable
from wallets.evm import contracts
from wallets.evm.safe_tx import ZERO_ADDRESS, checksum

# keccak256("guard_manager.guard.address"): where Safe 1.4.1 stores its guard.
GUARD_STORAGE_SLOT = 0x4A204F620C8C5CCDCA3FD54D003BADD85BA500436A431F0CBDA4F558C93C34C8
SAFE_VERSION = "1.4.1"
ETH_ASSET = ZERO_ADDRESS  # how the guard names ETH in its limit table


@dataclass(frozen=True)
class SafeInfrastructure:
    singleton: str
    proxy_factory: str
    fallback_handler: str


@dataclass(frozen=True)
class AssetLimit:
    asset: str  # "ETH" or a token address
    per_transaction_wei: int
    daily_wei: int


@dataclass(frozen=True)
class GuardConfig:
    destinations: tuple[str, ...]
    limits: tuple[AssetLimit, ...]

    def constructor_args(self, safe_address: str, registrar: str) -> tuple[object, ...]:
        assets = [ETH_ASSET if limit.asset == "ETH" else checksum(limit.asset)
                  for limit in self.limits]
        return (checksum(safe_address), checksum(registrar, "registrar"),
                [checksum(d) for d in self.destinations], assets,
                [limit.per_transaction_wei for limit in self.limits],
                [limit.daily_wei for limit in self.limits])


@dataclass(frozen=True)
class VaultState:
    """What the chain says about a vault right now."""

    chain_id: int
    safe_address: str
    version: str
    owners: tuple[str, ...]
    threshold: int
    nonce: int
    guard: str
    block_number: int


def deploy_infrastructure(w3: Web3, account: LocalAccount) -> SafeInfrastructure:
    """Deploy the Safe singleton, proxy factory and fallback handler (local chains)."""
    singleton = contracts.deploy(w3, account, "Safe")
    factory = contracts.deploy(w3, account, "SafeProxyFactory")
    handler = contracts.deploy(w3, account, "CompatibilityFallbackHandler")
    return SafeInfrastructure(singleton=singleton.address, proxy_factory=factory.address,
                              fallback_handler=handler.address)


def create_safe(w3: Web3, account: LocalAccount, infrastructure: SafeInfrastructure,
                owners: Sequence[str], threshold: int, salt_nonce: int) -> str:
    """Create a Safe proxy with `owners` and `threshold`; returns its address.

    Requires 1 <= threshold <= len(owners) and distinct owners (Safe checks it too).
    """
    owner_list = [checksum(owner, "owner") for owner in owners]
    if len(set(owner_list)) != len(owner_list):
        raise EVMError("Safe owners must be distinct")
    if not 1 <= threshold <= len(owner_list):
        raise EVMError(f"threshold {threshold} out of range for {len(owner_list)} owners")
    singleton = contracts.at(w3, "Safe", infrastructure.singleton)
    initializer = singleton.encode_abi("setup", args=[
        owner_list, threshold, ZERO_ADDRESS, b"", infrastructure.fallback_handler,
        ZERO_ADDRESS, 0, ZERO_ADDRESS])
    factory = contracts.at(w3, "SafeProxyFactory", infrastructure.proxy_factory)
    receipt = contracts.transact(w3, account, factory.functions.createProxyWithNonce(
        infrastructure.singleton, initializer, salt_nonce))
    events = factory.events.ProxyCreation().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise EVMError("Safe proxy creation emitted no ProxyCreation event")
    return str(events[0]["args"]["proxy"])


def deploy_guard(w3: Web3, account: LocalAccount, safe_address: str, config: GuardConfig,
                 registrar: str | None = None) -> str:
    """Deploy ReserveGuard for `safe_address`; `registrar` defaults to the deploying account.

    The registrar is the service account that releases Safe transactions and mirrors the
    ledger's freeze; it is fixed for the guard's lifetime (a new registrar, a new guard).
    """
    guard = contracts.deploy(w3, account, "ReserveGuard", *config.constructor_args(
        safe_address, registrar or account.address))
    return str(guard.address)


def read_state(w3: Web3, safe_address: str) -> VaultState:
    """Owners, threshold, nonce and guard as the Safe reports them at the latest block."""
    safe = contracts.at(w3, "Safe", safe_address)
    try:
        block = w3.eth.block_number
        if not w3.eth.get_code(safe.address, block):
            raise EVMError(f"no contract at {safe.address}: not a deployed Safe on this chain")
        raw_guard = w3.eth.get_storage_at(safe.address, GUARD_STORAGE_SLOT, block)
        return VaultState(
            chain_id=w3.eth.chain_id, safe_address=safe.address,
            version=contracts.read(safe.functions.VERSION(), block),
            owners=tuple(contracts.read(safe.functions.getOwners(), block)),
            threshold=contracts.read(safe.functions.getThreshold(), block),
            nonce=contracts.read(safe.functions.nonce(), block),
            guard=Web3.to_checksum_address(bytes(raw_guard)[-20:]), block_number=block)
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None


def require_vault(state: VaultState, *, owners: Sequence[str], threshold: int,
                  guard: str | None) -> None:
    """Refuse to use a Safe that differs from the vault's configuration."""
    if state.version != SAFE_VERSION:
        raise EVMError(f"Safe version {state.version} at {state.safe_address}; "
                       f"expected {SAFE_VERSION}")
    if sorted(state.owners) != sorted(checksum(owner) for owner in owners):
        raise EVMError(f"Safe owners {list(state.owners)} differ from the vault's custodians")
    if state.threshold != threshold:
        raise EVMError(f"Safe threshold {state.threshold} differs from the policy's {threshold}")
    if guard is not None and state.guard != checksum(guard):
        raise EVMError(f"Safe guard {state.guard} differs from the vault's guard {guard}")


def balances(w3: Web3, safe_address: str, tokens: Mapping[str, str],
             block: int | None = None) -> dict[str, int]:
    """Balances in base units per asset ("ETH" and token addresses) at `block`."""
    at_block = block if block is not None else w3.eth.block_number
    result = {"ETH": int(w3.eth.get_balance(Web3.to_checksum_address(safe_address), at_block))}
    for token in tokens.values():
        contract = contracts.at(w3, "ReserveToken", token)
        result[checksum(token)] = int(contract.functions.balanceOf(checksum(safe_address))
                                      .call(block_identifier=at_block))
    return result
