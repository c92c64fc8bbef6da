"""Carrying out an approved transfer through its Safe: propose, collect signatures, execute.

Service-side shell. The evidence lives in the ledger: `evm.safe_tx_created` (the Safe
transaction and its hash, bound to the proposal digest), one `evm.signature_received` per
custodian, then `evm.executed` with the receipt. State is derived from those entries, so a
crash between steps resumes cleanly. Every check happens BEFORE anything is sent or
written: chain id, Safe nonce (a stale or replayed nonce is refused), the transaction
matching the approval, each signature recovering to an owner over exactly this hash, and
the threshold. A guard refusal is simulated first and reported in words.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt

from reserve.errors import ContractReverted, EVMError, MismatchError, NodeUnavailable
from reserve.events.chain_evm import EvmExecuted, EvmSafeTxCreated, EvmSignatureReceived
from reserve.ledger.store import Ledger
from wallets.evm import contracts, guard
from wallets.evm.safe_tx import SafeTx, checksum, safe_tx_hash
from wallets.evm.signatures import SignatureShare, check_share, pack_signatures
from wallets.evm.transfer import ApprovedEVMTransfer, describe, require_matches, to_safe_tx
from wallets.evm.vault import VaultState, read_state

ACTOR = "service:evm"
# The kinds recorded per Safe transaction, each naming it by `safe_tx_hash`.
Recorded = TypeVar("Recorded", EvmSafeTxCreated, EvmSignatureReceived, EvmExecuted)


@dataclass(frozen=True)
class Execution:
    """What the chain says happened to a Safe transaction."""

    safe_tx_hash: bytes
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    success: bool
    gas_used: int


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _events_for(ledger: Ledger, kind: type[Recorded], safe_tx_hash_hex: str) -> list[Recorded]:
    """The recorded events of one kind about one Safe transaction, in ledger order."""
    found = (kind.of(entry) for entry in ledger.entries(kinds=[kind.KIND]))
    return [event for event in found if event.safe_tx_hash == safe_tx_hash_hex]


def require_chain(w3: Web3, transfer: ApprovedEVMTransfer) -> None:
    try:
        chain_id = w3.eth.chain_id
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None
    if chain_id != transfer.chain_id:
        raise MismatchError("chain id", transfer.chain_id, chain_id)


def require_nonce(state: VaultState, nonce: int) -> None:
    """Refuse a nonce the Safe already used (stale or replayed) or one not yet due."""
    if nonce < state.nonce:
        raise EVMError(f"stale Safe nonce {nonce}: the Safe is at nonce {state.nonce}, so a "
                       "transaction with this nonce already ran (replay refused)")
    if nonce > state.nonce:
        raise EVMError(f"Safe nonce {nonce} is not due: the Safe is at nonce {state.nonce}; "
                       "execute the earlier transactions first")


def contract_hash(w3: Web3, safe_address: str, tx: SafeTx) -> bytes:
    """`Safe.getTransactionHash` for `tx`: the chain's own view of the hash."""
    safe = contracts.at(w3, "Safe", safe_address)
    return bytes(safe.functions.getTransactionHash(
        tx.to, tx.value, tx.data, tx.operation, tx.safe_tx_gas, tx.base_gas, tx.gas_price,
        tx.gas_token, tx.refund_receiver, tx.nonce).call())


def propose(ledger: Ledger, w3: Web3, transfer: ApprovedEVMTransfer,
            actor: str = ACTOR) -> tuple[SafeTx, bytes]:
    """Build the Safe transaction for an approved transfer and record it (idempotent)."""
    require_chain(w3, transfer)
    tx = to_safe_tx(transfer)
    digest = safe_tx_hash(transfer.chain_id, transfer.safe_address, tx)
    if _events_for(ledger, EvmSafeTxCreated, _hex(digest)):
        return tx, digest
    require_nonce(read_state(w3, transfer.safe_address), transfer.nonce)
    on_chain = contract_hash(w3, transfer.safe_address, tx)
    if on_chain != digest:
        raise MismatchError("Safe transaction hash", _hex(digest), _hex(on_chain))
    ledger.append(EvmSafeTxCreated.KIND, actor, proposal_payload(transfer, tx, digest))
    return tx, digest


