"""The pure core of EVM reconciliation: a Safe's balance per asset against the ledger's.

EVM vaults are accounts, not coins, so differences are itemised by the events that move a
balance: credits (the Safe's `SafeReceived` for ETH, ERC-20 `Transfer` logs to it) and
debits (Safe executions; ERC-20 `Transfer` logs from it), all at or below the pinned
block. The ledger side is what `wallets.evm.deposits_core` already derives: `evm.deposit`
and successful `evm.executed` entries not reversed by `evm.reorg`. Whatever the events do
not explain (ETH moved by an execution the ledger never recorded, value arriving without
an event, e.g. by `selfdestruct`) becomes one finding for the remainder, so the findings
always add up to the summary's difference, as for Bitcoin.

Every Safe execution and every transfer out must also carry out a proposal the workflow
released, exactly (`reserve.reconcile.releases`); one that does not is a critical
`unauthorised_spend`, whether or not the ledger recorded it (`evm.executed` is only a
pointer to the proposal it claims).

Amounts are wei, which exceed JSON's safe integers: the report carries them as decimal
strings with `"unit": "wei"`. No I/O happens here; `reserve.reconcile.evm` is the shell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from reserve.events.chain_evm import EvmDeposit, EvmExecuted, EvmSafeTxCreated
from reserve.reconcile.compute import (
    CRITICAL,
    FINDING_KINDS,
    HIGH,
    INFO,
    MEDIUM,
    SEVERITY_RANK,
    UNAUTHORISED,
)
from reserve.reconcile.compute import _status as status_of
from reserve.reconcile.releases import Release, Releases, judge, releases_of
from wallets.evm import deposits_core as core

UNIT = "wei"


@dataclass(frozen=True)
class Movement:
    """A balance change seen on chain: a credit (+) or an ERC-20 debit (-) of one asset."""

    key: str  # "chain_id:tx_hash:log_index", as deposits_core keys deposits
    tx_hash: str
    amount_wei: int
    block_number: int


@dataclass(frozen=True)
class SafeExecution:
    """A successful execution of the Safe seen on chain (its `ExecutionSuccess` log), and
    what its `execTransaction` call moved when it is a plain ETH or ERC-20 transfer."""

    tx_hash: str
    safe_tx_hash: str
    block_number: int
    moves: tuple[str, str, int] | None  # (asset, recipient, amount); None: not a transfer
    what: str = ""  # why `moves` is None, in words
    # A call of the Safe to itself without value (owners, threshold, guard, modules: its own
    # configuration, as the deployment's `setGuard`) moves nothing out; it is not judged.
    configures: bool = False


@dataclass(frozen=True)
class EVMChainView:
    """One Safe and asset at the pinned block, with the events that moved it up to there."""

    vault_id: str
    asset: str  # "ETH" or the token address
    chain_id: int
    safe: str
    block_number: int
    block_hash: str
    balance_wei: int
    credits: tuple[Movement, ...] = ()
    debits: tuple[Movement, ...] = ()  # ERC-20 transfers out; ETH sent by Safe executions
    executions: tuple[str, ...] = ()  # tx hashes of the Safe's successful executions
    canonical: Mapping[str, bool] = field(default_factory=dict)  # recorded block hash -> on
    # the best chain at or below the pinned block
    executed: tuple[SafeExecution, ...] = ()  # every successful execution of the Safe
    assets: tuple[str, ...] = ()  # every asset of the Safe this report reads


@dataclass(frozen=True)
class EVMFinding:
    kind: str
    severity: str
    vault_id: str
    asset: str
    txid: str | None
    amount_wei: int
    difference_wei: int  # chain minus ledger: the part of the summary difference it explains
    detail: str
    ledger_seqs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS or self.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown finding kind/severity {self.kind}/{self.severity}")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "vault_id": self.vault_id,
                "asset": self.asset, "txid": self.txid, "amount": str(self.amount_wei),
                "difference": str(self.difference_wei), "unit": UNIT, "detail": self.detail,
                "ledger_seqs": list(self.ledger_seqs)}


@dataclass(frozen=True)
class EVMSummaryRow:
    vault_id: str
    asset: str
    ledger_wei: int
    chain_wei: int
    difference_wei: int
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"vault_id": self.vault_id, "asset": self.asset, "ledger": str(self.ledger_wei),
                "chain": str(self.chain_wei), "difference": str(self.difference_wei),
                "status": self.status, "unit": UNIT}


@dataclass(frozen=True)
class EVMResult:
    summary: EVMSummaryRow
    findings: tuple[EVMFinding, ...]


Held = tuple[int, EvmDeposit | EvmExecuted]  # (ledger seq, its event), decoded once
EventT = TypeVar("EventT", EvmDeposit, EvmExecuted)


def _in_force(entries: Iterable[Any], safe: str, chain_id: int) -> list[Held]:
    """The Safe's deposits and executions not reversed by a reorg, as typed events."""
    return [(r.seq, EvmDeposit.of(r) if r.kind == core.DEPOSIT else EvmExecuted.of(r))
            for r in core.in_force(entries, safe, chain_id).values()]


