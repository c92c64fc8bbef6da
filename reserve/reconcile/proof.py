"""Proof of reserves: a publishable statement per vault that anyone with a node can check.

The statement names the vault's descriptors and derivation range, the pinned block (height
and hash), the balance and the digest of the coin set at that block, the ledger checkpoint
(size and root) and the report it comes from, signed by the auditor. To check it, scan the
descriptors at that block (`coins_at` undoes blocks mined since) and compare.

A Safe (EVM vault) gets its own statement: the Safe's address, the pinned block (chain id,
number, hash), its balance per asset at that block in wei (decimal strings), the ledger
checkpoint and the report hash. To check it, confirm the hash is on the chain at that
number and read `eth_getBalance` / `balanceOf` at that number (anvil or an archive node).
"""

from __future__ import annotations

from typing import Any

from web3 import Web3

from reserve.errors import ReportRejected
from reserve.ledger.checkpoint import VerifierKey
from reserve.reconcile.bitcoin import coins_at
from reserve.reconcile.evm import balances_at, check_pinned_block
from reserve.reconcile.report import AuditorSigner, BlockPin, check_signature, coins_digest
from wallets.bitcoin.rpc import BitcoinRPC

FORMAT = "reserve-proof-of-reserves/1"
EVM_FORMAT = "reserve-proof-of-reserves-evm/1"


def statements(document: dict[str, Any], signer: AuditorSigner) -> list[dict[str, Any]]:
    """One signed statement per vault of a signed report."""
    body = document["report"]
    balances = {(r["vault_id"], r["asset"]): r for r in body["summary"]}
    result = []
    for scope in body["vaults"]:
        row = balances[(scope["vault_id"], scope["asset"])]
        result.append(signer.sign({
            "format": FORMAT, "vault_id": scope["vault_id"], "asset": scope["asset"],
            "descriptors": scope["descriptors"], "range_end": scope["range_end"],
            "block": body["block"], "balance_sats": row["chain"], "coins": row["coins"],
            "coins_sha256": scope["coins_sha256"],
            "ledger": {"tree_size": body["ledger"]["tree_size"],
                       "root_hash": body["ledger"]["root_hash"]},
            "report_sha256": document["signature"]["report_sha256"]}))
    return result + _evm_statements(document, signer)


def _evm_statements(document: dict[str, Any], signer: AuditorSigner) -> list[dict[str, Any]]:
    """One signed statement per Safe of the report's `evm` section (balances in wei)."""
    section = document["report"].get("evm")
    if not section:
        return []
    ledger = document["report"]["ledger"]
    return [signer.sign({
        "format": EVM_FORMAT, "vault_id": scope["vault_id"], "safe": scope["safe"],
        "block": section["block"], "unit": "wei",
        "balances": {r["asset"]: r["chain"] for r in section["summary"]
                     if r["vault_id"] == scope["vault_id"]},
        "ledger": {"tree_size": ledger["tree_size"], "root_hash": ledger["root_hash"]},
        "report_sha256": document["signature"]["report_sha256"]})
        for scope in section["vaults"]]


def check_evm_statement(statement: Any, w3: Web3,
                        auditors: list[VerifierKey] | None = None) -> dict[str, int]:
    """The proven balances of a Safe (wei per asset) if the chain agrees at the pinned
    block; ReportRejected otherwise. Reads state at a past block: anvil or an archive node."""
    if auditors is None:
        auditors = [VerifierKey.parse(str(statement.get("signature", {}).get("key", "")))]
    body = check_signature(statement, auditors, format_name=EVM_FORMAT)
    block = body["block"]
    check_pinned_block(w3, block)
    claimed = {asset: int(amount) for asset, amount in body["balances"].items()}
    held = balances_at(w3, body["safe"], [a for a in claimed if a != "ETH"],
                       int(block["number"]))
    if held != claimed:
        raise ReportRejected("mismatch", f"Safe {body['safe']} holds {held} wei at block "
                                         f"{block['number']}, the statement says {claimed}")
    return held


def check_statement(statement: Any, node: BitcoinRPC,
                    auditors: list[VerifierKey] | None = None) -> int:
    """The proven balance if the chain agrees; ReportRejected otherwise.

    With `auditors`, the signature must be one of theirs; without, it must verify under the
    key the statement names (the reader then compares that key with the published one).
    """
    if auditors is None:
        auditors = [VerifierKey.parse(str(statement.get("signature", {}).get("key", "")))]
    body = check_signature(statement, auditors, format_name=FORMAT)
    block = BlockPin(**body["block"])
    coins = coins_at(node, body["descriptors"], int(body["range_end"]), block)
    total = sum(c.amount_sats for c in coins)
    if total != body["balance_sats"] or coins_digest(coins) != body["coins_sha256"]:
        raise ReportRejected("mismatch", f"vault {body['vault_id']}: the chain holds {total} "
                                         f"sats in {len(coins)} coins at block {block.height}, "
                                         f"the statement says {body['balance_sats']}")
    return total
