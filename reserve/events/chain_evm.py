"""Events of the EVM chain layer: a released transfer's Safe transaction, owner
signatures, execution and confirmation, and what the chain showed (deposits, reorgs).

This layer writes the vault as `vault_id` and the proposal as `proposal_digest`; when the
workflow records a step it adds its own `vault` and `digest` beside them (`SAME_AS`: the
copies must agree). Amounts in wei and the Safe nonce travel as decimal strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from reserve.events.base import ABSENT, BigInt, Event, Hex, Json, Wei

_WIRE = {"vault": "vault_id", "digest": "proposal_digest",
         "workflow_vault": "vault", "workflow_digest": "digest"}
_SAME = {"workflow_vault": "vault", "workflow_digest": "digest"}


@dataclass(frozen=True)
class EvmSafeTxCreated(Event):
    """The Safe transaction prepared for an approved transfer, and its EIP-712 hash."""

    KIND = "evm.safe_tx_created"
    WIRE = _WIRE
    SAME_AS = _SAME
    safe_tx_hash: Hex
    digest: Hex
    policy_version: int
    vault: str
    chain_id: int
    safe: str
    safe_tx: Json  # wallets.evm.safe_tx.SafeTx.as_json()
    transfer: Json  # wallets.evm.transfer.ApprovedEVMTransfer.as_json()
    workflow_vault: str = ABSENT
    workflow_digest: Hex = ABSENT
    # Where the guard registered the hash as released (wallets.evm.guard.Registration):
    # written by the workflow's release; older entries and the bare CLI path have none.
    release: Json = ABSENT


@dataclass(frozen=True)
class EvmSignatureReceived(Event):
    """One owner's verified signature over the Safe transaction hash."""

    KIND = "evm.signature_received"
    WIRE = {"digest": "proposal_digest", "workflow_digest": "digest"}
    SAME_AS = {"workflow_digest": "digest"}
    safe_tx_hash: Hex
    digest: Hex
    signer: str
    signature: Hex
    vault: str = ABSENT  # the workflow names the vault; the bare CLI path did not
    workflow_digest: Hex = ABSENT


@dataclass(frozen=True)
class EvmExecuted(Event):
    """The Safe transaction executed: what moved (decoded from it) and the receipt."""

    KIND = "evm.executed"
    WIRE = _WIRE
    SAME_AS = _SAME
    safe_tx_hash: Hex
    digest: Hex
    vault: str
    chain_id: int
    safe: str
    asset: str
    to: str
    amount_wei: Wei
    nonce: BigInt
    tx_hash: Hex
    block_number: int
    block_hash: Hex
    success: bool
    gas_used: int
    workflow_vault: str = ABSENT
    workflow_digest: Hex = ABSENT


@dataclass(frozen=True)
class EvmConfirmed(Event):
    """An execution deep enough. The deposit watcher names the entry it confirms
    (`confirms_seq`, the Safe); the workflow names the proposal and the receipt's status."""

    KIND = "evm.confirmed"
    tx_hash: Hex
    block_number: int
    block_hash: Hex
    confirmations: int
    confirms_seq: int = ABSENT
    safe_tx_hash: Hex = ABSENT
    chain_id: int = ABSENT
    safe: str = ABSENT
    success: bool = ABSENT
    vault: str = ABSENT
    digest: Hex = ABSENT


@dataclass(frozen=True)
class EvmDeposit(Event):
    """A token or ether credit to the Safe, `key` = chain id, tx hash and log index."""

    KIND = "evm.deposit"
    WIRE = {"vault": "vault_id"}
    key: str
    chain_id: int
    vault: str
    safe: str
    asset: str
    sender: str
    amount_wei: Wei
    tx_hash: Hex
    log_index: int
    block_number: int
    block_hash: Hex


@dataclass(frozen=True)
class EvmReorg(Event):
    """Reverses the deposit or execution at `reverses_seq`: its block left the chain."""

    KIND = "evm.reorg"
    WIRE = {"vault": "vault_id"}
    reverses_seq: int
    reverses_kind: str
    chain_id: int
    vault: str
    safe: str
    asset: str
    amount_wei: Wei
    tx_hash: Hex
    block_number: int
    block_hash: Hex
    reason: str


EVENTS: tuple[type[Event], ...] = (EvmSafeTxCreated, EvmSignatureReceived, EvmExecuted,
                                   EvmConfirmed, EvmDeposit, EvmReorg)
