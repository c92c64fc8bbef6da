"""The EVM shell of reconciliation: Safe balances at a pinned block, and report anchoring.

The pinned block is a (number, hash) pair read once; every balance (`eth_getBalance`,
ERC-20 `balanceOf`) and every event is read at or below that number, and the hash at that
number is read again afterwards: if it changed (a reorg while reading), everything is read
again (bounded). Credits come from `wallets.evm.deposits.scan` (the watcher's own reader),
so the reconciliation sees exactly the events the watcher records. The comparison is
`reserve.reconcile.evm_compute`.

A report's SHA-256 is anchored with `ReserveRegistry.anchorReport(hash, ledger tree size)`
and the anchor recorded as a `ledger.anchor` entry with subject `reconcile.report`;
`verify_report_anchor` checks registry, ledger entry and transaction block against each
other and returns findings as values (empty: the anchor holds).

The verifier (`reserve.reconcile.verify`) re-derives the section with `check_pinned_block`
and `section_at`: the same reads and the same pure core, at the report's pinned number
instead of the tip.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    BlockNotFound,
    ContractLogicError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.logs import DISCARD

from reserve import present
from reserve.errors import EVMError, NodeUnavailable, ReconcileError, ReportRejected
from reserve.events.records import ANCHOR_OF_REPORT, LedgerAnchor, ReportAnchored
from reserve.ledger.entry import Entry
from reserve.reconcile import evm_compute as compute
from reserve.reconcile.releases import Releases, releases_of
from wallets.evm import contracts, deposits
from wallets.evm.anchor import Finding
from wallets.evm.safe_tx import SafeTx, checksum
from wallets.evm.transfer import describe
from wallets.evm.vault import balances

PIN_ATTEMPTS_MAX = 5
SYMBOL_CHARS_MAX = 16
DECIMALS_MAX = 36
ANCHOR_SUBJECT = ANCHOR_OF_REPORT  # the `subject` of a report's `ledger.anchor`
ANCHOR_ACTOR = "service:anchor"


@dataclass(frozen=True)
class EVMTarget:
    """One EVM vault to reconcile: its Safe, the tokens it holds, where its history starts."""

    vault_id: str
    safe: str
    tokens: tuple[str, ...] = ()
    from_block: int = 0


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _debits(w3: Web3, safe: str, token: str, chain_id: int, start: int, end: int
            ) -> tuple[compute.Movement, ...]:
    contract = contracts.at(w3, "ReserveToken", token)
    found = []
    for first in range(start, end + 1, deposits.LOG_RANGE_BLOCKS):
        last = min(first + deposits.LOG_RANGE_BLOCKS - 1, end)
        for log in contract.events.Transfer().get_logs(
                argument_filters={"from": safe}, from_block=first, to_block=last):
            tx_hash = _hex(log["transactionHash"])
            found.append(compute.Movement(f"{chain_id}:{tx_hash}:{int(log['logIndex'])}",
                                          tx_hash, int(log["args"]["value"]),
                                          int(log["blockNumber"])))
    return tuple(found)


def _moves(contract: Any, tx: Any) -> tuple[tuple[str, str, int] | None, str, bool]:
    """What an `execTransaction` call moved (asset, recipient, amount), or why it is not a
    plain ETH or ERC-20 transfer (the same reading a signer applies, `transfer.describe`),
    and whether it is a value-less call of the Safe to itself (its own configuration)."""
    if tx.get("to") != contract.address:
        return None, "made through another contract: its Safe call could not be read", False
    _function, args = contract.decode_function_input(tx["input"])
    configures = checksum(args["to"]) == contract.address and int(args["value"]) == 0 \
        and int(args["operation"]) == 0
    try:
        call = SafeTx(to=args["to"], value=int(args["value"]), data=bytes(args["data"]),
                      operation=int(args["operation"]), safe_tx_gas=int(args["safeTxGas"]),
                      base_gas=int(args["baseGas"]), gas_price=int(args["gasPrice"]),
                      gas_token=args["gasToken"], refund_receiver=args["refundReceiver"],
                      nonce=0)
        return describe(call), "", configures
    except EVMError as error:
        return None, f"not a plain transfer: {error}", configures


def _executions(w3: Web3, safe: str, chain_id: int, start: int, end: int
                ) -> tuple[tuple[compute.SafeExecution, ...], tuple[compute.Movement, ...]]:
    """The Safe's successful executions with what each moved, and the ETH each sent
    (decoded from its `execTransaction` call: ETH leaving a Safe emits no log). An execution
    made through another contract cannot be decoded here; its ETH is left to the remainder
    finding, and the execution itself is judged unauthorised."""
    contract = contracts.at(w3, "Safe", safe)
    runs, debits = [], []
    for first in range(start, end + 1, deposits.LOG_RANGE_BLOCKS):
        last = min(first + deposits.LOG_RANGE_BLOCKS - 1, end)
        for log in contract.events.ExecutionSuccess().get_logs(from_block=first, to_block=last):
            tx_hash = _hex(log["transactionHash"])
            tx = w3.eth.get_transaction(log["transactionHash"])
            moves, what, configures = _moves(contract, tx)
            runs.append(compute.SafeExecution(tx_hash, _hex(log["args"]["txHash"]),
                                              int(log["blockNumber"]), moves, what,
                                              configures))
            if tx.get("to") != contract.address:
                continue
            _function, args = contract.decode_function_input(tx["input"])
            if int(args["value"]) and int(args["operation"]) == 0:
                debits.append(compute.Movement(f"{chain_id}:{tx_hash}:exec", tx_hash,
                                               int(args["value"]), int(log["blockNumber"])))
    return tuple(runs), tuple(debits)


def _canonical(w3: Web3, blocks: dict[str, int], number: int) -> dict[str, bool]:
    return {blockhash: height <= number and _hex(w3.eth.get_block(height)["hash"]) == blockhash
            for blockhash, height in sorted(blocks.items())}


def _views_once(w3: Web3, chain_id: int, number: int, blockhash: str,
                targets: Sequence[EVMTarget], entries: list[Entry]
                ) -> list[compute.EVMChainView]:
    views = []
    for target in targets:
        safe, tokens = checksum(target.safe, "safe"), [checksum(t) for t in target.tokens]
        held = balances(w3, safe, {t: t for t in tokens}, number)
        credits = deposits.scan(w3, chain_id=chain_id, vault_id=target.vault_id, safe=safe,
                                tokens=tokens, from_block=target.from_block, to_block=number)
        runs, eth_out = _executions(w3, safe, chain_id, target.from_block, number)
        canonical = _canonical(w3, compute.recorded_blocks(entries, safe, chain_id), number)
        for asset in ["ETH", *tokens]:
            views.append(compute.EVMChainView(
                vault_id=target.vault_id, asset=asset, chain_id=chain_id, safe=safe,
                block_number=number, block_hash=blockhash, balance_wei=held[asset],
                credits=tuple(compute.Movement(c.key, c.tx_hash, c.amount_wei, c.block_number)
                              for c in credits if c.asset == asset),
                debits=eth_out if asset == "ETH" else _debits(w3, safe, asset, chain_id,
                                                              target.from_block, number),
                executions=tuple(run.tx_hash for run in runs), canonical=canonical,
                executed=runs, assets=("ETH", *tokens)))
    return views


def pinned_views(w3: Web3, targets: Sequence[EVMTarget], entries: list[Entry]
                 ) -> tuple[dict[str, Any], list[compute.EVMChainView]]:
    """({chain_id, number, hash}, a view per vault and asset), all at one pinned block."""
    if not targets or len({t.vault_id for t in targets}) != len(targets):
        raise ReconcileError("EVM vaults of one report must be given, with distinct ids")
    try:
        chain_id = int(w3.eth.chain_id)
        for _attempt in range(PIN_ATTEMPTS_MAX):
            block = w3.eth.get_block("latest")
            number, blockhash = int(block["number"]), _hex(block["hash"])
            views = _views_once(w3, chain_id, number, blockhash, targets, entries)
            if _hex(w3.eth.get_block(number)["hash"]) == blockhash:
                return {"chain_id": chain_id, "number": number, "hash": blockhash}, views
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable during reconciliation: {error}") from None
    raise ReconcileError(f"the EVM chain reorganised during {PIN_ATTEMPTS_MAX} reads; retry")


def section(w3: Web3, targets: Sequence[EVMTarget], entries: list[Entry],
            released: Releases | None = None) -> dict[str, Any]:
    """The report's `evm` section: pinned block, scopes, summary rows and findings.
    `released` is `releases_of(entries)`, computed here unless given."""
    block, views = pinned_views(w3, targets, entries)
    return _section(block, targets, views, entries, released)


def _section(block: dict[str, Any], targets: Sequence[EVMTarget],
             views: Sequence[compute.EVMChainView], entries: list[Entry],
             released: Releases | None = None) -> dict[str, Any]:
    released = releases_of(entries) if released is None else released
    results = [compute.reconcile(entries, view, released) for view in views]
    return {"block": block,
            "vaults": [{"vault_id": t.vault_id, "safe": checksum(t.safe),
                        "assets": ["ETH", *(checksum(x) for x in t.tokens)],
                        "from_block": t.from_block} for t in targets],
            "summary": [r.summary.to_json() for r in results],
            "findings": [f.to_json() for r in results for f in r.findings]}


def targets_of(section_json: dict[str, Any]) -> list[EVMTarget]:
    """The EVM vaults a report's `evm` section scanned, as targets to scan again."""
    return [EVMTarget(str(v["vault_id"]), str(v["safe"]),
                      tuple(str(a) for a in v["assets"] if a != "ETH"), int(v["from_block"]))
            for v in section_json["vaults"]]


