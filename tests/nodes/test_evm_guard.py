# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""ReserveGuard on a real Safe v1.4.1 on anvil: every function and every revert path.

Transfers go through the Safe with the TEST custodians' signatures at the threshold, each
released first by the registrar (the TEST deployer) as the workflow does, so each refusal
below is the guard speaking through `execTransaction`, decoded into words. A Safe
transaction the registrar never released is refused however many owners signed it.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from reserve.errors import ContractReverted, EVMError
from tests.support.evm_fixtures import (  # noqa: F401
    COLD_STORAGE,
    COUNTERPARTY,
    ETH_DAILY,
    ETH_PER_TX,
    ETHER,
    NOT_ALLOWLISTED,
    THRESHOLD,
    TOKEN_PER_TX,
    Reserve,
    anvil,
    chain,
    deployed,
    rpc,
    w3,
)
from wallets.evm import contracts
from wallets.evm import guard as guard_module
from wallets.evm.demo import execute_with_keys
from wallets.evm.executor import Execution
from wallets.evm.safe_tx import DELEGATE_CALL, ZERO_ADDRESS, SafeTx, safe_tx_hash
from wallets.evm.transfer import erc20_transfer_data
from wallets.evm.vault import read_state

SAFE_GUARD_INTERFACE_ID = bytes.fromhex("e6d7a83a")
ERC165_INTERFACE_ID = bytes.fromhex("01ffc9a7")


def run(reserve: Reserve, to: str, value: int = 0, data: bytes = b"", **fields: int) -> Execution:
    """Sign with the first THRESHOLD custodians and execute at the Safe's current nonce."""
    nonce = read_state(reserve.w3, reserve.deployment.safe).nonce
    tx = SafeTx(to=to, value=value, data=data, operation=fields.get("operation", 0),
                safe_tx_gas=fields.get("safe_tx_gas", 0), base_gas=0,
                gas_price=fields.get("gas_price", 0), gas_token=ZERO_ADDRESS,
                refund_receiver=ZERO_ADDRESS, nonce=nonce)
    return execute_with_keys(reserve.w3, reserve.deployer, reserve.deployment.safe, tx,
                             reserve.owner_keys[:THRESHOLD])


def guard_call(reserve: Reserve, function: str, *args: object) -> Execution:
    guard = contracts.at(reserve.w3, "ReserveGuard", reserve.deployment.guard)
    data = bytes.fromhex(guard.encode_abi(function, args=list(args))[2:])
    return run(reserve, reserve.deployment.guard, 0, data)


def refused(name: str):
    return pytest.raises(ContractReverted, match=r"ReserveGuard refused") if name == "" \
        else pytest.raises(ContractReverted, check=lambda error: error.name == name)


def guard(reserve: Reserve):
    return contracts.at(reserve.w3, "ReserveGuard", reserve.deployment.guard)


def test_guard_is_set_and_reports_its_interface(chain: Reserve) -> None:
    contract = guard(chain)
    assert read_state(chain.w3, chain.deployment.safe).guard == chain.deployment.guard
    assert contract.functions.safe().call() == chain.deployment.safe
    assert contract.functions.supportsInterface(SAFE_GUARD_INTERFACE_ID).call()
    assert contract.functions.supportsInterface(ERC165_INTERFACE_ID).call()
    assert not contract.functions.supportsInterface(b"\xff\xff\xff\xff").call()
    assert contract.functions.isAllowlisted(COLD_STORAGE).call()
    assert not contract.functions.isAllowlisted(NOT_ALLOWLISTED).call()
    limits = contract.functions.assetLimits(ZERO_ADDRESS).call()
    assert tuple(limits) == (True, ETH_PER_TX, ETH_DAILY)


def test_eth_transfer_within_limits_goes_through(chain: Reserve) -> None:
    before = chain.w3.eth.get_balance(COLD_STORAGE)
    execution = run(chain, COLD_STORAGE, 2 * ETHER)
    assert execution.success
    assert chain.w3.eth.get_balance(COLD_STORAGE) - before == 2 * ETHER
    assert guard(chain).functions.spentInWindow(ZERO_ADDRESS).call() == 2 * ETHER


def test_token_transfer_within_limits_goes_through(chain: Reserve) -> None:
    token = contracts.at(chain.w3, "ReserveToken", chain.deployment.token)
    execution = run(chain, chain.deployment.token, 0,
                    erc20_transfer_data(COUNTERPARTY, TOKEN_PER_TX))
    assert execution.success
    assert token.functions.balanceOf(COUNTERPARTY).call() == TOKEN_PER_TX