def proposal_payload(transfer: ApprovedEVMTransfer, tx: SafeTx, digest: bytes
                     ) -> dict[str, Any]:
    """The `evm.safe_tx_created` payload: the transaction, its hash and the approval."""
    return EvmSafeTxCreated(
        safe_tx_hash=_hex(digest), digest=transfer.proposal_digest.hex(),
        policy_version=transfer.policy_version, vault=transfer.vault_id,
        chain_id=transfer.chain_id, safe=transfer.safe_address, safe_tx=tx.as_json(),
        transfer=transfer.as_json()).to_payload()


def signature_payload(transfer: ApprovedEVMTransfer, digest: bytes, owner: str,
                      share: SignatureShare) -> dict[str, Any]:
    return EvmSignatureReceived(
        safe_tx_hash=_hex(digest), digest=transfer.proposal_digest.hex(), signer=owner,
        signature=_hex(share.signature)).to_payload()


def submit_signature(ledger: Ledger, transfer: ApprovedEVMTransfer, share: SignatureShare,
                     owners: Iterable[str], actor: str | None = None) -> str:
    """Check one custodian's signature against the approved transfer and record it.

    Returns the owner. Refuses (nothing recorded) a signature over another transaction, a
    non-owner, a second signature from the same owner, or a transfer never proposed.
    """
    tx = to_safe_tx(transfer)
    digest = safe_tx_hash(transfer.chain_id, transfer.safe_address, tx)
    if not _events_for(ledger, EvmSafeTxCreated, _hex(digest)):
        raise EVMError(f"Safe transaction {_hex(digest)} was never proposed")
    if _events_for(ledger, EvmExecuted, _hex(digest)):
        raise EVMError(f"Safe transaction {_hex(digest)} was already executed")
    owner = check_share(digest, share, tuple(owners))
    for signed in _events_for(ledger, EvmSignatureReceived, _hex(digest)):
        if signed.signer == owner:
            raise EVMError(f"owner {owner} already signed Safe transaction {_hex(digest)}")
    ledger.append(EvmSignatureReceived.KIND, actor or f"custodian:{owner}",
                  signature_payload(transfer, digest, owner, share))
    return owner


def recorded_shares(ledger: Ledger, digest: bytes) -> list[SignatureShare]:
    return [SignatureShare(signed.signer, bytes.fromhex(signed.signature[2:]))
            for signed in _events_for(ledger, EvmSignatureReceived, _hex(digest))]


def execute_safe_tx(w3: Web3, account: LocalAccount, safe_address: str, tx: SafeTx,
                    shares: Iterable[SignatureShare]) -> Execution:
    """Check everything against the chain's current state, then call execTransaction.

    Raises EVMError (nothing sent) for a stale/future nonce, a bad or missing signature, a
    hash disagreement, or a revert found in simulation (guard refusals decoded).
    """
    state = read_state(w3, safe_address)
    require_nonce(state, tx.nonce)
    digest = safe_tx_hash(state.chain_id, state.safe_address, tx)
    if contract_hash(w3, safe_address, tx) != digest:
        raise EVMError("the Safe computes a different transaction hash; refusing")
    signatures = pack_signatures(digest, shares, state.owners, state.threshold)
    safe = contracts.at(w3, "Safe", safe_address)
    try:
        receipt = contracts.transact(w3, account, safe.functions.execTransaction(
            tx.to, tx.value, tx.data, tx.operation, tx.safe_tx_gas, tx.base_gas, tx.gas_price,
            tx.gas_token, tx.refund_receiver, signatures))
    except ContractReverted as error:
        if error.name == "GS013":
            raise _inner_failure(w3, state.safe_address, tx, error) from None
        raise
    return _execution_of(w3, safe_address, digest, receipt)


def _inner_failure(w3: Web3, safe_address: str, tx: SafeTx,
                   outer: ContractReverted) -> ContractReverted:
    """Why the Safe's inner call fails: GS013 alone hides it, so replay it from the Safe."""
    try:
        w3.eth.call(cast(TxParams, {"from": safe_address, "to": tx.to, "value": tx.value,
                                     "data": tx.data}))
    except ContractLogicError as error:
        inner = contracts.explain(error)
        if isinstance(inner, ContractReverted):
            return ContractReverted(f"the Safe transaction's call would fail: {inner}",
                                    name=inner.name, arguments=inner.arguments,
                                    contract=inner.contract)
    return outer


