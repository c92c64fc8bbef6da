"""TEST KEYS ONLY: fixed EVM keys for the custodians and the service on local demo chains.

Tests and `reserve demo` must sign for the demo Safe, so these keys come from public seeds:
custodian N's private key is sha256(b"sovereign-reserve test evm custodian N") and the
service's deployer/executor key is sha256(b"sovereign-reserve test evm deployer"). Anyone
can compute them: never use them outside anvil or a throwaway testnet account.
"""

from __future__ import annotations

import hashlib

from eth_account import Account
from eth_account.signers.local import LocalAccount

CUSTODIAN_COUNT = 5


def custodian_private_key(number: int) -> bytes:
    """The public, fixed private key of test custodian `number` (1-based). TEST ONLY."""
    if not 1 <= number <= CUSTODIAN_COUNT:
        raise ValueError(f"test custodian number must be 1..{CUSTODIAN_COUNT}")
    return hashlib.sha256(f"sovereign-reserve test evm custodian {number}".encode()).digest()


def custodian_account(number: int) -> LocalAccount:
    account: LocalAccount = Account.from_key(custodian_private_key(number))
    return account


def deployer_private_key() -> bytes:
    return hashlib.sha256(b"sovereign-reserve test evm deployer").digest()


def deployer_account() -> LocalAccount:
    account: LocalAccount = Account.from_key(deployer_private_key())
    return account
