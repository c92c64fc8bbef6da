# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""Anchoring ledger checkpoints in ReserveRegistry on anvil, and verifying the anchors."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.errors import EVMError, MismatchError, NodeUnavailable
from reserve.ledger import CheckpointSigner, Ledger
from tests.support.evm_fixtures import (  # noqa: F401
    Reserve,
    anvil,
    chain,
    deployed,
    ledger,
    rpc,
    w3,
)
from wallets.evm import contracts
from wallets.evm.anchor import anchor_checkpoint, verify_anchors


def fill(ledger: Ledger, count: int) -> None:
    ledger.append_many([("ledger.note", "test", {"n": n}) for n in range(count)])


def registry(reserve: Reserve):
    return contracts.at(reserve.w3, "ReserveRegistry", reserve.deployment.registry)


def test_anchor_latest_checkpoint_and_verify(chain: Reserve, ledger: Ledger) -> None:
    signer = CheckpointSigner("reserve.example/test", Ed25519PrivateKey.generate())
    fill(ledger, 5)
    ledger.checkpoint(signer)
    fill(ledger, 2)  # entries after the checkpoint are not anchored yet
    entry = anchor_checkpoint(ledger, chain.w3, chain.deployment.registry, chain.deployer)
    assert entry.kind == "ledger.anchor"
    assert entry.payload["tree_size"] == 5
    assert entry.payload["root_hash"] == ledger.root_at(5).hex()
    on_chain = registry(chain).functions.checkpointAt(entry.payload["index"]).call()
    assert on_chain[0] == 5 and on_chain[1] == ledger.root_at(5)
    receipt = chain.w3.eth.get_transaction_receipt(entry.payload["tx_hash"])
    assert receipt["blockNumber"] == entry.payload["block_number"]
    assert verify_anchors(ledger, chain.w3, chain.deployment.registry) == []
    # Anchoring the current head explicitly (no checkpoint needed) also works.
    size = ledger.size()
    anchor_checkpoint(ledger, chain.w3, chain.deployment.registry, chain.deployer,
                      tree_size=size)
    assert verify_anchors(ledger, chain.w3, chain.deployment.registry) == []


def test_smaller_or_equal_tree_size_is_refused_before_sending(chain: Reserve,
                                                             ledger: Ledger) -> None:
    fill(ledger, 4)
    anchor_checkpoint(ledger, chain.w3, chain.deployment.registry, chain.deployer, tree_size=4)
    size, block = ledger.size(), chain.w3.eth.block_number
    for tree_size in (4, 3):
        with pytest.raises(EVMError, match="sizes must strictly increase"):
            anchor_checkpoint(ledger, chain.w3, chain.deployment.registry, chain.deployer,
                              tree_size=tree_size)
    assert (ledger.size(), chain.w3.eth.block_number) == (size, block)


def test_root_the_ledger_does_not_have_is_refused(chain: Reserve, ledger: Ledger) -> None:
    fill(ledger, 3)
    with pytest.raises(MismatchError, match="root hash at tree size 3"):
        anchor_checkpoint(ledger, chain.w3, chain.deployment.registry, chain.deployer,
                          tree_size=3, root_hash=b"\x11" * 32)
    with pytest.raises(EVMError, match=r"not in 1\.\.3"):
        anchor_checkpoint(ledger, chain.w3, chain.deployment.registry, chain.deployer,
                          tree_size=9)
    assert ledger.size() == 3


def test_verify_finds_a_forked_or_rolled_back_ledger(chain: Reserve, ledger: Ledger) -> None:
    fill(ledger, 6)
    anchor_checkpoint(ledger, chain.w3, chain.deployment.registry, chain.deployer, tree_size=6)
    with Ledger.open("sqlite:///:memory:") as forked:
        forked.append_many([("ledger.note", "test", {"n": n + 100}) for n in range(8)])
        findings = verify_anchors(forked, chain.w3, chain.deployment.registry)
        assert [finding.code for finding in findings] == ["root-mismatch"]
        assert "tree size 6" in findings[0].message
    with Ledger.open("sqlite:///:memory:") as short:
        fill(short, 2)
        assert [f.code for f in verify_anchors(short, chain.w3, chain.deployment.registry)] \
            == ["anchor-beyond-ledger"]


def test_verify_finds_an_anchor_entry_whose_transaction_was_reorged(chain: Reserve,
                                                                    ledger: Ledger) -> None:
    fill(ledger, 2)
    snapshot = rpc(chain.w3, "evm_snapshot")
    anchor_checkpoint(ledger, chain.w3, chain.deployment.registry, chain.deployer, tree_size=2)
    rpc(chain.w3, "evm_revert", snapshot)
    codes = [f.code for f in verify_anchors(ledger, chain.w3, chain.deployment.registry)]
    assert codes == ["anchor-missing"]


def test_anchor_with_node_down_records_nothing(ledger: Ledger) -> None:
    from web3 import Web3

    from tests.support.evm_fixtures import deploy_test_reserve
    from wallets.evm import anvil as anvil_node

    fill(ledger, 2)
    node = anvil_node.start()
    reserve = deploy_test_reserve(Web3(Web3.HTTPProvider(node.url,
                                                         request_kwargs={"timeout": 5})))
    node.stop()
    with pytest.raises(NodeUnavailable):
        anchor_checkpoint(ledger, reserve.w3, reserve.deployment.registry, reserve.deployer,
                          tree_size=2)
    assert ledger.size() == 2
