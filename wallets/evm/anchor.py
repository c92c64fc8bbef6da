"""Anchoring the ledger on an EVM chain, and checking anchors against the ledger.

Posting a checkpoint's (tree size, root hash) to ReserveRegistry makes the ledger's state at
that size public and timestamped: a later ledger that is rolled back, forked or rewritten
no longer matches what was anchored. The anchor (chain, registry index, tx hash, block) is
itself recorded as a `ledger.anchor` entry. Verification returns findings as values; an
empty list means every anchor matches the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from reserve.errors import EVMError, MismatchError, NodeUnavailable
from reserve.events.records import ANCHOR_OF_CHECKPOINT, CheckpointAnchored, LedgerAnchor
from reserve.ledger.checkpoint import parse_note
from wallets.evm import contracts
from wallets.evm.safe_tx import checksum

ACTOR = "service:anchor"


@dataclass(frozen=True)
class Finding:
    """One way in which the chain and the ledger disagree."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def latest_checkpoint(ledger: Any) -> tuple[int, bytes]:
    """(tree size, root) of the ledger's latest signed checkpoint, else of its current head."""
    note = ledger.latest_checkpoint()
    if note is not None:
        checkpoint, _ = parse_note(note)
        return checkpoint.tree_size, checkpoint.root_hash
    size = ledger.size()
    if size == 0:
        raise EVMError("the ledger is empty: nothing to anchor")
    return size, bytes(ledger.root_at(size))


def anchored_tree_size(registry: Any) -> int:
    count = registry.functions.checkpointCount().call()
    if count == 0:
        return 0
    return int(registry.functions.checkpointAt(count - 1).call()[0])


def anchor_checkpoint(ledger: Any, w3: Web3, registry_address: str, account: LocalAccount, *,
                      tree_size: int | None = None, root_hash: bytes | None = None,
                      actor: str = ACTOR) -> Any:
    """Post (tree size, root) to the registry and record the anchor; returns the entry.

    Without arguments, anchors the latest checkpoint. Refuses before sending: a root the
    ledger does not have at that size, and a tree size not larger than the last anchored.
    """
    if tree_size is None:
        tree_size, root_hash = latest_checkpoint(ledger)
    if not 0 < tree_size <= ledger.size():
        raise EVMError(f"tree size {tree_size} not in 1..{ledger.size()} (the ledger's size)")
    if root_hash is None:
        root_hash = bytes(ledger.root_at(tree_size))
    ledger_root = bytes(ledger.root_at(tree_size))
    if ledger_root != root_hash:
        raise MismatchError(f"root hash at tree size {tree_size}", ledger_root.hex(),
                            root_hash.hex())
    registry = contracts.at(w3, "ReserveRegistry", registry_address)
    try:
        latest = anchored_tree_size(registry)
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None
    if tree_size <= latest:
        raise EVMError(f"refusing to anchor tree size {tree_size}: the registry already holds "
                       f"tree size {latest} and sizes must strictly increase")
    receipt = contracts.transact(w3, account,
                                 registry.functions.anchorCheckpoint(tree_size, root_hash))
    events = registry.events.CheckpointAnchored().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise EVMError("anchoring receipt has no CheckpointAnchored event")
    anchored = CheckpointAnchored(
        subject=ANCHOR_OF_CHECKPOINT, chain_id=w3.eth.chain_id, registry=registry.address,
        index=int(events[0]["args"]["index"]), tree_size=tree_size,
        root_hash=root_hash.hex(), anchorer=account.address,
        tx_hash=_hex(receipt["transactionHash"]), block_number=int(receipt["blockNumber"]),
        block_hash=_hex(receipt["blockHash"]))
    return ledger.append(anchored.KIND, actor, anchored.to_payload())


def _check_onchain(ledger: Any, registry: Any) -> list[Finding]:
    findings = []
    size = ledger.size()
    for index in range(registry.functions.checkpointCount().call()):
        tree_size, root, _, block_number, anchorer = registry.functions.checkpointAt(index).call()
        details = {"index": index, "tree_size": tree_size, "anchored_root": bytes(root).hex(),
                   "block_number": block_number, "anchorer": anchorer}
        if tree_size > size:
            findings.append(Finding("anchor-beyond-ledger", (
                f"registry checkpoint {index} anchors tree size {tree_size} but the ledger has "
                f"only {size} entries (rolled back or truncated?)"), details))
            continue
        ledger_root = bytes(ledger.root_at(tree_size))
        if ledger_root != bytes(root):
            findings.append(Finding("root-mismatch", (
                f"registry checkpoint {index}: anchored root {bytes(root).hex()} at tree size "
                f"{tree_size}, ledger root {ledger_root.hex()}"),
                {**details, "ledger_root": ledger_root.hex()}))
    return findings


def _check_recorded(ledger: Any, w3: Web3, registry: Any) -> list[Finding]:
    findings = []
    count = registry.functions.checkpointCount().call()
    chain_id = w3.eth.chain_id
    for entry in ledger.entries(kinds=[LedgerAnchor.KIND]):
        anchor = LedgerAnchor.of(entry)
        if not isinstance(anchor, CheckpointAnchored) or anchor.chain_id != chain_id \
                or anchor.registry != registry.address:
            continue
        index = anchor.index
        details = {"seq": entry.seq, "index": index, "tx_hash": anchor.tx_hash}
        if index >= count:
            findings.append(Finding("anchor-missing", (
                f"ledger entry {entry.seq} records registry checkpoint {index}, which the "
                f"registry does not hold"), details))
            continue
        tree_size, root, *_ = registry.functions.checkpointAt(index).call()
        if tree_size != anchor.tree_size or bytes(root).hex() != anchor.root_hash:
            findings.append(Finding("anchor-differs", (
                f"ledger entry {entry.seq} records ({anchor.tree_size}, "
                f"{anchor.root_hash}) but registry checkpoint {index} holds ({tree_size}, "
                f"{bytes(root).hex()})"), details))
        try:
            receipt = w3.eth.get_transaction_receipt(HexStr(anchor.tx_hash))
        except TransactionNotFound:
            receipt = None
        if receipt is None or _hex(receipt["blockHash"]) != anchor.block_hash:
            findings.append(Finding("anchor-tx-moved", (
                f"anchoring transaction {anchor.tx_hash} of ledger entry {entry.seq} is not "
                f"in block {anchor.block_hash} any more (reorg?)"), details))
    return findings


def verify_anchors(ledger: Any, w3: Web3, registry_address: str) -> list[Finding]:
    """Every registry checkpoint against the ledger's root at that size, and every recorded
    anchor against the registry and its transaction's block."""
    registry = contracts.at(w3, "ReserveRegistry", checksum(registry_address, "registry"))
    try:
        return _check_onchain(ledger, registry) + _check_recorded(ledger, w3, registry)
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None
