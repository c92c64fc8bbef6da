# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""The service-side flow for an approved transfer, against a real Safe on anvil.

propose -> custodians sign with the signing tool -> submit each signature -> execute, with
the ledger as the only record. Each refusal leaves the ledger and the chain untouched.
"""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account
from web3 import Web3

from reserve.errors import ContractReverted, EVMError, MismatchError, NodeUnavailable
from reserve.ledger import Ledger
from tests.support.evm_fixtures import (  # noqa: F401
    COLD_STORAGE,
    COUNTERPARTY,
    ETH_PER_TX,
    ETHER,
    NOT_ALLOWLISTED,
    THRESHOLD,
    TOKEN_PER_TX,
    Reserve,
    anvil,
    chain,
    deployed,
    ledger,
    w3,
)
from wallets.evm import contracts, executor
from wallets.evm.demo import execute_with_keys
from wallets.evm.safe_tx import SafeTx, safe_tx_hash
from wallets.evm.signatures import SignatureShare
from wallets.evm.transfer import ETH, ApprovedEVMTransfer, to_safe_tx
from wallets.evm.vault import read_state
from wallets.signer import evm as signer


def approved(reserve: Reserve, *, asset: str = ETH, to: str = COLD_STORAGE,
             amount: int = ETHER, nonce: int | None = None) -> ApprovedEVMTransfer:
    state = read_state(reserve.w3, reserve.deployment.safe)
    return ApprovedEVMTransfer(
        proposal_digest=hashlib.sha256(f"{asset}{to}{amount}".encode()).digest(),
        policy_version=1, vault_id="evm-reserve", chain_id=state.chain_id,
        safe_address=reserve.deployment.safe, asset=asset, to=to, amount_wei=amount,
        nonce=state.nonce if nonce is None else nonce)


def custodian_shares(reserve: Reserve, transfer: ApprovedEVMTransfer,
                     numbers: range = range(THRESHOLD)) -> list[SignatureShare]:
    request = signer.signing_request(transfer, to_safe_tx(transfer))
    return [signer.sign(request, Account.from_key(reserve.owner_keys[n])) for n in numbers]


def kinds(ledger: Ledger) -> list[str]:
    return [entry.kind for entry in ledger.entries()]


def run_flow(reserve: Reserve, ledger: Ledger, transfer: ApprovedEVMTransfer,
             signers: range = range(THRESHOLD)) -> executor.Execution:
    executor.propose(ledger, reserve.w3, transfer)
    owners = read_state(reserve.w3, reserve.deployment.safe).owners
    for share in custodian_shares(reserve, transfer, signers):
        executor.submit_signature(ledger, transfer, share, owners)
    return executor.execute(ledger, reserve.w3, transfer, reserve.deployer)


@pytest.mark.parametrize("data,value", [(b"", 1), (b"\x01\x02\x03", 0), (b"\xff" * 100, 7)])
def test_local_hash_equals_safe_get_transaction_hash(chain: Reserve, data: bytes,
                                                     value: int) -> None:
    tx = SafeTx.call(COUNTERPARTY, value, data, 42)
    local = safe_tx_hash(chain.deployment.chain_id, chain.deployment.safe, tx)
    assert local == executor.contract_hash(chain.w3, chain.deployment.safe, tx)


def test_eth_transfer_end_to_end_is_recorded(chain: Reserve, ledger: Ledger) -> None:
    transfer = approved(chain, amount=2 * ETHER)
    before = chain.w3.eth.get_balance(COLD_STORAGE)
    execution = run_flow(chain, ledger, transfer)
    assert execution.success
    assert chain.w3.eth.get_balance(COLD_STORAGE) - before == 2 * ETHER
    assert kinds(ledger) == ["evm.safe_tx_created"] + ["evm.signature_received"] * 3 \
        + ["evm.executed"]
    recorded = next(iter(ledger.entries(kinds=["evm.executed"]))).payload
    assert recorded["amount_wei"] == str(2 * ETHER) and recorded["success"] is True
    assert recorded["tx_hash"] == "0x" + execution.tx_hash.hex()
    receipt = chain.w3.eth.get_transaction_receipt(recorded["tx_hash"])
    assert receipt["blockNumber"] == recorded["block_number"]


def test_token_transfer_end_to_end(chain: Reserve, ledger: Ledger) -> None:
    transfer = approved(chain, asset=chain.deployment.token, to=COUNTERPARTY,
                        amount=TOKEN_PER_TX)
    # Signers out of address order: the service sorts them as the Safe requires.
    assert run_flow(chain, ledger, transfer, range(4, 1, -1)).success
    token = contracts.at(chain.w3, "ReserveToken", chain.deployment.token)
    assert token.functions.balanceOf(COUNTERPARTY).call() == TOKEN_PER_TX


def test_non_owner_signature_is_refused(chain: Reserve, ledger: Ledger) -> None:
    transfer = approved(chain)
    executor.propose(ledger, chain.w3, transfer)
    request = signer.signing_request(transfer, to_safe_tx(transfer))
    outsider = signer.sign(request, Account.from_key(b"\x02" * 32))
    size = ledger.size()
    with pytest.raises(EVMError, match="is not an owner of this Safe"):
        executor.submit_signature(ledger, transfer, outsider,
                                  read_state(chain.w3, chain.deployment.safe).owners)
    assert ledger.size() == size


def test_signature_over_another_transaction_is_refused(chain: Reserve, ledger: Ledger) -> None:
    transfer = approved(chain)
    other = approved(chain, amount=ETHER + 1)
    executor.propose(ledger, chain.w3, transfer)
    (wrong,) = custodian_shares(chain, other, range(1))
    size = ledger.size()
    with pytest.raises(EVMError, match="signed a different transaction"):
        executor.submit_signature(ledger, transfer, wrong,
                                  read_state(chain.w3, chain.deployment.safe).owners)
    assert ledger.size() == size


def test_duplicate_signature_is_refused(chain: Reserve, ledger: Ledger) -> None:
    transfer = approved(chain)
    executor.propose(ledger, chain.w3, transfer)
    owners = read_state(chain.w3, chain.deployment.safe).owners
    (share,) = custodian_shares(chain, transfer, range(1))
    executor.submit_signature(ledger, transfer, share, owners)
    with pytest.raises(EVMError, match="already signed"):
        executor.submit_signature(ledger, transfer, share, owners)


def test_too_few_signatures_sends_nothing(chain: Reserve, ledger: Ledger) -> None:
    transfer = approved(chain)
    before = chain.w3.eth.get_balance(COLD_STORAGE)
    block = chain.w3.eth.block_number
    with pytest.raises(EVMError, match=r"too few signatures: 2 of 3 required"):
        run_flow(chain, ledger, transfer, range(2))
    assert "evm.executed" not in kinds(ledger)
    assert chain.w3.eth.get_balance(COLD_STORAGE) == before
    assert chain.w3.eth.block_number == block  # not even a failed transaction was mined


def test_stale_and_replayed_nonces_are_refused_before_the_chain(chain: Reserve,
                                                                ledger: Ledger) -> None:
    transfer = approved(chain)
    run_flow(chain, ledger, transfer)
    block = chain.w3.eth.block_number
    with pytest.raises(EVMError, match="already executed"):
        executor.execute(ledger, chain.w3, transfer, chain.deployer)
    stale = approved(chain, amount=3 * ETHER, nonce=transfer.nonce)
    with pytest.raises(EVMError, match=r"stale Safe nonce"):
        executor.propose(ledger, chain.w3, stale)
    ahead = approved(chain, nonce=transfer.nonce + 5)
    with pytest.raises(EVMError, match="not due"):
        executor.propose(ledger, chain.w3, ahead)
    # A fresh ledger (say, restored from an old backup) cannot replay it either.
    with Ledger.open("sqlite:///:memory:") as other:
        tx = to_safe_tx(transfer)
        other.append("evm.safe_tx_created", "test", executor.proposal_payload(
            transfer, tx, safe_tx_hash(transfer.chain_id, transfer.safe_address, tx)))
        with pytest.raises(EVMError, match="stale Safe nonce"):
            executor.execute(other, chain.w3, transfer, chain.deployer)
    assert chain.w3.eth.block_number == block


def test_guard_violation_is_readable_and_records_nothing(chain: Reserve, ledger: Ledger) -> None:
    transfer = approved(chain, to=NOT_ALLOWLISTED)
    with pytest.raises(ContractReverted, match="is not on the vault's on-chain allowlist"):
        run_flow(chain, ledger, transfer)
    assert "evm.executed" not in kinds(ledger)
    over = approved(chain, amount=ETH_PER_TX + 1)
    with pytest.raises(ContractReverted, match="per-transaction limit"):
        run_flow(chain, ledger, over)
    # The owners freeze the vault on chain; a transfer the policy approved is still stopped.
    guard = contracts.at(chain.w3, "ReserveGuard", chain.deployment.guard)
    freeze = SafeTx.call(chain.deployment.guard, 0,
                         bytes.fromhex(guard.encode_abi("freeze")[2:]),
                         read_state(chain.w3, chain.deployment.safe).nonce)
    execute_with_keys(chain.w3, chain.deployer, chain.deployment.safe, freeze,
                      chain.owner_keys[:THRESHOLD])
    balance = chain.w3.eth.get_balance(COLD_STORAGE)
    with pytest.raises(ContractReverted, match="ReserveGuard refused: vault frozen"):
        run_flow(chain, ledger, approved(chain))
    assert "evm.executed" not in kinds(ledger)
    assert chain.w3.eth.get_balance(COLD_STORAGE) == balance


def test_wrong_chain_is_refused(chain: Reserve, ledger: Ledger) -> None:
    transfer = approved(chain)
    elsewhere = ApprovedEVMTransfer(**{**transfer.__dict__, "chain_id": 11155111})
    with pytest.raises(MismatchError, match="chain id"):
        executor.propose(ledger, chain.w3, elsewhere)
    assert ledger.size() == 0


def test_node_down_mid_flow_records_nothing_and_resumes(ledger: Ledger) -> None:
    """A dedicated anvil that dies after the signatures are in: execute fails cleanly."""
    from tests.support.evm_fixtures import deploy_test_reserve
    from wallets.evm import anvil as anvil_node

    node = anvil_node.start()
    try:
        reserve = deploy_test_reserve(Web3(Web3.HTTPProvider(node.url,
                                                             request_kwargs={"timeout": 5})))
        transfer = approved(reserve)
        executor.propose(ledger, reserve.w3, transfer)
        owners = read_state(reserve.w3, reserve.deployment.safe).owners
        for share in custodian_shares(reserve, transfer):
            executor.submit_signature(ledger, transfer, share, owners)
    finally:
        node.stop()
    size = ledger.size()
    with pytest.raises(NodeUnavailable):
        executor.execute(ledger, reserve.w3, transfer, reserve.deployer)
    assert ledger.size() == size
