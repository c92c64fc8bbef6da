# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""The EVM ChainAdapter against anvil: the workflow's seam, step by step and on bad input."""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account

from reserve.errors import ContractReverted, EVMError, MismatchError
from reserve.events.chain_evm import EvmSafeTxCreated
from reserve.transfers.chain import ChainAdapter, ChainStep, ReleaseOrder, ReleaseOutput
from tests.support.evm_fixtures import (  # noqa: F401
    COLD_STORAGE,
    ETHER,
    THRESHOLD,
    Reserve,
    anvil,
    chain,
    deployed,
    w3,
)
from wallets.evm import executor, guard
from wallets.evm.adapter import EVMAdapter, chain_id_of
from wallets.evm.safe_tx import SafeTx, safe_tx_hash
from wallets.evm.transfer import to_safe_tx
from wallets.evm.vault import read_state


def order(*outputs: ReleaseOutput, asset: str = "ETH") -> ReleaseOrder:
    return ReleaseOrder(proposal_digest=hashlib.sha256(b"order").digest(), policy_version=1,
                        vault_id="reserve-safe", network="anvil", chain="eip155:31337",
                        asset=asset, outputs=outputs or (ReleaseOutput(COLD_STORAGE, ETHER),),
                        fee_max=0)


def adapter(reserve: Reserve) -> EVMAdapter:
    return EVMAdapter(w3=reserve.w3, vault_id="reserve-safe", safe_address=reserve.deployment.safe,
                      account=reserve.deployer, tokens={"tRGT": reserve.deployment.token})


def sign(reserve: Reserve, step: ChainStep, number: int) -> tuple[str, str]:
    tx = SafeTx.from_json(dict(step.payload["safe_tx"]))
    digest = safe_tx_hash(31337, reserve.deployment.safe, tx)
    key = reserve.owner_keys[number]
    signed = Account.unsafe_sign_hash(digest, key)
    return Account.from_key(key).address, "0x" + bytes(signed.signature).hex()


def test_adapter_carries_an_order_to_confirmation(chain: Reserve) -> None:
    evm = adapter(chain)
    assert isinstance(evm, ChainAdapter)
    release = order()
    steps: tuple[ChainStep, ...] = (evm.prepare(release),)
    for number in range(THRESHOLD):
        steps += (evm.add_share(release, steps, *sign(chain, steps[0], number)),)
    before = chain.w3.eth.get_balance(COLD_STORAGE)
    report = evm.broadcast(release, steps)
    assert report.step.kind == "evm.executed" and report.step.payload["success"] is True
    assert chain.w3.eth.get_balance(COLD_STORAGE) - before == ETHER
    confirmation = evm.confirmation(release, steps + (report.step,), report.txid)
    assert confirmation.depth == 1 and confirmation.step is not None
    with pytest.raises(EVMError, match="already executed"):
        evm.broadcast(release, steps + (report.step,))


def test_token_order_by_asset_name(chain: Reserve) -> None:
    evm = adapter(chain)
    step = evm.prepare(order(ReleaseOutput(COLD_STORAGE, 5 * ETHER), asset="tRGT"))
    assert step.payload["safe_tx"]["to"] == chain.deployment.token


