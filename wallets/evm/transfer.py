"""An approved EVM transfer, and the one Safe transaction that carries it out.

The policy workflow hands the chain layer a transfer that reached `releasable`; this record
is what it approved (bound to the proposal's digest and policy version). The Safe
transaction built from it, and checked against it again before signing and before
execution, must move exactly that asset and amount to exactly that destination: output for
output, as for a Bitcoin PSBT. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode

from reserve.errors import EVMError, MismatchError
from wallets.evm.safe_tx import CALL, ZERO_ADDRESS, SafeTx, checksum

ETH = "ETH"
ERC20_TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")  # transfer(address,uint256)


@dataclass(frozen=True)
class ApprovedEVMTransfer:
    """A transfer out of an EVM vault as approved under the custody policy.

    `asset` is "ETH" or the ERC-20 token's address; `amount_wei` is in the asset's base units;
    `nonce` is the Safe nonce the transfer is meant to use.
    """

    proposal_digest: bytes
    policy_version: int
    vault_id: str
    chain_id: int
    safe_address: str
    asset: str
    to: str
    amount_wei: int
    nonce: int

    def __post_init__(self) -> None:
        if not isinstance(self.proposal_digest, bytes) or len(self.proposal_digest) != 32:
            raise EVMError("proposal_digest must be 32 bytes")
        if self.asset != ETH:
            object.__setattr__(self, "asset", checksum(self.asset, "asset"))
        object.__setattr__(self, "to", checksum(self.to, "to"))
        object.__setattr__(self, "safe_address", checksum(self.safe_address, "safe_address"))
        if self.to == ZERO_ADDRESS:
            raise EVMError("refusing a transfer to the zero address")
        if not isinstance(self.amount_wei, int) or isinstance(self.amount_wei, bool) \
                or not 0 < self.amount_wei < 2**256:
            raise EVMError(f"amount_wei must be a positive integer: {self.amount_wei!r}")
        for name in ("policy_version", "chain_id", "nonce"):
            number = getattr(self, name)
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise EVMError(f"{name} must be a non-negative integer: {number!r}")

    def as_json(self) -> dict[str, Any]:
        return {"proposal_digest": self.proposal_digest.hex(),
                "policy_version": self.policy_version, "vault_id": self.vault_id,
                "chain_id": self.chain_id, "safe_address": self.safe_address,
                "asset": self.asset, "to": self.to, "amount_wei": str(self.amount_wei),
                "nonce": self.nonce}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ApprovedEVMTransfer:
        try:
            return cls(proposal_digest=bytes.fromhex(value["proposal_digest"]),
                       policy_version=int(value["policy_version"]),
                       vault_id=str(value["vault_id"]), chain_id=int(value["chain_id"]),
                       safe_address=value["safe_address"], asset=value["asset"],
                       to=value["to"], amount_wei=int(value["amount_wei"]),
                       nonce=int(value["nonce"]))
        except (KeyError, TypeError, ValueError) as error:
            raise EVMError(f"malformed approved transfer: {error}") from None


def erc20_transfer_data(to: str, amount: int) -> bytes:
    return ERC20_TRANSFER_SELECTOR + encode(["address", "uint256"], [checksum(to), amount])


def to_safe_tx(transfer: ApprovedEVMTransfer) -> SafeTx:
    """The Safe transaction for an approved transfer: a plain call, no refunds."""
    if transfer.asset == ETH:
        return SafeTx.call(transfer.to, transfer.amount_wei, b"", transfer.nonce)
    return SafeTx.call(transfer.asset, 0, erc20_transfer_data(transfer.to, transfer.amount_wei),
                       transfer.nonce)


def describe(tx: SafeTx) -> tuple[str, str, int]:
    """(asset, recipient, amount) that a Safe transaction moves; refuses anything else.

    This reads the transaction independently of how it was built, so a signer can check it.
    """
    if tx.operation != CALL:
        raise EVMError("refusing a delegatecall Safe transaction")
    if tx.gas_price != 0 or tx.safe_tx_gas != 0 or tx.base_gas != 0 \
            or tx.gas_token != ZERO_ADDRESS or tx.refund_receiver != ZERO_ADDRESS:
        raise EVMError("refusing a Safe transaction with gas refund parameters")
    if not tx.data:
        return ETH, tx.to, tx.value
    if tx.value != 0 or len(tx.data) != 68 or tx.data[:4] != ERC20_TRANSFER_SELECTOR:
        raise EVMError("Safe transaction is neither an ETH transfer nor an ERC-20 transfer")
    # Checked before decoding: the guard refuses dirty upper bytes too, so both agree.
    if tx.data[4:16] != bytes(12):
        raise EVMError("ERC-20 transfer recipient has dirty upper bytes")
    recipient, amount = decode(["address", "uint256"], tx.data[4:])
    return tx.to, checksum(recipient), int(amount)


def require_matches(transfer: ApprovedEVMTransfer, tx: SafeTx) -> None:
    """Raise MismatchError unless `tx` moves exactly what `transfer` approved, at its nonce."""
    asset, recipient, amount = describe(tx)
    for what, expected, found in (("asset", transfer.asset, asset),
                                  ("recipient", transfer.to, recipient),
                                  ("amount_wei", transfer.amount_wei, amount),
                                  ("nonce", transfer.nonce, tx.nonce)):
        if expected != found:
            raise MismatchError(what, expected, found)