def check_pinned_block(w3: Web3, block: dict[str, Any]) -> None:
    """ReportRejected unless the node serves the pin's chain and holds the pinned hash at
    the pinned number on its best chain."""
    try:
        chain_id = int(w3.eth.chain_id)
        if chain_id != int(block["chain_id"]):
            raise ReconcileError(f"the EVM node serves chain {chain_id}, the report's EVM vaults "
                                 f"are on chain {block['chain_id']}: give a node of that chain")
        try:
            found = _hex(w3.eth.get_block(int(block["number"]))["hash"])
        except BlockNotFound:
            found = None
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None
    if found != block["hash"]:
        raise ReportRejected("block_not_on_chain", f"EVM block {block['hash']} is not on the "
                                                   f"node's best chain at number "
                                                   f"{block['number']} (that block is {found})")


def _no_history(number: int, error: Exception) -> NodeUnavailable:
    return NodeUnavailable(
        f"the EVM node refused to serve state at block {number} ({error}); checking a report "
        "needs balances at its pinned block: use an archive node (anvil keeps history; "
        "pruned testnet nodes keep only the last ~128 blocks)")


def balances_at(w3: Web3, safe: str, tokens: Sequence[str], number: int) -> dict[str, int]:
    """A Safe's balances at a past block ("ETH" and each token); needs historical state."""
    try:
        return balances(w3, checksum(safe, "safe"), {t: t for t in tokens}, number)
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None
    except Web3RPCError as error:
        raise _no_history(number, error) from None