def recorded(entries: Iterable[Any], chain: EVMChainView) -> list[Held]:
    """The ledger's entries in force for this Safe and asset (deposits, successful runs)."""
    return [(seq, event) for seq, event in _in_force(entries, chain.safe, chain.chain_id)
            if event.asset == chain.asset
            and (isinstance(event, EvmDeposit) or event.success)]


def recorded_blocks(entries: Iterable[Any], safe: str, chain_id: int) -> dict[str, int]:
    """block hash -> height of every entry in force for the Safe: what `canonical` must answer."""
    return {event.block_hash: event.block_number
            for _seq, event in _in_force(entries, safe, chain_id)}


def _only(mine: list[Held], kind: type[EventT]) -> list[tuple[int, EventT]]:
    return [(seq, event) for seq, event in mine if isinstance(event, kind)]


def _deposits(chain: EVMChainView, mine: list[Held]) -> list[EVMFinding]:
    found: list[EVMFinding] = []
    seen = {credit.key: credit for credit in chain.credits}
    deposits = _only(mine, EvmDeposit)
    for seq, deposit in deposits:
        amount = deposit.amount_wei
        credit = seen.get(deposit.key)
        if not chain.canonical.get(deposit.block_hash, False):
            again = credit is not None
            found.append(EVMFinding(
                "deposit_reorganised", INFO if again else HIGH, chain.vault_id, chain.asset,
                deposit.tx_hash, amount,
                (credit.amount_wei if credit is not None else 0) - amount,
                f"ledger entry {seq} records a deposit in block {deposit.block_hash} "
                f"(height {deposit.block_number}), not on the best chain at the pinned "
                f"block; the credit is {'in another block' if again else 'not on the chain'}",
                (seq,)))
        elif credit is None:
            found.append(EVMFinding(
                "deposit_reorganised", HIGH, chain.vault_id, chain.asset,
                deposit.tx_hash, amount, -amount,
                f"ledger entry {seq} records a deposit whose event is not on chain",
                (seq,)))
        elif credit.amount_wei != amount:
            found.append(EVMFinding(
                "amount_mismatch", HIGH, chain.vault_id, chain.asset, credit.tx_hash,
                credit.amount_wei, credit.amount_wei - amount,
                f"deposit {credit.key}: ledger {amount} wei, chain {credit.amount_wei} wei",
                (seq,)))
    keys = {deposit.key for _seq, deposit in deposits}
    for credit in chain.credits:
        if credit.key not in keys:
            found.append(EVMFinding(
                "unrecorded_deposit", HIGH, chain.vault_id, chain.asset, credit.tx_hash,
                credit.amount_wei, credit.amount_wei,
                f"{credit.amount_wei} wei of {chain.asset} arrived in the Safe in "
                f"{credit.tx_hash} (block {credit.block_number}) and the ledger has no record "
                "of it"))
    return found


def _same(left: str, right: str) -> bool:
    return left.lower() == right.lower()


