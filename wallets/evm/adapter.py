"""The EVM layer behind the workflow's ChainAdapter seam (reserve/transfers/chain.py).

At `releasable` the service hands over a ReleaseOrder; this adapter turns it into the Safe
transaction for the vault, checks each custodian's EIP-712 signature, executes with exactly
what was collected, and reports confirmation depth. It writes nothing itself: it returns
ChainSteps (evm.* kinds) for the service to record, and reads back the steps recorded so
far, so it is stateless and resumes after a restart. If the Safe already executed the
transaction (a crash after sending), broadcast finds it on chain instead of sending again.
`prepare` is the one step that writes to the chain before the ledger: it registers the Safe
transaction hash as released on the vault's ReserveGuard, which refuses every hash the
service did not release (idempotent, so a restart re-prepares safely).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from reserve.errors import EVMError, MismatchError
from reserve.events.chain_evm import (
    EvmConfirmed,
    EvmExecuted,
    EvmSafeTxCreated,
    EvmSignatureReceived,
)
from reserve.transfers.chain import BroadcastReport, ChainStep, ConfirmationReport, ReleaseOrder
from wallets.evm import executor, guard
from wallets.evm.safe_tx import SafeTx, checksum, safe_tx_hash
from wallets.evm.signatures import SignatureShare, check_share
from wallets.evm.transfer import ETH, ApprovedEVMTransfer, require_matches, to_safe_tx
from wallets.evm.vault import read_state


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _signatures(steps: tuple[ChainStep, ...]) -> list[EvmSignatureReceived]:
    """The owner signatures recorded so far, in order."""
    return [EvmSignatureReceived.from_payload(dict(step.payload)) for step in steps
            if step.kind == EvmSignatureReceived.KIND]


def chain_id_of(chain: str) -> int:
    """The EVM chain id of a CAIP-2 chain name ("eip155:31337")."""
    namespace, _, reference = chain.partition(":")
    if namespace != "eip155" or not reference.isdigit():
        raise EVMError(f"not an EVM chain (CAIP-2 eip155:<id>): {chain!r}")
    return int(reference)


@dataclass
class EVMAdapter:
    """ChainAdapter for one EVM vault (a Safe) on one chain."""

    w3: Web3
    vault_id: str
    safe_address: str
    # Pays gas for execTransaction and is the guard's registrar; holds no reserve funds.
    account: LocalAccount
    tokens: Mapping[str, str] = field(default_factory=dict)  # asset name -> token address
    confirmations: int = 1
    guard_address: str = ""  # the vault's registered guard; when given, the Safe's must be it

    def transfer_for(self, order: ReleaseOrder, nonce: int) -> ApprovedEVMTransfer:
        if order.vault_id != self.vault_id:
            raise EVMError(f"order is for vault {order.vault_id}, not {self.vault_id}")
        if len(order.outputs) != 1:
            raise EVMError("a Safe transfer pays exactly one destination; split the proposal")
        asset = order.asset if order.asset == ETH else self.tokens.get(order.asset, order.asset)
        return ApprovedEVMTransfer(
            proposal_digest=order.proposal_digest, policy_version=order.policy_version,
            vault_id=order.vault_id, chain_id=chain_id_of(order.chain),
            safe_address=checksum(self.safe_address), asset=asset,
            to=order.outputs[0].destination, amount_wei=order.outputs[0].amount, nonce=nonce)

    def _recorded(self, order: ReleaseOrder, steps: tuple[ChainStep, ...]
                  ) -> tuple[ApprovedEVMTransfer, SafeTx, bytes]:
        created = [step for step in steps if step.kind == EvmSafeTxCreated.KIND]
        if not created:
            raise EVMError("no Safe transaction prepared for this order yet")
        prepared = EvmSafeTxCreated.from_payload(dict(created[-1].payload))
        transfer = ApprovedEVMTransfer.from_json(dict(prepared.transfer))
        expected = self.transfer_for(order, transfer.nonce)
        if expected != transfer:
            raise MismatchError("prepared transfer", expected.as_json(), transfer.as_json())
        tx = SafeTx.from_json(dict(prepared.safe_tx))
        require_matches(transfer, tx)
        return transfer, tx, safe_tx_hash(transfer.chain_id, transfer.safe_address, tx)

    def prepare(self, order: ReleaseOrder) -> ChainStep:
        """The Safe transaction for `order`, registered as released on the vault's guard.

        The registration is sent before the step is returned, so the guard knows the hash
        before any owner can sign it; it is idempotent (a restart finds it registered and
        reports the earlier registration), and the step records where it is on chain.
        """
        state = read_state(self.w3, self.safe_address)
        if self.guard_address and state.guard != checksum(self.guard_address):
            raise MismatchError("Safe guard", checksum(self.guard_address), state.guard)
        transfer = self.transfer_for(order, state.nonce)
        executor.require_chain(self.w3, transfer)
        tx = to_safe_tx(transfer)
        digest = safe_tx_hash(transfer.chain_id, transfer.safe_address, tx)
        on_chain = executor.contract_hash(self.w3, transfer.safe_address, tx)
        if on_chain != digest:
            raise MismatchError("Safe transaction hash", digest.hex(), on_chain.hex())
        registration = guard.release(self.w3, self.account, state.guard, digest)
        payload = executor.proposal_payload(transfer, tx, digest)
        return ChainStep(EvmSafeTxCreated.KIND, {**payload, "release": registration.as_json()})

    def add_share(self, order: ReleaseOrder, steps: tuple[ChainStep, ...], signer: str,
                  share: str) -> ChainStep:
        """`signer` is the custodian's EVM address, `share` the 65-byte signature in hex."""
        transfer, _, digest = self._recorded(order, steps)
        if any(step.kind == EvmExecuted.KIND for step in steps):
            raise EVMError("the Safe transaction was already executed")
        try:
            signature = bytes.fromhex(share.removeprefix("0x"))
        except ValueError:
            raise EVMError("signature share is not hex") from None
        candidate = SignatureShare(signer, signature)
        owner = check_share(digest, candidate, read_state(self.w3, self.safe_address).owners)
        if any(signed.signer == owner for signed in _signatures(steps)):
            raise EVMError(f"owner {owner} already signed this Safe transaction")
        return ChainStep(EvmSignatureReceived.KIND,
                         executor.signature_payload(transfer, digest, owner, candidate))

    def broadcast(self, order: ReleaseOrder, steps: tuple[ChainStep, ...]) -> BroadcastReport:
        transfer, tx, digest = self._recorded(order, steps)
        if any(step.kind == EvmExecuted.KIND for step in steps):
            raise EVMError("the Safe transaction was already executed (replay refused)")
        state = read_state(self.w3, self.safe_address)
        found = executor.find_execution(self.w3, self.safe_address, digest) \
            if tx.nonce < state.nonce else None
        if found is None:
            shares = [SignatureShare(signed.signer, bytes.fromhex(signed.signature[2:]))
                      for signed in _signatures(steps)]
            found = executor.execute_safe_tx(self.w3, self.account, self.safe_address, tx,
                                             shares)
        return BroadcastReport(txid=_hex(found.tx_hash), step=ChainStep(
            EvmExecuted.KIND, executor.execution_payload(transfer, tx, found)))

    def confirmation(self, order: ReleaseOrder, steps: tuple[ChainStep, ...],
                     txid: str) -> ConfirmationReport:
        from web3.exceptions import TransactionNotFound

        try:
            receipt = self.w3.eth.get_transaction_receipt(txid)  # type: ignore[arg-type]
        except TransactionNotFound:
            return ConfirmationReport(depth=0)
        depth = self.w3.eth.block_number - int(receipt["blockNumber"]) + 1
        if depth < self.confirmations:
            return ConfirmationReport(depth=depth)
        confirmed = EvmConfirmed(tx_hash=txid, block_number=int(receipt["blockNumber"]),
                                 block_hash=_hex(receipt["blockHash"]), confirmations=depth,
                                 success=receipt["status"] == 1)
        return ConfirmationReport(depth=depth, step=ChainStep(confirmed.KIND,
                                                              confirmed.to_payload()))