def section_at(w3: Web3, block: dict[str, Any], targets: Sequence[EVMTarget],
               entries: list[Entry]) -> dict[str, Any]:
    """The `evm` section re-derived at a past pinned block (`check_pinned_block` first):
    balances are read AT the pinned number, which needs a node that serves historical
    state (anvil does; off anvil, an archive node)."""
    number, blockhash = int(block["number"]), str(block["hash"])
    try:
        views = _views_once(w3, int(block["chain_id"]), number, blockhash, targets, entries)
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable during verification: {error}") from None
    except Web3RPCError as error:
        raise _no_history(number, error) from None
    if _hex(w3.eth.get_block(number)["hash"]) != blockhash:
        raise ReportRejected("block_not_on_chain", f"EVM block {blockhash} left the best chain "
                                                   "while it was being read")
    return _section(block, targets, views, entries)


def anchor_report(ledger: Any, w3: Web3, registry_address: str, account: LocalAccount,
                  document: dict[str, Any], *, actor: str = ANCHOR_ACTOR) -> Entry:
    """Post a signed report's SHA-256 to the registry; record the anchor in the ledger."""
    digest = str(document["signature"]["report_sha256"])
    tree_size = int(document["report"]["ledger"]["tree_size"])
    registry = contracts.at(w3, "ReserveRegistry", checksum(registry_address, "registry"))
    try:
        if contracts.read(registry.functions.isReportAnchored(bytes.fromhex(digest))):
            raise EVMError(f"report {digest} is already anchored in {registry.address}")
        receipt = contracts.transact(w3, account, registry.functions.anchorReport(
            bytes.fromhex(digest), tree_size))
    except (ConnectionError, OSError) as error:
        raise NodeUnavailable(f"EVM node unreachable: {error}") from None
    events = registry.events.ReportAnchored().process_receipt(receipt, errors=DISCARD)
    if len(events) != 1:
        raise EVMError("anchoring receipt has no ReportAnchored event")
    anchored = ReportAnchored(
        subject=ANCHOR_SUBJECT, chain_id=int(w3.eth.chain_id), registry=registry.address,
        index=int(events[0]["args"]["index"]), report_sha256=digest, ledger_tree_size=tree_size,
        anchorer=account.address, tx_hash=_hex(receipt["transactionHash"]),
        block_number=int(receipt["blockNumber"]), block_hash=_hex(receipt["blockHash"]))
    entry: Entry = ledger.append(anchored.KIND, actor, anchored.to_payload())
    return entry