def _pointers(entries: Iterable[Any], chain: EVMChainView) -> dict[str, str]:
    """Safe tx hash or tx hash -> the proposal digest the ledger's EVM records name for it
    (only a pointer: `judge` checks it against the workflow's releases)."""
    found: dict[str, str] = {}
    for entry in entries:
        if entry.kind == EvmSafeTxCreated.KIND:
            created = EvmSafeTxCreated.of(entry)
            if _same(created.safe, chain.safe) and created.chain_id == chain.chain_id:
                found.setdefault(created.safe_tx_hash.lower(), created.digest)
        elif entry.kind == EvmExecuted.KIND:
            run = EvmExecuted.of(entry)
            if _same(run.safe, chain.safe) and run.chain_id == chain.chain_id:
                found.setdefault(run.tx_hash.lower(), run.digest)
    return found


def _verdict(execution: SafeExecution, chain: EVMChainView, releases: Releases,
             pointers: Mapping[str, str]) -> str:
    """"" if the execution carries out a proposal the workflow released for this Safe,
    exactly as approved (one output: asset, recipient, amount); else why not."""
    claimed = releases.by_txid().get(execution.tx_hash.lower()) or \
        pointers.get(execution.safe_tx_hash.lower()) or pointers.get(execution.tx_hash.lower())
    moves = execution.moves
    asset = moves[0] if moves else chain.asset

    def matches(release: Release) -> bool:
        if asset == "ETH" or release.asset == "ETH":
            return asset == release.asset
        named = _same(release.asset, asset)
        return named or (bool(release.token) and _same(release.token, asset))
    reason = judge(releases, txid=execution.tx_hash, claimed=claimed, vault=chain.vault_id,
                   asset=asset, paid=[(moves[1], moves[2])] if moves else None,
                   asset_matches=matches)
    if moves is None and execution.what:
        reason += f" ({execution.what})"
    release = releases.transfers.get(claimed or "")
    if release is not None and not release.chain.endswith(f":{chain.chain_id}"):
        reason = "; ".join(filter(None, [reason, f"proposal {release.digest[:16]} is for chain "
                                                 f"{release.chain}"]))
    if release is not None and release.safe_tx_hash and \
            not _same(release.safe_tx_hash, execution.safe_tx_hash):
        reason = "; ".join(filter(None, [reason, f"the workflow released proposal "
                                                 f"{release.digest[:16]} as Safe transaction "
                                                 f"{release.safe_tx_hash}, not "
                                                 f"{execution.safe_tx_hash}"]))
    return reason


def _home(execution: SafeExecution, chain: EVMChainView) -> str:
    """The asset whose report row an execution belongs to: the token it moves if the
    report reads that token, else ETH (ETH moved, or nothing a transfer can describe)."""
    if execution.moves and execution.moves[0] != "ETH":
        token = next((a for a in chain.assets if _same(a, execution.moves[0])), None)
        if token is not None:
            return token
    return "ETH"


def _debit_reason(debit: Movement, chain: EVMChainView, verdicts: Mapping[str, str]) -> str:
    runs = [e for e in chain.executed if _same(e.tx_hash, debit.tx_hash)]
    if not runs:
        return ("no successful Safe execution in this transaction moved it (a transfer the "
                "Safe did not make itself, e.g. by an allowance)")
    reasons = [verdicts[e.tx_hash] for e in runs if verdicts[e.tx_hash]]
    if reasons:
        return "; ".join(reasons)
    moved = [e.moves for e in runs if e.moves and _same(e.moves[0], chain.asset)]
    if sum(m[2] for m in moved) != debit.amount_wei:
        return (f"the released Safe execution moves {[m[2] for m in moved]} of {chain.asset}, "
                f"but {debit.amount_wei} left the Safe")
    return ""


