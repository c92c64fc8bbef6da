# ruff: noqa: F811  (pytest fixtures imported from tests/support are parameters here)
"""The reserve's EVM vault, told as a story on a real chain (anvil) — and checked at each step.

1. The reserve's Safe (3 of 5 custodians from five institutions) is deployed with its
   on-chain guard, the anchoring registry and a tokenized reserve asset; the vault is funded.
2. The deposit watcher records the funding in the append-only ledger.
3. Two approved transfers leave the vault — ETH to cold storage and the token to a
   counterparty — each signed by exactly three custodians from their own encrypted
   keystores, each custodian re-checking the transaction against the approval first.
4. The ledger's balances equal the chain's.
5. The ledger is checkpointed and the checkpoint anchored in ReserveRegistry; an auditor
   with only the ledger and an RPC URL verifies the anchor.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.ledger import CheckpointSigner, Ledger
from tests.support.evm_fixtures import (  # noqa: F401
    COLD_STORAGE,
    COUNTERPARTY,
    ETHER,
    THRESHOLD,
    Reserve,
    anvil,
    chain,
    deployed,
    ledger,
    w3,
)
from wallets.evm import deposits, executor
from wallets.evm.anchor import anchor_checkpoint, verify_anchors
from wallets.evm.deposits_core import positions
from wallets.evm.keys import load_account
from wallets.evm.transfer import ETH, ApprovedEVMTransfer, to_safe_tx
from wallets.evm.vault import balances, read_state
from wallets.signer import evm as signer

PASSPHRASE = "each custodian's own passphrase"


def custodian_keystores(reserve: Reserve, folder: Path) -> list[Path]:
    """Each custodian imports their (TEST) key into their own encrypted keystore."""
    paths = []
    for number, key in enumerate(reserve.owner_keys, start=1):
        path = folder / f"custodian-{number}.json"
        signer.create_key(path, label=f"custodian {number}", passphrase=PASSPHRASE, secret=key,
                          scrypt_n=2**12)
        paths.append(path)
    return paths


def release(reserve: Reserve, ledger: Ledger, keystores: list[Path], asset: str, to: str,
            amount: int) -> executor.Execution:
    """One approved transfer through propose -> three custodian signatures -> execute."""
    state = read_state(reserve.w3, reserve.deployment.safe)
    transfer = ApprovedEVMTransfer(
        proposal_digest=hashlib.sha256(f"proposal {asset} {to} {amount}".encode()).digest(),
        policy_version=1, vault_id="reserve-safe", chain_id=state.chain_id,
        safe_address=state.safe_address, asset=asset, to=to, amount_wei=amount,
        nonce=state.nonce)
    tx, digest = executor.propose(ledger, reserve.w3, transfer)
    request = signer.signing_request(transfer, tx)
    # Exactly the threshold: custodians 5, 2 and 4 (out of address order on purpose).
    for path in (keystores[4], keystores[1], keystores[3])[:THRESHOLD]:
        review = signer.review(request)  # each custodian checks what they sign
        assert review.digest == digest and review.tx == to_safe_tx(transfer)
        share = signer.sign(request, load_account(path, PASSPHRASE))
        executor.submit_signature(ledger, transfer, share, state.owners)
    return executor.execute(ledger, reserve.w3, transfer, reserve.deployer)


def sync(reserve: Reserve, ledger: Ledger) -> list[str]:
    return [entry.kind for entry in deposits.sync(
        ledger, reserve.w3, vault_id="reserve-safe", safe=reserve.deployment.safe,
        tokens=[reserve.deployment.token], confirmations=1, from_block=0)]


def test_evm_vault_story(chain: Reserve, ledger: Ledger, tmp_path: Path) -> None:
    safe, token, chain_id = chain.deployment.safe, chain.deployment.token, \
        chain.deployment.chain_id
    state = read_state(chain.w3, safe)
    assert (state.threshold, len(state.owners), state.guard) == (3, 5, chain.deployment.guard)

    # 2. The funding deposits are recorded.
    assert sync(chain, ledger) == ["evm.deposit", "evm.deposit"]

    # 3. Two transfers, exactly three custodian signatures each.
    keystores = custodian_keystores(chain, tmp_path)
    assert release(chain, ledger, keystores, ETH, COLD_STORAGE, 4 * ETHER).success
    assert release(chain, ledger, keystores, token, COUNTERPARTY, 250 * ETHER).success
    assert sync(chain, ledger) == ["evm.confirmed", "evm.confirmed"]

    # 4. The ledger's balances equal the chain's, asset by asset.
    on_chain = balances(chain.w3, safe, {"TOKEN": token})
    in_ledger = positions(ledger.entries(), safe, chain_id)
    assert on_chain == in_ledger
    assert on_chain == {"ETH": 16 * ETHER, token: 4_750 * ETHER}

    # 5. Checkpoint, anchor, verify.
    checkpoint_key = CheckpointSigner("reserve.example/evm-story",
                                      Ed25519PrivateKey.generate())
    ledger.checkpoint(checkpoint_key)
    anchored = anchor_checkpoint(ledger, chain.w3, chain.deployment.registry, chain.deployer)
    assert anchored.payload["tree_size"] == anchored.seq  # everything before the anchor entry
    assert verify_anchors(ledger, chain.w3, chain.deployment.registry) == []
