"""The registrar's side of ReserveGuard: releasing Safe transactions and mirroring freezes.

The guard refuses every Safe transaction whose hash the service's registrar account did not
register as released, and every transfer while its `frozen` flag is set. This module is the
only writer of both: `release` when the workflow hands a transfer to the chain, `set_frozen`
when the ledger records a freeze or an unfreeze. Each reads the guard first and writes only
when the chain differs, so a retry after a crash or a timeout never sends twice and never
fails for having succeeded the first time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from reserve.errors import EVMError, NodeUnavailable
from wallets.evm import contracts
from wallets.evm.safe_tx import ZERO_ADDRESS, checksum

LOG_BLOCKS_MAX = 1_000_000  # how far back a past registration is looked for


@dataclass(frozen=True)
class Registration:
    """Where the chain recorded that a Safe transaction hash was released."""

    guard: str
    safe_tx_hash: str
    tx_hash: str
    block_number: int

    def as_json(self) -> dict[str, Any]:
        return {"guard": self.guard, "safe_tx_hash": self.safe_tx_hash,
                "tx_hash": self.tx_hash, "block_number": self.block_number}


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _guard(w3: Web3, guard_address: str) -> Any:
    if checksum(guard_address, "guard") == ZERO_ADDRESS:
        raise EVMError("the Safe has no guard: nothing on chain would enforce the release")
    return contracts.at(w3, "ReserveGuard", guard_address)


def require_registrar(w3: Web3, guard_address: str, account: LocalAccount) -> None:
    """Refuse before sending when `account` is not the guard's registrar."""
    registrar = contracts.read(_guard(w3, guard_address).functions.registrar())
    if registrar != account.address:
        raise EVMError(f"{account.address} is not the registrar {registrar} of guard "
                       f"{checksum(guard_address)}: only the service's registrar account "
                       "releases, freezes and unfreezes")


def is_released(w3: Web3, guard_address: str, digest: bytes) -> bool:
    return bool(contracts.read(_guard(w3, guard_address).functions.isReleased(digest)))


def is_frozen(w3: Web3, guard_address: str) -> bool:
    return bool(contracts.read(_guard(w3, guard_address).functions.frozen()))


def _past_registration(w3: Web3, guard_address: str, digest: bytes) -> Registration:
    guard = _guard(w3, guard_address)
    try:
        latest = w3.eth.block_number
        logs = guard.events.Released().get_logs(argument_filters={"safeTxHash": digest},
                                                from_block=max(0, latest - LOG_BLOCKS_MAX))
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None
    if not logs:
        raise EVMError(f"guard {guard.address} holds {_hex(digest)} as released but shows no "
                       f"Released event in the last {LOG_BLOCKS_MAX} blocks")
    log = logs[0]
    return Registration(guard=guard.address, safe_tx_hash=_hex(digest),
                        tx_hash=_hex(log["transactionHash"]),
                        block_number=int(log["blockNumber"]))


def release(w3: Web3, account: LocalAccount, guard_address: str,
            digest: bytes) -> Registration:
    """Register `digest` (a safeTxHash) as released, unless it already is. Idempotent.

    Requires `account` to be the guard's registrar and `digest` to be 32 bytes. Returns
    where the registration is on chain, whether made now or by an earlier attempt.
    """
    if len(digest) != 32:
        raise EVMError(f"a Safe transaction hash is 32 bytes, not {len(digest)}")
    if is_released(w3, guard_address, digest):
        return _past_registration(w3, guard_address, digest)
    require_registrar(w3, guard_address, account)
    guard = _guard(w3, guard_address)
    receipt = contracts.transact(w3, account, guard.functions.release(digest))
    if not is_released(w3, guard_address, digest):
        raise EVMError(f"guard {guard.address} does not hold {_hex(digest)} after releasing it")
    return Registration(guard=guard.address, safe_tx_hash=_hex(digest),
                        tx_hash=_hex(receipt["transactionHash"]),
                        block_number=int(receipt["blockNumber"]))


def set_frozen(w3: Web3, account: LocalAccount, guard_address: str,
               frozen: bool) -> str | None:
    """Make the guard's `frozen` flag equal `frozen`; the tx hash, or None if it already was.

    Requires `account` to be the guard's registrar (the Safe may also freeze, never unfreeze).
    """
    if is_frozen(w3, guard_address) == frozen:
        return None
    require_registrar(w3, guard_address, account)
    guard = _guard(w3, guard_address)
    call = guard.functions.freeze() if frozen else guard.functions.unfreeze()
    receipt = contracts.transact(w3, account, call)
    if is_frozen(w3, guard_address) != frozen:
        raise EVMError(f"guard {guard.address} frozen flag is not {frozen} after setting it")
    return _hex(receipt["transactionHash"])


@dataclass(frozen=True)
class GuardFreezeMirror:
    """The FreezeMirror (reserve/transfers/chain.py) for EVM vaults: vault id -> guard.

    Vaults it does not know (Bitcoin vaults) are not its concern: `covers` says so.
    """

    w3: Web3
    account: LocalAccount  # the guard's registrar
    guards: Mapping[str, str]  # vault id -> ReserveGuard address

    def covers(self, vault: str) -> bool:
        return vault in self.guards

    def freeze(self, vault: str) -> str | None:
        return set_frozen(self.w3, self.account, self._guard_of(vault), True)

    def unfreeze(self, vault: str) -> str | None:
        return set_frozen(self.w3, self.account, self._guard_of(vault), False)

    def frozen(self, vault: str) -> bool:
        return is_frozen(self.w3, self._guard_of(vault))

    def _guard_of(self, vault: str) -> str:
        if vault not in self.guards:
            raise EVMError(f"no guard known for vault {vault!r}")
        return self.guards[vault]