def _spends(chain: EVMChainView, mine: list[Held], releases: Releases,
            pointers: Mapping[str, str]) -> list[EVMFinding]:
    found: list[EVMFinding] = []
    runs = _only(mine, EvmExecuted)
    executed = {run.tx_hash for _seq, run in runs}
    for seq, run in runs:
        if not chain.canonical.get(run.block_hash, False):
            found.append(EVMFinding(
                "transfer_reorganised", HIGH, chain.vault_id, chain.asset,
                run.tx_hash, run.amount_wei, run.amount_wei,
                f"ledger entry {seq} records an execution in block "
                f"{run.block_hash}, not on the best chain at the pinned block",
                (seq,)))
    verdicts = {e.tx_hash: "" if e.configures else _verdict(e, chain, releases, pointers)
                for e in chain.executed}
    for debit in chain.debits:
        reason = _debit_reason(debit, chain, verdicts)
        difference = 0 if debit.tx_hash in executed else -debit.amount_wei
        if reason:
            found.append(EVMFinding(
                UNAUTHORISED, CRITICAL, chain.vault_id, chain.asset, debit.tx_hash,
                debit.amount_wei, difference,
                f"transaction {debit.tx_hash} moved {debit.amount_wei} wei of {chain.asset} "
                f"out of the Safe without authorisation: {reason}"))
        elif difference:
            found.append(EVMFinding(
                "confirmation_unrecorded", MEDIUM, chain.vault_id, chain.asset, debit.tx_hash,
                debit.amount_wei, difference,
                f"transaction {debit.tx_hash} carries out a released proposal, but the ledger "
                "has not recorded its execution"))
    flagged = {f.txid for f in found if f.kind == UNAUTHORISED}
    for execution in chain.executed:
        reason = verdicts[execution.tx_hash]
        if not reason or execution.tx_hash in flagged or \
                not _same(_home(execution, chain), chain.asset):
            continue
        found.append(EVMFinding(
            UNAUTHORISED, CRITICAL, chain.vault_id, chain.asset, execution.tx_hash,
            execution.moves[2] if execution.moves else 0, 0,
            f"Safe execution {execution.tx_hash} (Safe transaction {execution.safe_tx_hash}, "
            f"block {execution.block_number}) is not authorised: {reason}"))
    return found


def _remainder(chain: EVMChainView, mine: list[Held], remainder: int
               ) -> list[EVMFinding]:
    """One finding for what the events do not explain (ETH has no log for outflows)."""
    if remainder == 0:
        return []
    if remainder > 0:
        return [EVMFinding(
            "unrecorded_deposit", HIGH, chain.vault_id, chain.asset, None, remainder,
            remainder, f"{remainder} wei of {chain.asset} arrived without a deposit event "
                       "(e.g. selfdestruct or a block reward); the ledger has no record of it")]
    recorded_runs = {run.tx_hash for _seq, run in _only(mine, EvmExecuted)}
    unknown = [tx for tx in chain.executions if tx not in recorded_runs]
    return [EVMFinding(
        UNAUTHORISED, CRITICAL, chain.vault_id, chain.asset,
        unknown[0] if len(unknown) == 1 else None, -remainder, remainder,
        f"{-remainder} wei of {chain.asset} left the Safe with no recorded execution"
        + (f"; Safe executions the ledger does not hold: {', '.join(unknown)}" if unknown
           else ""))]


def reconcile(entries: Iterable[Any], chain: EVMChainView,
              releases: Releases | None = None) -> EVMResult:
    """Compare one Safe and asset in the ledger (every entry from seq 0, in order) with the
    chain view. `releases` is `releases_of(entries)`, computed here unless given."""
    listed = list(entries)
    if releases is None:
        releases = releases_of(listed)
    mine = recorded(listed, chain)
    ledger_wei = core.positions(listed, chain.safe, chain.chain_id).get(chain.asset, 0)
    findings = _deposits(chain, mine) + _spends(chain, mine, releases, _pointers(listed, chain))
    difference = chain.balance_wei - ledger_wei
    rest = _remainder(chain, mine, difference - sum(f.difference_wei for f in findings))
    named = {f.txid for f in rest if f.txid}  # the remainder names it: one finding, not two
    findings = [f for f in findings if not (f.kind == UNAUTHORISED and f.difference_wei == 0
                                            and f.txid in named)] + rest
    ordered = tuple(sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], f.kind,
                                                    f.txid or "", f.detail)))
    summary = EVMSummaryRow(chain.vault_id, chain.asset, ledger_wei, chain.balance_wei,
                            difference, status_of(difference, ordered))  # type: ignore[arg-type]
    return EVMResult(summary, ordered)
