# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""The ledger's freeze carried to the Safe's guard, on a real Safe v1.4.1 on anvil.

After `reserve freeze reserve-safe`, a Safe transaction signed by three owners must not
execute: the workflow freezes the ledger and, in the same step, the guard's `frozen` flag.
Only the ledger's unfreeze quorum lifts it, through the service's registrar account.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from web3 import Web3

from reserve.errors import ContractReverted, FreezeMirrorFailed
from reserve.ledger import Ledger
from reserve.policy import loader
from reserve.transfers.chain import FreezeMirror
from reserve.transfers.service import WorkflowService
from tests.support.evm_fixtures import (  # noqa: F401
    COLD_STORAGE,
    ETHER,
    THRESHOLD,
    Reserve,
    anvil,
    chain,
    deployed,
    ledger,
    w3,
)
from tests.support.workflow import EVM_POLICY, T0, approve
from wallets.evm import guard
from wallets.evm.demo import execute_with_keys
from wallets.evm.executor import Execution
from wallets.evm.guard import GuardFreezeMirror
from wallets.evm.safe_tx import SafeTx
from wallets.evm.vault import read_state

VAULT = "reserve-safe"
UNFREEZERS = ("central-bank", "vasp-regulator", "auditor-general")


def mirror(reserve: Reserve, w3_used: Web3 | None = None) -> GuardFreezeMirror:
    return GuardFreezeMirror(w3=w3_used or reserve.w3, account=reserve.deployer,
                             guards={VAULT: reserve.deployment.guard})


def service(ledger: Ledger, freeze_mirror: FreezeMirror | None) -> WorkflowService:
    workflow = WorkflowService(ledger, clock=lambda: T0, freeze_mirror=freeze_mirror)
    workflow.register_policy(loader.load_file(EVM_POLICY), "lead")
    return workflow


def pay_cold_storage(reserve: Reserve) -> Execution:
    """Three owners sign a released 1 ETH transfer and the service account executes it."""
    nonce = read_state(reserve.w3, reserve.deployment.safe).nonce
    tx = SafeTx.call(COLD_STORAGE, ETHER, b"", nonce)
    return execute_with_keys(reserve.w3, reserve.deployer, reserve.deployment.safe, tx,
                             reserve.owner_keys[:THRESHOLD])


def test_mirror_is_a_freeze_mirror(chain: Reserve) -> None:
    assert isinstance(mirror(chain), FreezeMirror)
    assert mirror(chain).covers(VAULT) and not mirror(chain).covers("national-btc")


def test_workflow_freeze_sets_the_guard_and_only_the_unfreeze_quorum_lifts_it(
        chain: Reserve, ledger: Ledger) -> None:
    workflow = service(ledger, mirror(chain))
    workflow.freeze(VAULT, "auditor-general", "keys reported lost", now=T0)
    assert guard.is_frozen(chain.w3, chain.deployment.guard)
    before = chain.w3.eth.get_balance(COLD_STORAGE)
    with pytest.raises(ContractReverted) as caught:
        pay_cold_storage(chain)
    assert caught.value.name == "VaultFrozen"
    assert "ReserveGuard refused: vault frozen" in str(caught.value)
    assert chain.w3.eth.get_balance(COLD_STORAGE) == before
    # The quorum approves; the unfreeze waits for its delay, and so does the chain.
    later = T0 + timedelta(hours=1)
    unfreeze = workflow.propose_unfreeze(vault=VAULT, proposer="finance-ministry",
                                         purpose="keys found", now=later)
    approve(workflow, unfreeze, *UNFREEZERS, at=later)
    assert workflow.sync().vault(VAULT).freeze is not None
    assert guard.is_frozen(chain.w3, chain.deployment.guard)
    workflow.refresh(now=later + timedelta(hours=24))
    assert workflow.sync().vault(VAULT).freeze is None
    assert not guard.is_frozen(chain.w3, chain.deployment.guard)
    assert pay_cold_storage(chain).success
    assert workflow.mirror_freeze(VAULT) is None  # already in step: nothing sent


def test_freeze_stands_when_the_node_is_down_and_is_re_applied(chain: Reserve,
                                                               ledger: Ledger) -> None:
    dead = Web3(Web3.HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 2}))
    workflow = service(ledger, mirror(chain, dead))
    with pytest.raises(FreezeMirrorFailed, match="frozen in the ledger but the chain did "
                                                 "not follow") as caught:
        workflow.freeze(VAULT, "auditor-general", "node outage drill", now=T0)
    assert [entry.kind for entry in caught.value.entries] == ["vault.frozen"]
    assert workflow.sync().vault(VAULT).freeze is not None  # the ledger freeze stands
    assert not guard.is_frozen(chain.w3, chain.deployment.guard)
    # Back online: the retry re-applies the ledger's state, once.
    again = service(ledger, mirror(chain))
    assert again.mirror_freeze(VAULT) is not None
    assert guard.is_frozen(chain.w3, chain.deployment.guard)
    assert again.mirror_freeze(VAULT) is None


def test_a_mirror_leaves_other_vaults_alone(chain: Reserve, ledger: Ledger) -> None:
    workflow = service(ledger, GuardFreezeMirror(w3=chain.w3, account=chain.deployer,
                                                 guards={}))
    workflow.freeze(VAULT, "auditor-general", "not mirrored", now=T0)
    assert not guard.is_frozen(chain.w3, chain.deployment.guard)
    assert workflow.mirror_freeze(VAULT) is None
