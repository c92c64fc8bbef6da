# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""The deposit watcher against anvil: confirmation depth, ERC-20 and ETH, and reorgs.

Reorgs are made with anvil's evm_snapshot/evm_revert: the chain is rolled back under a
recorded deposit and grown again without it, as a real reorg would do.
"""

from __future__ import annotations

from reserve.ledger import Ledger
from tests.support.evm_fixtures import (  # noqa: F401
    ETHER,
    VAULT_ETH,
    VAULT_TOKENS,
    Reserve,
    anvil,
    chain,
    deployed,
    ledger,
    rpc,
    w3,
)
from wallets.evm import contracts, deposits
from wallets.evm.deposits_core import positions


def sync(reserve: Reserve, ledger: Ledger, confirmations: int = 1) -> list[str]:
    entries = deposits.sync(ledger, reserve.w3, vault_id="evm-reserve",
                            safe=reserve.deployment.safe, tokens=[reserve.deployment.token],
                            confirmations=confirmations, from_block=0)
    return [entry.kind for entry in entries]


def mine(reserve: Reserve, blocks: int) -> None:
    rpc(reserve.w3, "anvil_mine", hex(blocks))


def test_funding_is_recorded_once_per_deposit(chain: Reserve, ledger: Ledger) -> None:
    assert sync(chain, ledger) == ["evm.deposit", "evm.deposit"]
    assert sync(chain, ledger) == []  # idempotent
    safe, chain_id = chain.deployment.safe, chain.deployment.chain_id
    assert positions(ledger.entries(), safe, chain_id) == {
        "ETH": VAULT_ETH, chain.deployment.token: VAULT_TOKENS}
    eth = next(e.payload for e in ledger.entries() if e.payload["asset"] == "ETH")
    assert eth["sender"] == chain.deployer.address and eth["amount_wei"] == str(VAULT_ETH)


def test_deposits_wait_for_confirmation_depth(chain: Reserve, ledger: Ledger) -> None:
    sync(chain, ledger)
    contracts.send_ether(chain.w3, chain.deployer, chain.deployment.safe, ETHER)
    token = contracts.at(chain.w3, "ReserveToken", chain.deployment.token)
    contracts.transact(chain.w3, chain.deployer,
                       token.functions.transfer(chain.deployment.safe, 7))
    assert sync(chain, ledger, confirmations=3) == []  # 2 and 1 confirmations so far
    mine(chain, 1)
    assert sync(chain, ledger, confirmations=3) == ["evm.deposit"]  # the ETH one is 3 deep
    mine(chain, 1)
    assert sync(chain, ledger, confirmations=3) == ["evm.deposit"]


def test_reorg_reverses_a_recorded_deposit_with_a_compensating_entry(chain: Reserve,
                                                                      ledger: Ledger) -> None:
    sync(chain, ledger)
    safe, chain_id = chain.deployment.safe, chain.deployment.chain_id
    snapshot = rpc(chain.w3, "evm_snapshot")
    contracts.send_ether(chain.w3, chain.deployer, safe, 3 * ETHER)
    assert sync(chain, ledger) == ["evm.deposit"]
    assert positions(ledger.entries(), safe, chain_id)["ETH"] == VAULT_ETH + 3 * ETHER
    # The block holding the deposit disappears; the new chain is longer and lacks it.
    rpc(chain.w3, "evm_revert", snapshot)
    mine(chain, 3)
    assert sync(chain, ledger) == ["evm.reorg"]
    reorg = next(iter(ledger.entries(kinds=["evm.reorg"]))).payload
    assert reorg["reverses_kind"] == "evm.deposit" and reorg["amount_wei"] == str(3 * ETHER)
    assert "left the chain" in reorg["reason"]
    assert positions(ledger.entries(), safe, chain_id)["ETH"] == VAULT_ETH
    # History is kept: the deposit entry is still there, reversed, not deleted.
    assert len(list(ledger.entries(kinds=["evm.deposit"]))) == 3
    assert sync(chain, ledger) == []


def test_deposit_reincluded_after_reorg_is_recorded_again(chain: Reserve,
                                                           ledger: Ledger) -> None:
    sync(chain, ledger)
    safe = chain.deployment.safe
    snapshot = rpc(chain.w3, "evm_snapshot")
    contracts.send_ether(chain.w3, chain.deployer, safe, ETHER)
    sync(chain, ledger)
    rpc(chain.w3, "evm_revert", snapshot)
    mine(chain, 1)
    contracts.send_ether(chain.w3, chain.deployer, safe, ETHER)  # lands in a different block
    assert sync(chain, ledger) == ["evm.reorg", "evm.deposit"]
    assert positions(ledger.entries(), safe, chain.deployment.chain_id)["ETH"] \
        == VAULT_ETH + ETHER


def test_reorged_execution_is_reversed_and_confirmations_recorded(chain: Reserve,
                                                                  ledger: Ledger) -> None:
    from tests.nodes.test_evm_vault import approved, run_flow

    sync(chain, ledger)
    safe, chain_id = chain.deployment.safe, chain.deployment.chain_id
    snapshot = rpc(chain.w3, "evm_snapshot")
    run_flow(chain, ledger, approved(chain, amount=ETHER))
    assert positions(ledger.entries(), safe, chain_id)["ETH"] == VAULT_ETH - ETHER
    assert sync(chain, ledger, confirmations=1) == ["evm.confirmed"]
    rpc(chain.w3, "evm_revert", snapshot)
    mine(chain, 2)
    assert sync(chain, ledger) == ["evm.reorg"]
    assert positions(ledger.entries(), safe, chain_id)["ETH"] == VAULT_ETH
