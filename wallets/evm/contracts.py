"""Contract artifacts, deployment and transaction sending over web3.py.

Safe v1.4.1 comes from the audited npm artifacts (node_modules/@safe-global/safe-contracts);
the project's contracts from the committed contracts/build. Every state-changing call goes
through `transact`, which simulates first so a revert is reported with its decoded reason
before any transaction is signed, then signs locally (the key never goes to the node),
sends, and waits a bounded time for the receipt.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError
from web3.types import BlockIdentifier, TxParams, TxReceipt

from reserve.errors import EVMError, NodeUnavailable
from wallets.evm.revert import decode_revert, revert_data_of

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAFE_ARTIFACTS = PROJECT_ROOT / "node_modules/@safe-global/safe-contracts/build/artifacts/contracts"
PROJECT_BUILD = PROJECT_ROOT / "contracts" / "build"
_SAFE_PATHS = {
    "Safe": "Safe.sol/Safe.json",
    "SafeProxyFactory": "proxies/SafeProxyFactory.sol/SafeProxyFactory.json",
    "CompatibilityFallbackHandler":
        "handler/CompatibilityFallbackHandler.sol/CompatibilityFallbackHandler.json",
}
PROJECT_CONTRACTS = ("ReserveGuard", "ReserveRegistry", "ReserveToken")
RECEIPT_TIMEOUT_SECONDS = 60.0


@cache
def artifact(name: str) -> dict[str, Any]:
    """ABI and bytecode of a Safe contract or one of the project's contracts."""
    if name in _SAFE_PATHS:
        path = SAFE_ARTIFACTS / _SAFE_PATHS[name]
    elif name in PROJECT_CONTRACTS:
        path = PROJECT_BUILD / f"{name}.json"
    else:
        raise EVMError(f"unknown contract {name!r}")
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise EVMError(f"contract artifact missing: {path} (run npm ci / "
                       "scripts/compile-contracts.sh)") from None
    return loaded


def known_abis() -> list[tuple[str, list[dict[str, Any]]]]:
    """Every ABI whose custom errors may appear in a revert we need to explain."""
    return [(name, artifact(name)["abi"]) for name in (*PROJECT_CONTRACTS, "Safe")]


def at(w3: Web3, name: str, address: str) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact(name)["abi"])


def explain(error: ContractLogicError) -> EVMError:
    """A readable error for a revert, decoded from the known ABIs."""
    data = revert_data_of(error)
    if data is not None:
        return decode_revert(data, known_abis())
    return EVMError(f"contract call reverted: {error.message or error}")


def read(call: ContractFunction, block: BlockIdentifier = "latest") -> Any:
    """A view call; a revert becomes a readable error, an unreachable node NodeUnavailable."""
    try:
        return call.call(block_identifier=block)
    except ContractLogicError as error:
        raise explain(error) from None
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None


def _send(w3: Web3, account: LocalAccount, transaction: dict[str, Any]) -> TxReceipt:
    signed = account.sign_transaction(transaction)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    try:
        return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_SECONDS,
                                                   poll_latency=0.05)
    except TimeExhausted:
        raise NodeUnavailable(f"no receipt for 0x{bytes(tx_hash).hex()} within "
                              f"{RECEIPT_TIMEOUT_SECONDS:.0f} s; it may still be mined") from None


def _base_transaction(w3: Web3, account: LocalAccount, value: int) -> dict[str, Any]:
    return {"from": account.address, "value": value, "chainId": w3.eth.chain_id,
            "nonce": w3.eth.get_transaction_count(account.address, "pending")}


def transact(w3: Web3, account: LocalAccount, call: ContractFunction, *,
             value: int = 0) -> TxReceipt:
    """Simulate, sign, send and wait for one contract call; reverts become readable errors.

    A receipt with status 0 (reverted after simulation passed) is reported as EVMError.
    """
    try:
        call.call(cast(TxParams, {"from": account.address, "value": value}))
        transaction = call.build_transaction(
            cast(TxParams, _base_transaction(w3, account, value)))
    except ContractLogicError as error:
        raise explain(error) from None
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None
    receipt = _send(w3, account, dict(transaction))
    if receipt["status"] != 1:
        raise EVMError(f"transaction 0x{bytes(receipt['transactionHash']).hex()} reverted "
                       f"in block {receipt['blockNumber']}")
    return receipt


def deploy(w3: Web3, account: LocalAccount, name: str, *args: Any) -> Contract:
    """Deploy a contract by artifact name; returns it bound to its new address."""
    built = artifact(name)
    factory = w3.eth.contract(abi=built["abi"], bytecode=built["bytecode"])
    try:
        transaction = factory.constructor(*args).build_transaction(
            _base_transaction(w3, account, 0))
    except ContractLogicError as error:
        raise explain(error) from None
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None
    receipt = _send(w3, account, dict(transaction))
    address = receipt.get("contractAddress")
    if receipt["status"] != 1 or not address:
        raise EVMError(f"deployment of {name} failed in block {receipt['blockNumber']}")
    return at(w3, name, address)


def send_ether(w3: Web3, account: LocalAccount, to: str, amount_wei: int) -> TxReceipt:
    """A plain ETH transfer (used to fund vaults in demos and tests)."""
    transaction = _base_transaction(w3, account, amount_wei)
    transaction.update({"to": Web3.to_checksum_address(to), "gas": 100_000,
                        "maxFeePerGas": w3.eth.gas_price * 2 + 1,
                        "maxPriorityFeePerGas": 1})
    try:
        receipt = _send(w3, account, transaction)
    except Web3RPCError as error:
        raise EVMError(f"ETH transfer refused by the node: {error}") from None
    if receipt["status"] != 1:
        raise EVMError("ETH transfer reverted")
    return receipt