def verify_report_anchor(entries: Iterable[Entry], w3: Web3, registry_address: str,
                         report_sha256: str) -> list[Finding]:
    """Findings (empty: it holds) for a report's anchor: recorded, on chain, same values."""
    registry = contracts.at(w3, "ReserveRegistry", checksum(registry_address, "registry"))
    recorded = [(e.seq, anchor) for e, anchor in report_anchors(entries, report_sha256)
                if anchor.registry == registry.address]
    if not recorded:
        return [Finding("anchor-unrecorded", f"the ledger records no anchor of report "
                                             f"{report_sha256} in {registry.address}")]
    seq, anchor = recorded[-1]
    details = {"seq": seq, "index": anchor.index}
    count = int(registry.functions.reportCount().call())
    if anchor.index >= count:
        return [Finding("anchor-missing", f"registry holds {count} reports; the ledger records "
                                          f"index {anchor.index}", details)]
    report_hash, tree_size, *_ = registry.functions.reportAt(anchor.index).call()
    findings = []
    if bytes(report_hash).hex() != report_sha256 or tree_size != anchor.ledger_tree_size:
        findings.append(Finding("anchor-differs", f"registry report {anchor.index} holds "
                                                  f"({bytes(report_hash).hex()}, {tree_size})",
                                details))
    try:
        receipt = w3.eth.get_transaction_receipt(HexStr(anchor.tx_hash))
    except TransactionNotFound:
        receipt = None
    if receipt is None or _hex(receipt["blockHash"]) != anchor.block_hash:
        findings.append(Finding("anchor-tx-moved", f"anchoring transaction {anchor.tx_hash} "
                                                   "is not in its recorded block", details))
    return findings


def report_anchors(entries: Iterable[Entry], report_sha256: str
                   ) -> list[tuple[Entry, ReportAnchored]]:
    """The ledger's anchors of one report (in any registry), in ledger order."""
    found = []
    for entry in entries:
        if entry.kind == LedgerAnchor.KIND:
            anchor = LedgerAnchor.of(entry)
            if isinstance(anchor, ReportAnchored) and anchor.report_sha256 == report_sha256:
                found.append((entry, anchor))
    return found


def token_units(w3: Web3, tokens: Iterable[str]) -> dict[str, present.Unit]:
    """Each token's symbol and decimals as its ERC-20 contract reports them, by checksummed
    address (the report's asset id), for the report's HTML export. A token that does not
    answer, or answers implausibly, is left out (shown in base units under its address)."""
    units: dict[str, present.Unit] = {}
    for address in tokens:
        token = contracts.at(w3, "ReserveToken", checksum(address))
        try:
            symbol = str(token.functions.symbol().call())
            decimals = int(token.functions.decimals().call())
        except (Web3RPCError, ContractLogicError, BadFunctionCallOutput, ValueError,
                OverflowError):
            continue
        if symbol.isprintable() and 0 < len(symbol) <= SYMBOL_CHARS_MAX \
                and 0 <= decimals <= DECIMALS_MAX:
            units[checksum(address)] = present.token_unit(symbol, decimals)
    return units