def test_destination_not_allowlisted_is_refused_in_words(chain: Reserve) -> None:
    with pytest.raises(ContractReverted) as caught:
        run(chain, NOT_ALLOWLISTED, ETHER)
    assert caught.value.name == "DestinationNotAllowlisted"
    assert f"destination {NOT_ALLOWLISTED} is not on the vault's on-chain allowlist" \
        in str(caught.value)
    with refused("DestinationNotAllowlisted"):
        run(chain, chain.deployment.token, 0, erc20_transfer_data(NOT_ALLOWLISTED, 1))


def test_over_transaction_limit_is_refused(chain: Reserve) -> None:
    with pytest.raises(ContractReverted) as caught:
        run(chain, COLD_STORAGE, ETH_PER_TX + 1)
    assert caught.value.name == "AmountOverTransactionLimit"
    assert caught.value.arguments["limit"] == ETH_PER_TX
    with refused("AmountOverTransactionLimit"):
        run(chain, chain.deployment.token, 0, erc20_transfer_data(COLD_STORAGE, TOKEN_PER_TX + 1))


def test_rolling_daily_limit_and_its_window(chain: Reserve) -> None:
    run(chain, COLD_STORAGE, ETH_PER_TX)
    with pytest.raises(ContractReverted) as caught:
        run(chain, COUNTERPARTY, ETH_DAILY - ETH_PER_TX + 1)
    assert caught.value.name == "DailyLimitExceeded"
    assert caught.value.arguments["spentInWindow"] == ETH_PER_TX
    run(chain, COUNTERPARTY, ETH_DAILY - ETH_PER_TX)  # exactly up to the limit is allowed
    rpc(chain.w3, "evm_increaseTime", 23 * 3600)
    rpc(chain.w3, "evm_mine")
    with refused("DailyLimitExceeded"):
        run(chain, COLD_STORAGE, 1)
    rpc(chain.w3, "evm_increaseTime", 2 * 3600)
    rpc(chain.w3, "evm_mine")
    assert guard(chain).functions.spentInWindow(ZERO_ADDRESS).call() == 0
    assert run(chain, COLD_STORAGE, ETHER).success


def test_freeze_blocks_transfers_and_only_the_registrar_unfreezes(chain: Reserve) -> None:
    guard_call(chain, "freeze")  # the owners may freeze: the safe direction
    assert guard(chain).functions.frozen().call()
    with pytest.raises(ContractReverted) as caught:
        run(chain, COLD_STORAGE, ETHER)
    assert caught.value.name == "VaultFrozen"
    assert "ReserveGuard refused: vault frozen" in str(caught.value)
    # The owners alone cannot lift it: the unfreeze follows the ledger's quorum.
    with pytest.raises(ContractReverted) as refusal:
        guard_call(chain, "unfreeze")
    assert refusal.value.name == "NotRegistrar"
    assert guard(chain).functions.frozen().call()
    assert guard_module.set_frozen(chain.w3, chain.deployer, chain.deployment.guard,
                                   False) is not None
    assert not guard(chain).functions.frozen().call()
    assert run(chain, COLD_STORAGE, ETHER).success


def test_owners_freeze_without_a_release(chain: Reserve) -> None:
    """The one Safe transaction the registrar need not release: freezing, the safe way."""
    contract = guard(chain)
    tx = SafeTx.call(chain.deployment.guard, 0, bytes.fromhex(contract.encode_abi("freeze")[2:]),
                     read_state(chain.w3, chain.deployment.safe).nonce)
    assert execute_with_keys(chain.w3, chain.deployer, chain.deployment.safe, tx,
                             chain.owner_keys[:THRESHOLD], release=False).success
    assert contract.functions.frozen().call()
    unfreeze = SafeTx.call(chain.deployment.guard, 0,
                           bytes.fromhex(contract.encode_abi("unfreeze")[2:]), tx.nonce + 1)
    with pytest.raises(ContractReverted, check=lambda error: error.name == "NotReleased"):
        execute_with_keys(chain.w3, chain.deployer, chain.deployment.safe, unfreeze,
                          chain.owner_keys[:THRESHOLD], release=False)


def test_registrar_freeze_and_unfreeze_are_idempotent(chain: Reserve) -> None:
    address = chain.deployment.guard
    assert guard(chain).functions.registrar().call() == chain.deployer.address
    assert guard_module.set_frozen(chain.w3, chain.deployer, address, True) is not None
    assert guard_module.set_frozen(chain.w3, chain.deployer, address, True) is None
    assert guard_module.is_frozen(chain.w3, address)
    assert guard_module.set_frozen(chain.w3, chain.deployer, address, False) is not None
    assert guard_module.set_frozen(chain.w3, chain.deployer, address, False) is None


