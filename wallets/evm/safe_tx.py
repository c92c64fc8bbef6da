"""The Safe transaction and its EIP-712 hash, computed without a node.

A custodian signs `safe_tx_hash`, and the Safe checks signatures against the hash it
computes itself, so both sides must agree bit for bit. This module is the single place the
project computes it: EIP-712 with the domain (chainId, verifyingContract) used by Safe
>= 1.3.0 (v1.4.1 here), and the SafeTx struct exactly as `Safe.encodeTransactionData`.
Pure: every input (chain id, Safe address, nonce) is explicit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import is_checksum_address, to_checksum_address
from eth_utils.crypto import keccak

from reserve.errors import EVMError

# keccak256("EIP712Domain(uint256 chainId,address verifyingContract)")
DOMAIN_TYPEHASH = keccak(text="EIP712Domain(uint256 chainId,address verifyingContract)")
SAFE_TX_TYPE = ("SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,"
                "uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,"
                "uint256 nonce)")
SAFE_TX_TYPEHASH = keccak(text=SAFE_TX_TYPE)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
UINT256_MAX = 2**256 - 1
CALL = 0
DELEGATE_CALL = 1


def checksum(address: str, what: str = "address") -> str:
    """A checksummed address, refusing anything that is not 20 bytes of hex.

    Mixed-case input must carry a valid EIP-55 checksum (a typo is caught, not corrected).
    """
    if not isinstance(address, str) or len(address) != 42 or not address.startswith("0x"):
        raise EVMError(f"{what}: not an EVM address: {address!r}")
    try:
        int(address[2:], 16)
    except ValueError:
        raise EVMError(f"{what}: not an EVM address: {address!r}") from None
    body = address[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(address):
        raise EVMError(f"{what}: bad EIP-55 checksum: {address!r}")
    return to_checksum_address(address)


@dataclass(frozen=True)
class SafeTx:
    """The ten fields a Safe signs. Gas refund fields stay zero in this project."""

    to: str
    value: int
    data: bytes
    operation: int
    safe_tx_gas: int
    base_gas: int
    gas_price: int
    gas_token: str
    refund_receiver: str
    nonce: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", checksum(self.to, "to"))
        object.__setattr__(self, "gas_token", checksum(self.gas_token, "gas_token"))
        object.__setattr__(self, "refund_receiver",
                           checksum(self.refund_receiver, "refund_receiver"))
        for name in ("value", "safe_tx_gas", "base_gas", "gas_price", "nonce"):
            number = getattr(self, name)
            if not isinstance(number, int) or isinstance(number, bool) \
                    or not 0 <= number <= UINT256_MAX:
                raise EVMError(f"SafeTx.{name} must be an integer in uint256 range: {number!r}")
        if self.operation not in (CALL, DELEGATE_CALL):
            raise EVMError("SafeTx.operation must be 0 (call) or 1 (delegatecall)")
        if not isinstance(self.data, bytes):
            raise EVMError("SafeTx.data must be bytes")

    @classmethod
    def call(cls, to: str, value: int, data: bytes, nonce: int) -> SafeTx:
        """A plain call with no gas refund: the only shape the reserve proposes."""
        return cls(to=to, value=value, data=data, operation=CALL, safe_tx_gas=0, base_gas=0,
                   gas_price=0, gas_token=ZERO_ADDRESS, refund_receiver=ZERO_ADDRESS,
                   nonce=nonce)

    def as_json(self) -> dict[str, Any]:
        """JSON-safe form for the ledger: uint256 values as decimal strings."""
        return {"to": self.to, "value": str(self.value), "data": "0x" + self.data.hex(),
                "operation": self.operation, "safe_tx_gas": str(self.safe_tx_gas),
                "base_gas": str(self.base_gas), "gas_price": str(self.gas_price),
                "gas_token": self.gas_token, "refund_receiver": self.refund_receiver,
                "nonce": str(self.nonce)}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SafeTx:
        try:
            data_hex = str(value["data"])
            return cls(to=value["to"], value=int(value["value"]),
                       data=bytes.fromhex(data_hex[2:] if data_hex.startswith("0x")
                                          else data_hex),
                       operation=int(value["operation"]),
                       safe_tx_gas=int(value["safe_tx_gas"]), base_gas=int(value["base_gas"]),
                       gas_price=int(value["gas_price"]), gas_token=value["gas_token"],
                       refund_receiver=value["refund_receiver"], nonce=int(value["nonce"]))
        except (KeyError, TypeError, ValueError) as error:
            raise EVMError(f"malformed Safe transaction: {error}") from None


def domain_separator(chain_id: int, safe_address: str) -> bytes:
    """EIP-712 domain separator of a Safe >= 1.3.0."""
    if not isinstance(chain_id, int) or chain_id <= 0:
        raise EVMError(f"chain id must be a positive integer: {chain_id!r}")
    return keccak(encode(["bytes32", "uint256", "address"],
                         [DOMAIN_TYPEHASH, chain_id, checksum(safe_address, "safe")]))


def struct_hash(tx: SafeTx) -> bytes:
    """hashStruct(SafeTx): `data` enters as its keccak, as EIP-712 requires for bytes."""
    return keccak(encode(
        ["bytes32", "address", "uint256", "bytes32", "uint8", "uint256", "uint256", "uint256",
         "address", "address", "uint256"],
        [SAFE_TX_TYPEHASH, tx.to, tx.value, keccak(tx.data), tx.operation, tx.safe_tx_gas,
         tx.base_gas, tx.gas_price, tx.gas_token, tx.refund_receiver, tx.nonce]))


def safe_tx_hash(chain_id: int, safe_address: str, tx: SafeTx) -> bytes:
    """The 32-byte hash the owners sign and `Safe.getTransactionHash` returns."""
    return keccak(b"\x19\x01" + domain_separator(chain_id, safe_address) + struct_hash(tx))


def typed_data(chain_id: int, safe_address: str, tx: SafeTx) -> dict[str, Any]:
    """The same transaction as an EIP-712 typed-data document (for wallets that show it)."""
    return {
        "types": {
            "EIP712Domain": [{"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "SafeTx": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"},
                       {"name": "data", "type": "bytes"}, {"name": "operation", "type": "uint8"},
                       {"name": "safeTxGas", "type": "uint256"},
                       {"name": "baseGas", "type": "uint256"},
                       {"name": "gasPrice", "type": "uint256"},
                       {"name": "gasToken", "type": "address"},
                       {"name": "refundReceiver", "type": "address"},
                       {"name": "nonce", "type": "uint256"}],
        },
        "primaryType": "SafeTx",
        "domain": {"chainId": chain_id, "verifyingContract": checksum(safe_address, "safe")},
        "message": {"to": tx.to, "value": tx.value, "data": tx.data,
                    "operation": tx.operation, "safeTxGas": tx.safe_tx_gas,
                    "baseGas": tx.base_gas, "gasPrice": tx.gas_price, "gasToken": tx.gas_token,
                    "refundReceiver": tx.refund_receiver, "nonce": tx.nonce},
    }