def test_adapter_refusals(chain: Reserve) -> None:
    evm = adapter(chain)
    release = order()
    with pytest.raises(EVMError, match="exactly one destination"):
        evm.prepare(order(ReleaseOutput(COLD_STORAGE, 1), ReleaseOutput(COLD_STORAGE, 2)))
    with pytest.raises(EVMError, match="no Safe transaction prepared"):
        evm.add_share(release, (), *sign(chain, evm.prepare(release), 0))
    steps = (evm.prepare(release),)
    signer, share = sign(chain, steps[0], 0)
    steps += (evm.add_share(release, steps, signer, share),)
    with pytest.raises(EVMError, match="already signed"):
        evm.add_share(release, steps, signer, share)
    outsider = Account.from_key(b"\x05" * 32)
    digest = safe_tx_hash(31337, chain.deployment.safe,
                          SafeTx.from_json(dict(steps[0].payload["safe_tx"])))
    forged = "0x" + bytes(Account.unsafe_sign_hash(digest, outsider.key).signature).hex()
    with pytest.raises(EVMError, match="not an owner"):
        evm.add_share(release, steps, outsider.address, forged)
    with pytest.raises(EVMError, match="too few signatures"):
        evm.broadcast(release, steps)
    other = order(ReleaseOutput(COLD_STORAGE, 2 * ETHER))
    with pytest.raises(MismatchError, match="prepared transfer mismatch"):
        evm.broadcast(other, steps)
    with pytest.raises(EVMError, match="not an EVM chain"):
        chain_id_of("bip122:000000000019d6689c085ae165831e93")


def test_broadcast_resumes_when_the_safe_already_executed(chain: Reserve) -> None:
    """A crash after sending: the next broadcast finds the execution instead of resending."""
    evm = adapter(chain)
    release = order()
    steps: tuple[ChainStep, ...] = (evm.prepare(release),)
    for number in range(THRESHOLD):
        steps += (evm.add_share(release, steps, *sign(chain, steps[0], number)),)
    tx = SafeTx.from_json(dict(steps[0].payload["safe_tx"]))
    shares = [executor.SignatureShare(s.payload["signer"],
                                      bytes.fromhex(s.payload["signature"][2:]))
              for s in steps[1:]]
    sent = executor.execute_safe_tx(chain.w3, chain.deployer, chain.deployment.safe, tx, shares)
    block = chain.w3.eth.block_number
    report = evm.broadcast(release, steps)
    assert report.txid == "0x" + sent.tx_hash.hex()
    assert chain.w3.eth.block_number == block


def test_prepare_registers_the_hash_on_the_guard_once(chain: Reserve) -> None:
    """Release registers the Safe transaction as released; a restart finds it registered."""
    evm = adapter(chain)
    release = order()
    step = evm.prepare(release)
    digest = safe_tx_hash(31337, chain.deployment.safe,
                          SafeTx.from_json(dict(step.payload["safe_tx"])))
    registered = step.payload["release"]
    assert registered["safe_tx_hash"] == "0x" + digest.hex()
    assert registered["guard"] == chain.deployment.guard
    assert guard.is_released(chain.w3, chain.deployment.guard, digest)
    block = chain.w3.eth.block_number
    again = evm.prepare(release)  # e.g. the service restarted before recording the step
    assert again == step and chain.w3.eth.block_number == block  # nothing sent twice
    assert EvmSafeTxCreated.from_payload(dict(step.payload)).release == registered


def test_prepare_refuses_a_safe_whose_guard_is_not_the_vaults(chain: Reserve) -> None:
    evm = EVMAdapter(w3=chain.w3, vault_id="reserve-safe", safe_address=chain.deployment.safe,
                     account=chain.deployer, guard_address=COLD_STORAGE)
    with pytest.raises(MismatchError, match="Safe guard"):
        evm.prepare(order())


def test_an_unregistered_hash_is_refused_at_broadcast(chain: Reserve) -> None:
    """Three owners signed, but the step did not come from prepare: the guard refuses."""
    evm = adapter(chain)
    release = order()
    transfer = evm.transfer_for(release, read_state(chain.w3, chain.deployment.safe).nonce)
    tx = to_safe_tx(transfer)
    digest = safe_tx_hash(31337, chain.deployment.safe, tx)
    steps: tuple[ChainStep, ...] = (ChainStep(
        EvmSafeTxCreated.KIND, executor.proposal_payload(transfer, tx, digest)),)
    for number in range(THRESHOLD):
        steps += (evm.add_share(release, steps, *sign(chain, steps[0], number)),)
    with pytest.raises(ContractReverted, check=lambda error: error.name == "NotReleased"):
        evm.broadcast(release, steps)
