# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""ReserveRegistry and the test ReserveToken on anvil: every function and revert path."""

from __future__ import annotations

import pytest
from eth_account import Account

from reserve.errors import ContractReverted
from tests.support.evm_fixtures import (  # noqa: F401
    ETHER,
    Reserve,
    anvil,
    chain,
    deployed,
    rpc,
    w3,
)
from wallets.evm import contracts
from wallets.evm.safe_tx import ZERO_ADDRESS

ROOT_A = b"\xaa" * 32
ROOT_B = b"\xbb" * 32
# A TEST outsider key: not an admin, not an anchorer.
OUTSIDER = Account.from_key(b"\x01" * 32)


def reverted(name: str):
    return pytest.raises(ContractReverted, check=lambda error: error.name == name)


def registry(reserve: Reserve):
    return contracts.at(reserve.w3, "ReserveRegistry", reserve.deployment.registry)


def fund_outsider(reserve: Reserve) -> None:
    rpc(reserve.w3, "anvil_setBalance", OUTSIDER.address, hex(ETHER))


def test_registry_has_no_function_that_edits_or_deletes() -> None:
    functions = {item["name"] for item in contracts.artifact("ReserveRegistry")["abi"]
                 if item["type"] == "function"}
    assert functions == {"admin", "isAnchorer", "isReportAnchored", "addAnchorer",
                         "removeAnchorer", "anchorCheckpoint", "anchorReport", "checkpointCount",
                         "checkpointAt", "latestCheckpoint", "reportCount", "reportAt"}


def test_checkpoints_append_with_strictly_increasing_sizes(chain: Reserve) -> None:
    contract = registry(chain)
    assert contract.functions.admin().call() == chain.deployer.address
    assert contract.functions.checkpointCount().call() == 0
    with reverted("NoCheckpoints"):
        contracts.read(contract.functions.latestCheckpoint())
    receipt = contracts.transact(chain.w3, chain.deployer,
                                 contract.functions.anchorCheckpoint(10, ROOT_A))
    (event,) = contract.events.CheckpointAnchored().process_receipt(receipt)
    assert (event["args"]["index"], event["args"]["treeSize"]) == (0, 10)
    assert event["args"]["anchorer"] == chain.deployer.address
    contracts.transact(chain.w3, chain.deployer, contract.functions.anchorCheckpoint(11, ROOT_B))
    for size in (11, 5):
        with pytest.raises(ContractReverted) as caught:
            contracts.transact(chain.w3, chain.deployer,
                               contract.functions.anchorCheckpoint(size, ROOT_A))
        assert caught.value.name == "TreeSizeNotIncreasing"
        assert f"tree size {size} is not larger than the latest anchored tree size 11" \
            in str(caught.value)
    with reverted("ZeroRootHash"):
        contracts.transact(chain.w3, chain.deployer,
                           contract.functions.anchorCheckpoint(12, b"\x00" * 32))
    assert contract.functions.checkpointCount().call() == 2
    tree_size, root, timestamp, block_number, anchorer = \
        contract.functions.checkpointAt(0).call()
    assert (tree_size, root, anchorer) == (10, ROOT_A, chain.deployer.address)
    assert block_number == receipt["blockNumber"] and timestamp > 0
    index, latest = contract.functions.latestCheckpoint().call()
    assert index == 1 and latest[0] == 11 and latest[1] == ROOT_B
    with reverted("IndexOutOfRange"):
        contracts.read(contract.functions.checkpointAt(2))