def _execution_of(w3: Web3, safe_address: str, digest: bytes, receipt: TxReceipt) -> Execution:
    safe = contracts.at(w3, "Safe", safe_address)
    succeeded = [log for log in safe.events.ExecutionSuccess().process_receipt(receipt, errors=DISCARD)
                 if bytes(log["args"]["txHash"]) == digest]
    failed = [log for log in safe.events.ExecutionFailure().process_receipt(receipt, errors=DISCARD)
              if bytes(log["args"]["txHash"]) == digest]
    if len(succeeded) + len(failed) != 1:
        raise EVMError(f"receipt 0x{bytes(receipt['transactionHash']).hex()} does not show "
                       f"Safe transaction {_hex(digest)}")
    return Execution(safe_tx_hash=digest, tx_hash=bytes(receipt["transactionHash"]),
                     block_number=int(receipt["blockNumber"]),
                     block_hash=bytes(receipt["blockHash"]), success=bool(succeeded),
                     gas_used=int(receipt["gasUsed"]))


def execute(ledger: Ledger, w3: Web3, transfer: ApprovedEVMTransfer, account: LocalAccount,
            actor: str = ACTOR) -> Execution:
    """Execute an approved, proposed and signed transfer and record the receipt."""
    require_chain(w3, transfer)
    tx = to_safe_tx(transfer)
    require_matches(transfer, tx)
    digest = safe_tx_hash(transfer.chain_id, transfer.safe_address, tx)
    if not _events_for(ledger, EvmSafeTxCreated, _hex(digest)):
        raise EVMError(f"Safe transaction {_hex(digest)} was never proposed")
    if _events_for(ledger, EvmExecuted, _hex(digest)):
        raise EVMError(f"Safe transaction {_hex(digest)} was already executed (replay refused)")
    shares = recorded_shares(ledger, digest)
    # This path's release is the recorded proposal: the service account (the guard's
    # registrar) registers the hash, once nonce and signatures pass, before executing.
    state = read_state(w3, transfer.safe_address)
    require_nonce(state, tx.nonce)
    pack_signatures(digest, shares, state.owners, state.threshold)
    guard.release(w3, account, state.guard, digest)
    execution = execute_safe_tx(w3, account, transfer.safe_address, tx, shares)
    record_execution(ledger, transfer, tx, execution, actor)
    return execution


def record_execution(ledger: Ledger, transfer: ApprovedEVMTransfer, tx: SafeTx,
                     execution: Execution, actor: str = ACTOR) -> None:
    ledger.append(EvmExecuted.KIND, actor, execution_payload(transfer, tx, execution))


def execution_payload(transfer: ApprovedEVMTransfer, tx: SafeTx, execution: Execution
                      ) -> dict[str, Any]:
    """The `evm.executed` payload: what moved (decoded from the transaction) and the receipt."""
    asset, recipient, amount = describe(tx)
    return EvmExecuted(
        safe_tx_hash=_hex(execution.safe_tx_hash), digest=transfer.proposal_digest.hex(),
        vault=transfer.vault_id, chain_id=transfer.chain_id, safe=transfer.safe_address,
        asset=asset, to=recipient, amount_wei=amount, nonce=tx.nonce,
        tx_hash=_hex(execution.tx_hash), block_number=execution.block_number,
        block_hash=_hex(execution.block_hash), success=execution.success,
        gas_used=execution.gas_used).to_payload()


def find_execution(w3: Web3, safe_address: str, digest: bytes, from_block: int = 0
                   ) -> Execution | None:
    """The on-chain execution of `digest`, if any: resumes a flow interrupted after sending."""
    safe = contracts.at(w3, "Safe", checksum(safe_address))
    for event in (safe.events.ExecutionSuccess, safe.events.ExecutionFailure):
        logs = event().get_logs(argument_filters={"txHash": digest}, from_block=from_block)
        for log in logs:
            receipt = w3.eth.get_transaction_receipt(log["transactionHash"])
            return _execution_of(w3, safe_address, digest, receipt)
    return None