def unsigned(reserve: Reserve, to: str, value: int) -> SafeTx:
    nonce = read_state(reserve.w3, reserve.deployment.safe).nonce
    return SafeTx(to=to, value=value, data=b"", operation=0, safe_tx_gas=0, base_gas=0,
                  gas_price=0, gas_token=ZERO_ADDRESS, refund_receiver=ZERO_ADDRESS,
                  nonce=nonce)


def test_a_safe_transaction_never_released_is_refused(chain: Reserve) -> None:
    tx = unsigned(chain, COLD_STORAGE, ETHER)
    digest = safe_tx_hash(chain.deployment.chain_id, chain.deployment.safe, tx)
    before = chain.w3.eth.get_balance(COLD_STORAGE)
    with pytest.raises(ContractReverted) as caught:  # three owners signed; not released
        execute_with_keys(chain.w3, chain.deployer, chain.deployment.safe, tx,
                          chain.owner_keys[:THRESHOLD], release=False)
    assert caught.value.name == "NotReleased"
    assert "ReserveGuard refused: Safe transaction not released" in str(caught.value)
    assert caught.value.arguments["safeTxHash"] == "0x" + digest.hex()
    assert chain.w3.eth.get_balance(COLD_STORAGE) == before
    # Administrative calls need a release too, so the owners cannot drop the guard alone.
    safe = contracts.at(chain.w3, "Safe", chain.deployment.safe)
    drop_guard = SafeTx.call(chain.deployment.safe, 0, bytes.fromhex(
        safe.encode_abi("setGuard", args=[ZERO_ADDRESS])[2:]), tx.nonce)
    with pytest.raises(ContractReverted, check=lambda error: error.name == "NotReleased"):
        execute_with_keys(chain.w3, chain.deployer, chain.deployment.safe, drop_guard,
                          chain.owner_keys[:THRESHOLD], release=False)
    assert read_state(chain.w3, chain.deployment.safe).guard == chain.deployment.guard


def test_a_released_safe_transaction_executes_and_release_is_idempotent(
        chain: Reserve) -> None:
    tx = unsigned(chain, COLD_STORAGE, ETHER)
    digest = safe_tx_hash(chain.deployment.chain_id, chain.deployment.safe, tx)
    address = chain.deployment.guard
    assert not guard_module.is_released(chain.w3, address, digest)
    first = guard_module.release(chain.w3, chain.deployer, address, digest)
    again = guard_module.release(chain.w3, chain.deployer, address, digest)
    assert again == first and first.safe_tx_hash == "0x" + digest.hex()
    assert guard_module.is_released(chain.w3, address, digest)
    with pytest.raises(ContractReverted, check=lambda error: error.name == "AlreadyReleased"):
        contracts.transact(chain.w3, chain.deployer, guard(chain).functions.release(digest))
    execution = execute_with_keys(chain.w3, chain.deployer, chain.deployment.safe, tx,
                                  chain.owner_keys[:THRESHOLD], release=False)
    assert execution.success and execution.safe_tx_hash == digest


def test_only_the_registrar_releases(chain: Reserve) -> None:
    stranger = Account.from_key(chain.owner_keys[0])  # an owner, not the registrar
    rpc(chain.w3, "anvil_setBalance", stranger.address, hex(ETHER))
    digest = b"\x11" * 32
    with pytest.raises(EVMError, match="is not the registrar"):
        guard_module.release(chain.w3, stranger, chain.deployment.guard, digest)
    for call in (guard(chain).functions.release(digest), guard(chain).functions.unfreeze()):
        with pytest.raises(ContractReverted, check=lambda error: error.name == "NotRegistrar"):
            contracts.transact(chain.w3, stranger, call)
    with pytest.raises(ContractReverted,
                       check=lambda error: error.name == "NotSafeOrRegistrar"):
        contracts.transact(chain.w3, stranger, guard(chain).functions.freeze())
    with pytest.raises(ContractReverted, check=lambda error: error.name == "ZeroHash"):
        contracts.transact(chain.w3, chain.deployer, guard(chain).functions.release(b"\0" * 32))


def test_configuration_through_the_safe(chain: Reserve) -> None:
    new_destination = Web3.to_checksum_address("0x" + "d1" * 20)
    guard_call(chain, "setDestination", new_destination, True)
    assert run(chain, new_destination, ETHER).success
    guard_call(chain, "setDestination", new_destination, False)
    with refused("DestinationNotAllowlisted"):
        run(chain, new_destination, ETHER)
    guard_call(chain, "setAssetLimits", ZERO_ADDRESS, ETHER, 2 * ETHER)
    with refused("AmountOverTransactionLimit"):
        run(chain, COLD_STORAGE, ETHER + 1)
    with refused("InvalidLimits"):
        guard_call(chain, "setAssetLimits", ZERO_ADDRESS, 3 * ETHER, 2 * ETHER)
    with refused("ZeroAddress"):
        guard_call(chain, "setDestination", ZERO_ADDRESS, True)


