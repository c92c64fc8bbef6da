"""The seam where a chain layer (Bitcoin now, EVM later) takes over a releasable proposal.

The workflow decides *whether* value may move; a `ChainAdapter` does the moving. At
`releasable` the service hands the adapter a `ReleaseOrder` (exactly what was approved,
output for output) and records in the ledger every `ChainStep` the adapter reports: what
must be signed (a PSBT, a Safe transaction hash), each signature share, the broadcast, the
confirmation. Adapters receive the steps recorded so far, so they can be stateless and
resume after a restart from the ledger alone. The Bitcoin layer's `ApprovedTransfer`
(wallets/bitcoin/transfer.py) maps one to one from a `ReleaseOrder`
(`destination` -> `address`, `amount` -> `amount_sats`, `fee_max` -> `fee_sats_max`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from reserve.errors import WorkflowError
from reserve.proposals.proposal import Proposal, TransferBody

ORDER_FORMAT = "reserve-release-order/1"


@dataclass(frozen=True)
class ReleaseOutput:
    destination: str
    amount: int


@dataclass(frozen=True)
class ReleaseOrder:
    """What the custodians approved; the transaction signed must match it exactly."""

    proposal_digest: bytes
    policy_version: int
    vault_id: str
    network: str
    chain: str
    asset: str
    outputs: tuple[ReleaseOutput, ...]
    fee_max: int

    @classmethod
    def from_proposal(cls, proposal: Proposal) -> ReleaseOrder:
        body = proposal.body
        if not isinstance(body, TransferBody):
            raise WorkflowError(f"only transfers go to a chain, not {proposal.action}")
        return cls(proposal_digest=proposal.digest, policy_version=proposal.policy_version,
                   vault_id=proposal.vault, network=proposal.network, chain=proposal.chain,
                   asset=body.asset, fee_max=body.fee_max,
                   outputs=tuple(ReleaseOutput(o.destination, o.amount)
                                 for o in body.outputs))

    @property
    def amount(self) -> int:
        return sum(output.amount for output in self.outputs)

    def to_json(self, state: str) -> dict[str, Any]:
        """The order as the API and the signing package show it (amounts as strings)."""
        return {"format": ORDER_FORMAT, "state": state,
                "proposal_digest": self.proposal_digest.hex(),
                "policy_version": self.policy_version, "vault_id": self.vault_id,
                "network": self.network, "chain": self.chain, "asset": self.asset,
                "outputs": [{"destination": o.destination, "amount": str(o.amount)}
                            for o in self.outputs],
                "amount": str(self.amount), "fee_max": str(self.fee_max)}


@dataclass(frozen=True)
class ChainStep:
    """One fact a chain layer reports, recorded as a ledger entry of kind `kind`.

    `kind` is a chain kind from reserve/ledger/kinds.py (btc.* or evm.*); `payload` is
    JSON-ready (amounts as decimal strings). The service adds the proposal digest and vault.
    The projection files any btc.*/evm.* entry under its proposal by "digest" or
    "proposal_digest", whoever wrote it.
    """

    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    # True when the chain layer already wrote this fact to the ledger itself (the Bitcoin
    # layer's BitcoinVaultService does, with a "proposal_digest" key): the service then
    # records only the state change, so nothing is written twice.
    recorded: bool = False


@dataclass(frozen=True)
class BroadcastReport:
    txid: str
    step: ChainStep


@dataclass(frozen=True)
class ConfirmationReport:
    depth: int  # 0 = seen but unconfirmed
    step: ChainStep | None = None  # recorded when given (e.g. btc.confirmed with block hash)


@runtime_checkable
class ChainAdapter(Protocol):
    """Implemented by the Bitcoin layer (PSBTs) and the EVM layer (Safe transactions).

    Every method gets the `ChainStep`s already recorded for this order, oldest first.
    Errors are WalletError subclasses; NodeUnavailable means "try again later".
    """

    def prepare(self, order: ReleaseOrder) -> ChainStep:
        """Build what the custodians must sign (matching `order` output for output)."""
        ...

    def add_share(self, order: ReleaseOrder, steps: tuple[ChainStep, ...], signer: str,
                  share: str) -> ChainStep:
        """Check and accept one custodian's signature share (PSBT, EIP-712 signature)."""
        ...

    def broadcast(self, order: ReleaseOrder, steps: tuple[ChainStep, ...]) -> BroadcastReport:
        """Finalise with the shares collected and broadcast; refuses if not enough."""
        ...

    def confirmation(self, order: ReleaseOrder, steps: tuple[ChainStep, ...],
                     txid: str) -> ConfirmationReport:
        """How deep the broadcast transaction is now."""
        ...
