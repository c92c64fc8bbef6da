"""A complete demo reserve on a local chain: Safe vault, guard, registry and test token.

Used by the node tests, by `reserve evm deploy` and by `reserve demo`. It walks the same
path as production, with TEST custodian keys standing in for the custodians' devices: the
guard is switched on by a Safe transaction that the owners sign at their threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from reserve.errors import EVMError
from wallets.evm import contracts, guard, vault
from wallets.evm.executor import Execution, execute_safe_tx
from wallets.evm.safe_tx import ZERO_ADDRESS, SafeTx, safe_tx_hash
from wallets.evm.signatures import SignatureShare

TOKEN_NAME = "Reserve Gold Token (TEST)"  # noqa: S105 (not a secret)
TOKEN_SYMBOL = "tRGT"  # noqa: S105 (not a secret)
TOKEN_DECIMALS = 18  # OpenZeppelin ERC20's default, which ReserveToken keeps


@dataclass(frozen=True)
class Deployment:
    """Addresses of one demo reserve on one chain."""

    chain_id: int
    infrastructure: vault.SafeInfrastructure
    safe: str
    guard: str
    registry: str
    token: str
    owners: tuple[str, ...]
    threshold: int
    block_number: int

    def as_json(self) -> dict[str, Any]:
        return {"chain": "evm", "chain_id": self.chain_id, "safe": self.safe,
                "guard": self.guard, "registry": self.registry, "token": self.token,
                "owners": list(self.owners), "threshold": self.threshold,
                "safe_singleton": self.infrastructure.singleton,
                "safe_proxy_factory": self.infrastructure.proxy_factory,
                "safe_fallback_handler": self.infrastructure.fallback_handler,
                "block_number": self.block_number, "token_symbol": TOKEN_SYMBOL,
                "token_decimals": TOKEN_DECIMALS}


def sign_with_keys(chain_id: int, safe_address: str, tx: SafeTx,
                   private_keys: Sequence[bytes]) -> list[SignatureShare]:
    """Owner signatures over a Safe transaction from raw keys (TEST keys in demos)."""
    digest = safe_tx_hash(chain_id, safe_address, tx)
    shares = []
    for key in private_keys:
        account: LocalAccount = Account.from_key(key)
        signed = Account.unsafe_sign_hash(digest, key)
        shares.append(SignatureShare(account.address, bytes(signed.signature)))
    return shares


def execute_with_keys(w3: Web3, account: LocalAccount, safe_address: str, tx: SafeTx,
                      private_keys: Sequence[bytes], *, release: bool = True) -> Execution:
    """Sign with TEST keys and execute. With `release`, `account` (the guard's registrar)
    first registers the hash on the Safe's guard, as the workflow does on release."""
    shares = sign_with_keys(w3.eth.chain_id, safe_address, tx, private_keys)
    if release:
        guard_address = vault.read_state(w3, safe_address).guard
        if guard_address != ZERO_ADDRESS:
            guard.release(w3, account, guard_address,
                          safe_tx_hash(w3.eth.chain_id, safe_address, tx))
    return execute_safe_tx(w3, account, safe_address, tx, shares)


def deploy_reserve(w3: Web3, account: LocalAccount, *, owner_keys: Sequence[bytes],
                   threshold: int, destinations: Sequence[str],
                   limits: Sequence[vault.AssetLimit], token_supply: int,
                   salt_nonce: int = 0) -> Deployment:
    """Deploy Safe infrastructure, a vault Safe, its guard, the registry and a test token.

    `limits` may name the token as "TOKEN"; it is replaced by the deployed token's address.
    The deployer becomes the registry's admin and first anchoring key, the guard's
    registrar, and holds the token.
    """
    infrastructure = vault.deploy_infrastructure(w3, account)
    owners = tuple(Account.from_key(key).address for key in owner_keys)
    safe = vault.create_safe(w3, account, infrastructure, owners, threshold, salt_nonce)
    token = contracts.deploy(w3, account, "ReserveToken", TOKEN_NAME, TOKEN_SYMBOL,
                             token_supply, account.address)
    resolved = tuple(vault.AssetLimit(token.address if limit.asset == "TOKEN" else limit.asset,
                                      limit.per_transaction_wei, limit.daily_wei)
                     for limit in limits)
    guard_address = vault.deploy_guard(w3, account, safe,
                                       vault.GuardConfig(tuple(destinations), resolved))
    safe_contract = contracts.at(w3, "Safe", safe)
    set_guard = SafeTx.call(safe, 0, bytes.fromhex(
        safe_contract.encode_abi("setGuard", args=[guard_address])[2:]), 0)
    execution = execute_with_keys(w3, account, safe, set_guard, owner_keys[:threshold],
                                  release=False)  # no guard yet to release it
    if not execution.success:
        raise EVMError("setting the guard failed")
    registry = contracts.deploy(w3, account, "ReserveRegistry", account.address)
    contracts.transact(w3, account, registry.functions.addAnchorer(account.address))
    return Deployment(chain_id=w3.eth.chain_id, infrastructure=infrastructure, safe=safe,
                      guard=guard_address, registry=str(registry.address), token=str(token.address),
                      owners=owners, threshold=threshold, block_number=w3.eth.block_number)
