"""Revert data turned into readable, typed errors. Pure.

A refused transfer must say why ("destination 0x.. is not on the vault's allowlist"), not
show a hex blob. Custom errors are decoded from the contracts' ABIs (selector = first four
bytes of keccak of the signature); Safe's terse `GSxxx` reason strings are mapped through one
table, as safe-eth-py does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_abi.abi import decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from reserve.errors import ContractReverted

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

SAFE_ERRORS = {
    "GS000": "could not finish initialization",
    "GS001": "threshold needs to be defined",
    "GS010": "not enough gas to execute the Safe transaction",
    "GS011": "could not pay gas costs with ether",
    "GS012": "could not pay gas costs with token",
    "GS013": "the Safe transaction's inner call failed (safeTxGas and gasPrice were 0)",
    "GS020": "signatures data too short",
    "GS021": "invalid contract signature location: inside static part",
    "GS022": "invalid contract signature location: length not present",
    "GS023": "invalid contract signature location: data not complete",
    "GS024": "invalid contract signature provided",
    "GS025": "hash has not been approved",
    "GS026": "invalid owner provided: a signer is not an owner or signatures are out of order",
    "GS030": "only owners can approve a hash",
    "GS031": "method can only be called from this contract",
    "GS100": "modules have already been initialized",
    "GS101": "invalid module address provided",
    "GS102": "module has already been added",
    "GS104": "method can only be called from an enabled module",
    "GS200": "owners have already been set up",
    "GS201": "threshold cannot exceed owner count",
    "GS202": "threshold needs to be greater than 0",
    "GS203": "invalid owner address provided",
    "GS204": "address is already an owner",
    "GS205": "invalid prevOwner, owner pair provided",
    "GS300": "guard does not implement IERC165 / the Safe guard interface",
}

# Sentences for the errors an operator meets most; others are shown as Name(arg=value).
GUARD_SENTENCES = {
    "VaultFrozen": "vault frozen: the ledger froze this vault and the guard mirrors it; "
                   "nothing leaves until the ledger records the unfreeze quorum and the "
                   "service's registrar unfreezes the guard",
    "NotReleased": "Safe transaction not released: {safeTxHash} was never registered by the "
                   "service, which registers a Safe transaction only when the ledger "
                   "releases it; owner signatures alone move nothing",
    "NotRegistrar": "{caller} is not the guard's registrar (the service account that "
                    "releases, freezes and unfreezes)",
    "NotSafeOrRegistrar": "{caller} may not freeze: only the Safe or the guard's registrar",
    "AlreadyReleased": "Safe transaction {safeTxHash} is already registered as released",
    "DestinationNotAllowlisted": "destination {destination} is not on the vault's on-chain "
                                 "allowlist",
    "AmountOverTransactionLimit": "amount {amount} exceeds the on-chain per-transaction limit "
                                  "{limit} for asset {asset}",
    "DailyLimitExceeded": "amount {amount} would exceed the on-chain rolling 24 h limit {limit} "
                          "for asset {asset} ({spentInWindow} already spent in the window)",
    "AssetNotConfigured": "asset {asset} has no limits on the vault's guard, so it cannot move",
    "DelegateCallNotAllowed": "delegatecall Safe transactions are refused by the guard",
    "GasRefundNotAllowed": "Safe transactions with gas refunds (safeTxGas/gasPrice) are refused",
    "ModuleNotAllowed": "enabling a Safe module is refused by the guard (modules bypass it)",
    "UnsupportedCall": "call to {to} with selector {selector} is not a transfer the guard allows",
    "TreeSizeNotIncreasing": "tree size {givenTreeSize} is not larger than the latest anchored "
                             "tree size {latestTreeSize}",
    "NotAnchorer": "{caller} is not a registered anchoring key",
}


def _selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def _type_string(parameter: dict[str, Any]) -> str:
    if parameter["type"].startswith("tuple"):
        inner = ",".join(_type_string(component) for component in parameter["components"])
        return f"({inner}){parameter['type'][5:]}"
    return str(parameter["type"])


def error_table(abis: Sequence[tuple[str, list[dict[str, Any]]]]
                ) -> dict[bytes, tuple[str, str, list[dict[str, Any]]]]:
    """selector -> (contract name, error name, inputs) for every custom error in `abis`."""
    table: dict[bytes, tuple[str, str, list[dict[str, Any]]]] = {}
    for contract, abi in abis:
        for item in abi:
            if item.get("type") != "error":
                continue
            types = ",".join(_type_string(parameter) for parameter in item["inputs"])
            table[_selector(f"{item['name']}({types})")] = (contract, item["name"],
                                                            item["inputs"])
    return table


def _readable(value: Any, solidity_type: str) -> Any:
    if solidity_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def decode_revert(data: bytes, abis: Sequence[tuple[str, list[dict[str, Any]]]]
                  ) -> ContractReverted:
    """The error a revert payload stands for (returned, not raised)."""
    if data[:4] == ERROR_STRING_SELECTOR:
        (reason,) = decode(["string"], data[4:])
        meaning = SAFE_ERRORS.get(reason)
        message = f"Safe refused: {reason}: {meaning}" if meaning else f"reverted: {reason}"
        return ContractReverted(message, name=reason, contract="Safe" if meaning else "")
    if data[:4] == PANIC_SELECTOR:
        (code,) = decode(["uint256"], data[4:])
        return ContractReverted(f"contract panicked with code 0x{code:02x}", name="Panic",
                                arguments={"code": code})
    known = error_table(abis).get(data[:4])
    if known is None:
        return ContractReverted(f"reverted with unknown data 0x{data.hex()}", name="")
    contract, name, inputs = known
    values = decode([_type_string(parameter) for parameter in inputs], data[4:])
    arguments = {parameter["name"]: _readable(value, parameter["type"])
                 for parameter, value in zip(inputs, values, strict=True)}
    sentence = GUARD_SENTENCES.get(name)
    shown = ", ".join(f"{key}={value}" for key, value in arguments.items())
    detail = sentence.format(**arguments) if sentence else f"{name}({shown})"
    return ContractReverted(f"{contract} refused: {detail}", name=name, arguments=arguments,
                            contract=contract)


def revert_data_of(error: BaseException) -> bytes | None:
    """The raw revert payload carried by a web3 ContractLogicError, if any."""
    data = getattr(error, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str):
        text = data.removeprefix("Reverted ")
        if text.startswith("0x"):
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                return None
    return None