def test_reports_append_once_each(chain: Reserve) -> None:
    contract = registry(chain)
    receipt = contracts.transact(chain.w3, chain.deployer,
                                 contract.functions.anchorReport(ROOT_A, 7))
    (event,) = contract.events.ReportAnchored().process_receipt(receipt)
    assert event["args"]["reportHash"] == ROOT_A and event["args"]["ledgerTreeSize"] == 7
    assert contract.functions.isReportAnchored(ROOT_A).call()
    assert contract.functions.reportCount().call() == 1
    assert contract.functions.reportAt(0).call()[:2] == (ROOT_A, 7)
    with reverted("ReportAlreadyAnchored"):
        contracts.transact(chain.w3, chain.deployer, contract.functions.anchorReport(ROOT_A, 8))
    with reverted("ZeroReportHash"):
        contracts.transact(chain.w3, chain.deployer,
                           contract.functions.anchorReport(b"\x00" * 32, 8))
    with reverted("IndexOutOfRange"):
        contracts.read(contract.functions.reportAt(1))


def test_only_registered_keys_append_and_only_admin_registers(chain: Reserve) -> None:
    contract = registry(chain)
    fund_outsider(chain)
    with reverted("NotAnchorer"):
        contracts.transact(chain.w3, OUTSIDER, contract.functions.anchorCheckpoint(1, ROOT_A))
    with reverted("NotAnchorer"):
        contracts.transact(chain.w3, OUTSIDER, contract.functions.anchorReport(ROOT_A, 1))
    with reverted("NotAdmin"):
        contracts.transact(chain.w3, OUTSIDER, contract.functions.addAnchorer(OUTSIDER.address))
    with reverted("NotAdmin"):
        contracts.transact(chain.w3, OUTSIDER,
                           contract.functions.removeAnchorer(chain.deployer.address))
    with reverted("ZeroAddress"):
        contracts.transact(chain.w3, chain.deployer, contract.functions.addAnchorer(ZERO_ADDRESS))
    with reverted("AnchorerAlreadyRegistered"):
        contracts.transact(chain.w3, chain.deployer,
                           contract.functions.addAnchorer(chain.deployer.address))
    contracts.transact(chain.w3, chain.deployer, contract.functions.addAnchorer(OUTSIDER.address))
    assert contract.functions.isAnchorer(OUTSIDER.address).call()
    contracts.transact(chain.w3, OUTSIDER, contract.functions.anchorCheckpoint(3, ROOT_A))
    contracts.transact(chain.w3, chain.deployer,
                       contract.functions.removeAnchorer(OUTSIDER.address))
    with reverted("AnchorerNotRegistered"):
        contracts.transact(chain.w3, chain.deployer,
                           contract.functions.removeAnchorer(OUTSIDER.address))
    with reverted("NotAnchorer"):
        contracts.transact(chain.w3, OUTSIDER, contract.functions.anchorCheckpoint(4, ROOT_A))
    # What a retired key anchored stays.
    assert contract.functions.checkpointAt(0).call()[4] == OUTSIDER.address


def test_registry_needs_an_admin(chain: Reserve) -> None:
    with reverted("ZeroAddress"):
        contracts.deploy(chain.w3, chain.deployer, "ReserveRegistry", ZERO_ADDRESS)


def test_token_mint_is_owner_only(chain: Reserve) -> None:
    token = contracts.at(chain.w3, "ReserveToken", chain.deployment.token)
    assert token.functions.symbol().call() == "tRGT"
    assert token.functions.decimals().call() == 18
    supply = token.functions.totalSupply().call()
    contracts.transact(chain.w3, chain.deployer, token.functions.mint(OUTSIDER.address, 5))
    assert token.functions.balanceOf(OUTSIDER.address).call() == 5
    assert token.functions.totalSupply().call() == supply + 5
    fund_outsider(chain)
    with pytest.raises(ContractReverted) as caught:
        contracts.transact(chain.w3, OUTSIDER, token.functions.mint(OUTSIDER.address, 1))
    assert caught.value.name == "OwnableUnauthorizedAccount"
    assert OUTSIDER.address in str(caught.value)
    with reverted("ERC20InsufficientBalance"):
        contracts.transact(chain.w3, OUTSIDER, token.functions.transfer(chain.deployer.address, 6))