def test_configuration_by_anyone_but_the_safe_is_refused(chain: Reserve) -> None:
    contract = guard(chain)
    calls = [contract.functions.setDestination(NOT_ALLOWLISTED, True),
             contract.functions.setAssetLimits(ZERO_ADDRESS, 1, 1),
             contract.functions.checkAfterExecution(b"\x00" * 32, True),
             contract.functions.checkTransaction(COLD_STORAGE, 1, b"", 0, 0, 0, 0, ZERO_ADDRESS,
                                                 ZERO_ADDRESS, b"", chain.deployer.address)]
    for call in calls:
        with pytest.raises(ContractReverted) as caught:
            contracts.transact(chain.w3, chain.deployer, call)
        assert caught.value.name == "NotSafe"


def test_transaction_shapes_that_bypass_checks_are_refused(chain: Reserve) -> None:
    token = contracts.at(chain.w3, "ReserveToken", chain.deployment.token)
    safe = contracts.at(chain.w3, "Safe", chain.deployment.safe)
    approve = bytes.fromhex(token.encode_abi("approve", args=[COLD_STORAGE, 1])[2:])
    enable_module = bytes.fromhex(safe.encode_abi("enableModule", args=[COLD_STORAGE])[2:])
    with refused("DelegateCallNotAllowed"):
        run(chain, COLD_STORAGE, 0, b"", operation=DELEGATE_CALL)
    with refused("GasRefundNotAllowed"):
        run(chain, COLD_STORAGE, ETHER, b"", safe_tx_gas=100_000)
    with refused("GasRefundNotAllowed"):
        run(chain, COLD_STORAGE, ETHER, b"", gas_price=1)
    with refused("ModuleNotAllowed"):
        run(chain, chain.deployment.safe, 0, enable_module)
    with refused("ValueWithCallData"):
        run(chain, chain.deployment.token, 1, erc20_transfer_data(COLD_STORAGE, 1))
    with refused("ValueWithCallData"):
        run(chain, chain.deployment.guard, 1, b"")
    with refused("UnsupportedCall"):
        run(chain, chain.deployment.token, 0, approve)
    dirty = bytearray(erc20_transfer_data(COLD_STORAGE, 1))
    dirty[4] = 1  # a dirty upper byte in the recipient word
    with refused("UnsupportedCall"):
        run(chain, chain.deployment.token, 0, bytes(dirty))


def test_asset_without_limits_cannot_move(chain: Reserve) -> None:
    other = contracts.deploy(chain.w3, chain.deployer, "ReserveToken", "Other", "OTH", 10,
                             chain.deployment.safe)
    with pytest.raises(ContractReverted) as caught:
        run(chain, other.address, 0, erc20_transfer_data(COLD_STORAGE, 1))
    assert caught.value.name == "AssetNotConfigured"


def test_owner_management_through_the_safe_still_works(chain: Reserve) -> None:
    safe = contracts.at(chain.w3, "Safe", chain.deployment.safe)
    data = bytes.fromhex(safe.encode_abi("changeThreshold", args=[4])[2:])
    assert run(chain, chain.deployment.safe, 0, data).success
    assert safe.functions.getThreshold().call() == 4


def test_constructor_checks(chain: Reserve) -> None:
    with pytest.raises(ContractReverted, check=lambda error: error.name == "ZeroAddress"):
        contracts.deploy(chain.w3, chain.deployer, "ReserveGuard", ZERO_ADDRESS,
                         chain.deployer.address, [], [], [], [])
    with pytest.raises(ContractReverted, check=lambda error: error.name == "ZeroAddress"):
        contracts.deploy(chain.w3, chain.deployer, "ReserveGuard", chain.deployment.safe,
                         ZERO_ADDRESS, [], [], [], [])
    with pytest.raises(ContractReverted, check=lambda error: error.name == "LengthMismatch"):
        contracts.deploy(chain.w3, chain.deployer, "ReserveGuard", chain.deployment.safe,
                         chain.deployer.address, [], [ZERO_ADDRESS], [1], [])
    with pytest.raises(ContractReverted, check=lambda error: error.name == "InvalidLimits"):
        contracts.deploy(chain.w3, chain.deployer, "ReserveGuard", chain.deployment.safe,
                         chain.deployer.address, [], [ZERO_ADDRESS], [2], [1])
