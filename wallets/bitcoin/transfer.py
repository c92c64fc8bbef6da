"""The approved transfer: the seam between the policy engine and the Bitcoin wallet.

The policy engine decides *whether* money may move; this value says exactly *what* was
approved (vault, network, outputs, fee cap, proposal digest, policy version). Every PSBT the
wallet builds, and every PSBT a custodian signs, is checked against it output for output.
The custodian's offline tool derives it from the proposal a signing package proves
(wallets/signer/package.py), never from a file it is handed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reserve.errors import PSBTError

OUTPUTS_MAX = 100
SATS_MAX = 21_000_000 * 100_000_000


@dataclass(frozen=True)
class TransferOutput:
    address: str
    amount_sats: int


@dataclass(frozen=True)
class ApprovedTransfer:
    """An approved transfer. Requires a 32-byte digest, 1..OUTPUTS_MAX outputs, positive sats."""

    proposal_digest: bytes
    policy_version: int
    vault_id: str
    network: str
    outputs: tuple[TransferOutput, ...]
    fee_sats_max: int

    def __post_init__(self) -> None:
        if not isinstance(self.proposal_digest, bytes) or len(self.proposal_digest) != 32:
            raise PSBTError("approved transfer: proposal_digest must be 32 bytes")
        if not isinstance(self.policy_version, int) or self.policy_version < 0:
            raise PSBTError("approved transfer: policy_version must be a non-negative int")
        if not 1 <= len(self.outputs) <= OUTPUTS_MAX:
            raise PSBTError(f"approved transfer: 1..{OUTPUTS_MAX} outputs required")
        for output in self.outputs:
            if not isinstance(output.amount_sats, int) or isinstance(output.amount_sats, bool) \
                    or not 0 < output.amount_sats <= SATS_MAX:
                raise PSBTError(f"approved transfer: bad amount {output.amount_sats!r}")
        if not isinstance(self.fee_sats_max, int) or not 0 < self.fee_sats_max <= SATS_MAX:
            raise PSBTError(f"approved transfer: bad fee_sats_max {self.fee_sats_max!r}")

    @property
    def amount_sats(self) -> int:
        return sum(output.amount_sats for output in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "proposal_digest": self.proposal_digest.hex(),
            "policy_version": self.policy_version,
            "vault_id": self.vault_id,
            "network": self.network,
            "outputs": [{"address": o.address, "amount_sats": o.amount_sats}
                        for o in self.outputs],
            "fee_sats_max": self.fee_sats_max,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApprovedTransfer:
        try:
            return cls(
                proposal_digest=bytes.fromhex(data["proposal_digest"]),
                policy_version=data["policy_version"],
                vault_id=str(data["vault_id"]),
                network=str(data["network"]),
                outputs=tuple(TransferOutput(address=str(o["address"]),
                                             amount_sats=o["amount_sats"])
                              for o in data["outputs"]),
                fee_sats_max=data["fee_sats_max"],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PSBTError(f"malformed approved transfer: {error!r}") from None

    @classmethod
    def from_json(cls, text: str) -> ApprovedTransfer:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PSBTError(f"approved transfer is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise PSBTError("approved transfer must be a JSON object")
        return cls.from_dict(data)
