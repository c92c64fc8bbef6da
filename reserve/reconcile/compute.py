"""The pure core of reconciliation: ledger-derived coins against chain-derived coins.

Given what the ledger says about one vault (`LedgerView`, derived from entries by
`ledger_view`) and what the chain shows at a pinned block (`ChainView`), `reconcile`
returns the summary row and the itemised findings as values. No I/O happens here: the
shell first asks `questions(view, coins)` which extra chain facts it needs (blocks still on
the best chain, who spent a coin the ledger still holds, mempool presence, the fee and
outputs of confirmed transfers), answers them, and hands everything back.

The accounting is by coins (outpoints), so every difference is itemised exactly:
each coin the ledger holds but the chain does not, and each coin the chain holds but the
ledger does not, is covered by exactly one finding, whose `difference_sats` is chain minus
ledger. The sum of the findings' differences equals the summary's difference; a remainder
(which would mean a bug) becomes an `unexplained_difference` finding rather than vanishing.

Balances agreeing is not enough: every confirmed spend of the vault must carry out a
proposal the workflow released, with exactly its outputs (`reserve.reconcile.releases`,
held in `LedgerView.releases`); each that does not is a critical `unauthorised_spend`. The
chain's outputs are what is judged: those paid to the vault's own addresses
(`ChainTransaction.vault_vouts`) are change, everything else was paid out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reserve.events.chain_btc import (
    BtcBroadcast,
    BtcConfirmed,
    BtcDeposit,
    BtcPsbtCreated,
    BtcReorg,
)
from reserve.ledger.entry import Entry
from reserve.reconcile.releases import EMPTY, Paid, Releases, judge, releases_of
from wallets.bitcoin import records

ASSET_BTC = "BTC"
Outpoint = tuple[str, int]

CRITICAL, HIGH, MEDIUM, INFO = "critical", "high", "medium", "info"
SEVERITY_RANK = {CRITICAL: 0, HIGH: 1, MEDIUM: 2, INFO: 3}
UNAUTHORISED = "unauthorised_spend"
# Reports signed before every outgoing movement was judged against the workflow's releases
# called an unauthorised spend `unexpected_spend`; the verifier reads it as this kind.
LEGACY_KINDS = {"unexpected_spend": UNAUTHORISED}
FINDING_KINDS = frozenset({
    UNAUTHORISED, "unrecorded_deposit", "deposit_reorganised", "transfer_reorganised",
    "transfer_missing", "transfer_unconfirmed", "confirmation_unrecorded", "amount_mismatch",
    "fee_mismatch", "ledger_inconsistent", "unexplained_difference"})


def outpoint_text(outpoint: Outpoint) -> str:
    return f"{outpoint[0]}:{outpoint[1]}"


@dataclass(frozen=True, order=True)
class Coin:
    """An unspent output of the vault: on chain (height known) or in the ledger (seq known)."""

    txid: str
    vout: int
    amount_sats: int
    height: int | None = None
    seq: int | None = None

    @property
    def outpoint(self) -> Outpoint:
        return (self.txid, self.vout)


@dataclass(frozen=True)
class LiveRecord:
    """A `btc.deposit` or `btc.confirmed` entry not reversed by a `btc.reorg`."""

    seq: int
    kind: str
    txid: str
    blockhash: str
    height: int
    delta_sats: int
    amount_sats: int
    fee_sats: int
    outputs: tuple[Coin, ...]


@dataclass(frozen=True)
class RecordedTransfer:
    """A transfer the workflow built (`btc.psbt_created`) and possibly broadcast."""

    txid: str
    proposal_digest: str | None
    amount_sats: int
    fee_sats: int
    inputs: tuple[Coin, ...]
    outputs: tuple[tuple[str, int, bool], ...]  # (address, amount, is change) in vout order
    broadcast_seq: int | None
    reorged_seqs: tuple[int, ...] = ()


@dataclass(frozen=True)
class LedgerView:
    vault_id: str
    asset: str
    balance_sats: int  # the ledger's balance: the sum of live entries' delta_sats
    records: tuple[LiveRecord, ...]
    transfers: Mapping[str, RecordedTransfer]  # txid -> transfer (PSBT built)
    releases: Releases = EMPTY  # what the workflow released (every vault's)


@dataclass(frozen=True)
class ChainTransaction:
    txid: str
    fee_sats: int
    outputs: tuple[tuple[str | None, int], ...]  # (address, amount) in vout order
    vault_vouts: frozenset[int] = frozenset()  # outputs paid to the vault's own addresses

    def paid(self) -> list[Paid]:
        """What left the vault: every output not paid to one of its own addresses."""
        return [output for vout, output in enumerate(self.outputs)
                if vout not in self.vault_vouts]


@dataclass(frozen=True)
class ChainView:
    """The chain at the pinned block, with the answers to `questions`."""

    vault_id: str
    asset: str
    height: int
    blockhash: str
    coins: tuple[Coin, ...]
    blocks: Mapping[str, bool] = field(default_factory=dict)  # on best chain at <= height
    spenders: Mapping[Outpoint, str] = field(default_factory=dict)  # confirmed <= height
    mempool: frozenset[str] = frozenset()
    transactions: Mapping[str, ChainTransaction] = field(default_factory=dict)

    @property
    def balance_sats(self) -> int:
        return sum(coin.amount_sats for coin in self.coins)


@dataclass(frozen=True)
class Questions:
    blockhashes: frozenset[str]
    outpoints: frozenset[Outpoint]  # whose spender (if any, at <= pinned height) is wanted
    spent_since_height: int  # the lowest height a wanted outpoint can have been spent at
    mempool_txids: frozenset[str]
    transactions: frozenset[tuple[str, str]]  # (txid, blockhash) of recorded spends


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    vault_id: str
    asset: str
    txid: str | None
    amount_sats: int
    difference_sats: int  # chain minus ledger, the part of the summary difference it explains
    detail: str
    outpoints: tuple[str, ...] = ()
    ledger_seqs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS or self.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown finding kind/severity {self.kind}/{self.severity}")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "vault_id": self.vault_id,
                "asset": self.asset, "txid": self.txid, "amount_sats": self.amount_sats,
                "difference_sats": self.difference_sats, "detail": self.detail,
                "outpoints": list(self.outpoints), "ledger_seqs": list(self.ledger_seqs)}


@dataclass(frozen=True)
class SummaryRow:
    vault_id: str
    asset: str
    ledger_sats: int
    chain_sats: int
    difference_sats: int
    status: str  # "ok", "discrepancy" or "critical"
    coins: int

    def to_json(self) -> dict[str, Any]:
        return {"vault_id": self.vault_id, "asset": self.asset, "ledger": self.ledger_sats,
                "chain": self.chain_sats, "difference": self.difference_sats,
                "status": self.status, "coins": self.coins, "unit": "sats"}


@dataclass(frozen=True)
class VaultResult:
    summary: SummaryRow
    findings: tuple[Finding, ...]


# ------------------------------------------------------------------ ledger side
def _coins(txid: str, outputs: Iterable[dict[str, Any]], seq: int) -> tuple[Coin, ...]:
    return tuple(Coin(txid, int(o["vout"]), int(o["amount_sats"]), seq=seq) for o in outputs)


def _live(entry: Entry) -> LiveRecord:
    """A deposit or confirmation in force, from its typed event."""
    event = BtcConfirmed.of(entry) if entry.kind == BtcConfirmed.KIND else BtcDeposit.of(entry)
    return LiveRecord(
        seq=entry.seq, kind=entry.kind, txid=event.txid, blockhash=event.blockhash,
        height=event.height, delta_sats=event.delta_sats, amount_sats=event.amount_sats,
        fee_sats=event.fee_sats if isinstance(event, BtcConfirmed) else 0,
        outputs=_coins(event.txid, event.outputs, entry.seq))


def _transfer(built: BtcPsbtCreated) -> RecordedTransfer:
    return RecordedTransfer(
        txid=built.txid, proposal_digest=built.digest, amount_sats=built.amount_sats,
        fee_sats=built.fee_sats,
        inputs=tuple(Coin(i["txid"], int(i["vout"]), int(i["amount_sats"]))
                     for i in built.inputs),
        outputs=tuple((o["address"], int(o["amount_sats"]), bool(o["change"]))
                      for o in built.outputs),
        broadcast_seq=None)


def ledger_view(entries: Iterable[Entry], vault_id: str, asset: str = ASSET_BTC,
                releases: Releases | None = None) -> LedgerView:
    """What the ledger says about one Bitcoin vault (every entry from seq 0, in order).

    `releases` is `releases_of(entries)`, computed here unless given (pass it once for
    many vaults of one ledger).
    """
    entries = list(entries)
    if releases is None:
        releases = releases_of(entries)
    # Every Bitcoin kind names its vault as `vault_id`: a cheap filter before decoding.
    mine = [e for e in entries if e.kind in records.BTC_KINDS
            and e.payload.get("vault_id") == vault_id]
    state = records.chain_state(mine, vault_id)
    live = tuple(_live(e) for e in state.live)
    transfers: dict[str, RecordedTransfer] = {}
    broadcast: dict[str, int] = {}
    reorged: dict[str, list[int]] = {}
    for entry in mine:
        if entry.kind == BtcPsbtCreated.KIND:
            built = BtcPsbtCreated.of(entry)
            if built.txid not in transfers:  # the first PSBT of a transaction stands
                transfers[built.txid] = _transfer(built)
        elif entry.kind == BtcBroadcast.KIND:
            broadcast.setdefault(BtcBroadcast.of(entry).txid, entry.seq)
        elif entry.kind == BtcReorg.KIND:
            reorg = BtcReorg.of(entry)
            if reorg.reverses_kind == BtcConfirmed.KIND:
                reorged.setdefault(reorg.txid, []).append(entry.seq)
    finished = {txid: RecordedTransfer(**{**t.__dict__, "broadcast_seq": broadcast.get(txid),
                                           "reorged_seqs": tuple(reorged.get(txid, ()))})
                for txid, t in transfers.items()}
    return LedgerView(vault_id, asset, state.balance_sats, live, finished, releases)


def ledger_coins(view: LedgerView) -> dict[Outpoint, Coin]:
    """The coins the ledger believes the vault holds: outputs recorded (deposits, and the
    change of confirmed transfers) minus the inputs of confirmed transfers."""
    coins: dict[Outpoint, Coin] = {}
    confirmed = [r for r in view.records if r.kind == "btc.confirmed"]
    for record in view.records:
        for coin in record.outputs:
            coins[coin.outpoint] = coin
    for record in confirmed:
        transfer = view.transfers.get(record.txid)
        if transfer is None:
            continue
        for vout, (_address, amount, change) in enumerate(transfer.outputs):
            if change:
                coins[(record.txid, vout)] = Coin(record.txid, vout, amount, seq=record.seq)
    for record in confirmed:
        transfer = view.transfers.get(record.txid)
        for coin in transfer.inputs if transfer else ():
            coins.pop(coin.outpoint, None)
    return coins


def _unapproved(view: LedgerView) -> list[LiveRecord]:
    """Spends the watcher recorded that no broadcast of the Bitcoin layer accounts for
    (their coins follow the chain; whether they are authorised is judged separately)."""
    return [r for r in view.records if r.kind == "btc.confirmed"
            and (r.txid not in view.transfers or view.transfers[r.txid].broadcast_seq is None)]


def questions(view: LedgerView, chain_coins: Iterable[Coin]) -> Questions:
    """The chain facts `reconcile` needs beyond the vault's coins at the pinned block."""
    on_chain = {coin.outpoint for coin in chain_coins}
    held = ledger_coins(view)
    missing = {op for op in held if op not in on_chain}
    recorded = {r.txid for r in view.records}
    unconfirmed = [t for t in view.transfers.values() if t.broadcast_seq is not None
                   and t.txid not in recorded]
    for transfer in unconfirmed:
        missing.update(c.outpoint for c in transfer.inputs if c.outpoint not in on_chain)
    height_of = {r.seq: r.height for r in view.records}
    since = min((height_of.get(held[op].seq or 0, 0) if op in held else 0 for op in missing),
                default=0)
    confirmed_spends = frozenset(
        (r.txid, r.blockhash) for r in view.records if r.kind == "btc.confirmed")
    mempool = {t.txid for t in unconfirmed}
    mempool.update(r.txid for r in view.records)
    return Questions(blockhashes=frozenset(r.blockhash for r in view.records),
                     outpoints=frozenset(missing), spent_since_height=since,
                     mempool_txids=frozenset(mempool), transactions=confirmed_spends)


# ------------------------------------------------------------------ reconciliation
@dataclass
class _Books:
    """Working state of one reconciliation: coins not yet explained by a finding."""

    view: LedgerView
    chain: ChainView
    held: dict[Outpoint, Coin]
    missing: dict[Outpoint, Coin]  # in the ledger, not on chain
    extra: dict[Outpoint, Coin]  # on chain, not in the ledger
    findings: list[Finding] = field(default_factory=list)
    verdicts: dict[str, str] = field(default_factory=dict)  # txid -> `unauthorised` answer

    def add(self, kind: str, severity: str, txid: str | None, amount_sats: int, detail: str,
            missing: Iterable[Outpoint] = (), extra: Iterable[Outpoint] = (),
            seqs: Iterable[int] = ()) -> None:
        """Record a finding; the coins it names are explained by it and leave the books."""
        taken_missing = [self.missing.pop(op) for op in sorted(set(missing)) if op in self.missing]
        taken_extra = [self.extra.pop(op) for op in sorted(set(extra)) if op in self.extra]
        difference = (sum(c.amount_sats for c in taken_extra)
                      - sum(c.amount_sats for c in taken_missing))
        names = tuple(outpoint_text(c.outpoint) for c in (*taken_missing, *taken_extra))
        self.findings.append(Finding(kind, severity, self.view.vault_id, self.view.asset, txid,
                                     amount_sats, difference, detail, names,
                                     tuple(sorted(set(seqs)))))

    def extra_of(self, txid: str) -> list[Outpoint]:
        return [op for op in self.extra if op[0] == txid]

    def missing_spent_by(self, txid: str) -> list[Outpoint]:
        return [op for op in self.missing if self.chain.spenders.get(op) == txid]

    def unauthorised(self, txid: str) -> str:
        """"" if the workflow released a proposal of this vault that `txid` carries out
        with exactly its outputs, else why not (see reserve.reconcile.releases)."""
        if txid not in self.verdicts:
            self.verdicts[txid] = _judge(self.view, self.chain, txid)
        return self.verdicts[txid]


def _claimed(view: LedgerView, txid: str) -> tuple[str | None, str]:
    """(the proposal the ledger's records point at for `txid`, the transaction the ledger
    binds that proposal to): the workflow's own broadcast first, else the first PSBT the
    Bitcoin layer built for it (it builds one per proposal)."""
    by_txid = view.releases.by_txid()
    transfer = view.transfers.get(txid)
    digest = by_txid.get(txid) or (transfer.proposal_digest if transfer else None)
    if digest is None:
        return None, ""
    release = view.releases.transfers.get(digest)
    if release is not None and release.txid:
        return digest, release.txid
    first = next((t.txid for t in view.transfers.values() if t.proposal_digest == digest), "")
    return digest, first


def _judge(view: LedgerView, chain: ChainView, txid: str) -> str:
    claimed, bound = _claimed(view, txid)
    chain_tx = chain.transactions.get(txid)
    reason = judge(view.releases, txid=txid, claimed=claimed, vault=view.vault_id,
                   asset=view.asset, paid=chain_tx.paid() if chain_tx else None)
    if not reason and bound and bound != txid:
        reason = (f"the ledger binds proposal {claimed} to transaction {bound}, not to this "
                  "one")
    return reason


def _books(view: LedgerView, chain: ChainView) -> _Books:
    held = ledger_coins(view)
    on_chain = {coin.outpoint: coin for coin in chain.coins}
    # A spend the watcher recorded without a proposal moved the ledger's balance by its net
    # delta only; the chain says which coins it took and what came back, so the ledger's
    # coins follow it here and the spend itself is reported (below) as a finding.
    for record in _unapproved(view):
        for op in [op for op in held if op not in on_chain
                   and chain.spenders.get(op) == record.txid]:
            del held[op]
        for op, coin in on_chain.items():
            if op[0] == record.txid and op not in held:
                held[op] = Coin(coin.txid, coin.vout, coin.amount_sats, seq=record.seq)
    missing = {op: coin for op, coin in held.items() if op not in on_chain}
    extra = {op: coin for op, coin in on_chain.items() if op not in held}
    return _Books(view, chain, held, missing, extra)


def _unauthorised_recorded(books: _Books) -> None:
    """Every confirmed spend the ledger recorded is judged against the workflow's releases.

    A spend recorded without a broadcast behind it is judged wherever its block is (its
    coins already follow the chain, see `_books`); one the workflow's layer built and
    broadcast is judged when its block is on the best chain (else it is reorganised).
    Either way the coins are accounted for, so the finding explains no difference.
    """
    bare = {record.seq for record in _unapproved(books.view)}
    for record in books.view.records:
        if record.kind != "btc.confirmed" or not (
                record.seq in bare or books.chain.blocks.get(record.blockhash, False)):
            continue
        reason = books.unauthorised(record.txid)
        if reason:
            books.add(UNAUTHORISED, CRITICAL, record.txid, -record.delta_sats,
                      f"the vault spent {-record.delta_sats} sats (fee included) in "
                      f"{record.txid} at height {record.height} without authorisation: "
                      f"{reason}", seqs=[record.seq])


def _amounts(books: _Books) -> None:
    for coin in books.chain.coins:
        recorded = books.held.get(coin.outpoint)
        if recorded is not None and recorded.amount_sats != coin.amount_sats:
            books.findings.append(Finding(
                "amount_mismatch", HIGH, books.view.vault_id, books.view.asset, coin.txid,
                coin.amount_sats, coin.amount_sats - recorded.amount_sats,
                f"coin {outpoint_text(coin.outpoint)}: ledger {recorded.amount_sats} sats, "
                f"chain {coin.amount_sats} sats", (outpoint_text(coin.outpoint),),
                (recorded.seq,) if recorded.seq is not None else ()))


def _reorganised(books: _Books) -> None:
    for record in books.view.records:
        if books.chain.blocks.get(record.blockhash, False):
            continue
        created = [op for op, coin in books.held.items() if coin.seq == record.seq]
        where = ("back in the mempool" if record.txid in books.chain.mempool else
                 "confirmed again in another block" if not any(
                     op in books.missing for op in created) and created else
                 "not on the chain")
        detail = (f"ledger entry {record.seq} records {record.txid} in block "
                  f"{record.blockhash} (height {record.height}), which is not on the best "
                  f"chain at the pinned block; the transaction is {where}")
        transfer = books.view.transfers.get(record.txid)
        severity = INFO if where.startswith("confirmed again") else HIGH
        if record.kind == "btc.deposit":
            books.add("deposit_reorganised", severity, record.txid, record.amount_sats, detail,
                      missing=created, seqs=[record.seq])
            continue
        inputs = [c.outpoint for c in transfer.inputs] if transfer else []
        books.add("transfer_reorganised", severity, record.txid, -record.delta_sats, detail,
                  missing=created, extra=inputs, seqs=[record.seq])


def _pending_transfers(books: _Books) -> None:
    recorded = {r.txid for r in books.view.records}
    for transfer in books.view.transfers.values():
        if transfer.broadcast_seq is None or transfer.txid in recorded:
            continue
        seqs = [transfer.broadcast_seq, *transfer.reorged_seqs]
        total = transfer.amount_sats + transfer.fee_sats
        note = " (its confirmation was reorganised away)" if transfer.reorged_seqs else ""
        spent = [c.outpoint for c in transfer.inputs
                 if books.chain.spenders.get(c.outpoint) == transfer.txid]
        reason = books.unauthorised(transfer.txid) if spent else ""
        if spent and reason:
            books.add(UNAUTHORISED, CRITICAL, transfer.txid, total,
                      f"transfer {transfer.txid} is confirmed on chain (the ledger has not "
                      f"recorded its confirmation{note}) without authorisation: {reason}",
                      missing=spent, extra=books.extra_of(transfer.txid), seqs=seqs)
        elif spent:
            books.add("confirmation_unrecorded", MEDIUM, transfer.txid, total,
                      f"broadcast transfer {transfer.txid} is confirmed on chain but the "
                      f"ledger has not recorded its confirmation{note}", missing=spent,
                      extra=books.extra_of(transfer.txid), seqs=seqs)
        elif transfer.txid in books.chain.mempool:
            books.add("transfer_unconfirmed", MEDIUM, transfer.txid, total,
                      f"broadcast transfer {transfer.txid} is in the mempool, not yet "
                      f"confirmed at the pinned block{note}", seqs=seqs)
        else:
            books.add("transfer_missing", HIGH, transfer.txid, total,
                      f"broadcast transfer {transfer.txid} is neither confirmed nor in the "
                      f"mempool{note}", seqs=seqs)


def _fees(books: _Books) -> None:
    for record in books.view.records:
        transfer = books.view.transfers.get(record.txid)
        chain_tx = books.chain.transactions.get(record.txid)
        if record.kind != "btc.confirmed" or transfer is None or chain_tx is None:
            continue
        approved = tuple((address, amount) for address, amount, _change in transfer.outputs)
        if chain_tx.outputs != approved:
            books.findings.append(Finding(
                "amount_mismatch", HIGH, books.view.vault_id, books.view.asset, record.txid,
                transfer.amount_sats, 0, f"transfer {record.txid} pays {list(chain_tx.outputs)} "
                f"on chain; the ledger recorded {list(approved)}", (), (record.seq,)))
        fees = {"recorded at build": transfer.fee_sats, "recorded at confirmation":
                record.fee_sats}
        for label, fee in fees.items():
            if fee != chain_tx.fee_sats:
                books.findings.append(Finding(
                    "fee_mismatch", HIGH, books.view.vault_id, books.view.asset, record.txid,
                    chain_tx.fee_sats, 0, f"transfer {record.txid}: fee {label} {fee} sats, "
                    f"on chain {chain_tx.fee_sats} sats", (), (record.seq,)))


def _unexpected_and_unrecorded(books: _Books) -> None:
    spenders = sorted({books.chain.spenders[op] for op in books.missing
                       if op in books.chain.spenders})
    for txid in spenders:
        taken = books.missing_spent_by(txid)
        back = books.extra_of(txid)
        amount = (sum(books.missing[op].amount_sats for op in taken)
                  - sum(books.extra[op].amount_sats for op in back))
        seqs = [seq for op in taken if (seq := books.missing[op].seq) is not None]
        reason = books.unauthorised(txid)
        if reason:
            books.add(UNAUTHORISED, CRITICAL, txid, amount,
                      f"transaction {txid} moved {amount} sats (fee included) out of the "
                      f"vault without authorisation: {reason}",
                      missing=taken, extra=back, seqs=seqs)
        else:  # released and paid as approved, but neither broadcast nor confirmed on record
            books.add("confirmation_unrecorded", MEDIUM, txid, amount,
                      f"transaction {txid} carries out a released proposal and is confirmed "
                      "on chain, but the ledger has recorded neither its broadcast nor its "
                      "confirmation", missing=taken, extra=back, seqs=seqs)
    for op, coin in sorted(books.missing.items()):
        books.add(UNAUTHORISED, CRITICAL, None, coin.amount_sats,
                  f"coin {outpoint_text(op)} recorded by the ledger is gone from the vault's "
                  "unspent outputs and no confirmed spender was found", missing=[op],
                  seqs=[coin.seq] if coin.seq is not None else [])
    by_txid: dict[str, list[Outpoint]] = {}
    for op in sorted(books.extra):
        by_txid.setdefault(op[0], []).append(op)
    for txid, outpoints in by_txid.items():
        amount = sum(books.extra[op].amount_sats for op in outpoints)
        height = books.extra[outpoints[0]].height
        books.add("unrecorded_deposit", HIGH, txid, amount,
                  f"{amount} sats arrived in the vault in {txid} (height {height}) and the "
                  "ledger has no record of it", extra=outpoints)


def _status(difference: int, findings: Iterable[Finding]) -> str:
    severities = {f.severity for f in findings}
    if CRITICAL in severities:
        return "critical"
    if difference or severities - {INFO}:
        return "discrepancy"
    return "ok"


def reconcile(view: LedgerView, chain: ChainView) -> VaultResult:
    """Compare one vault's ledger view with the chain at the pinned block.

    Requires view and chain to be for the same vault and asset.
    """
    if (view.vault_id, view.asset) != (chain.vault_id, chain.asset):
        raise ValueError(f"ledger view of {view.vault_id}/{view.asset} against chain view of "
                         f"{chain.vault_id}/{chain.asset}")
    books = _books(view, chain)
    _unauthorised_recorded(books)
    _amounts(books)
    _reorganised(books)
    _pending_transfers(books)
    _fees(books)
    _unexpected_and_unrecorded(books)
    held_sats = sum(coin.amount_sats for coin in books.held.values())
    if held_sats != view.balance_sats:
        books.findings.append(Finding(
            "ledger_inconsistent", HIGH, view.vault_id, view.asset, None, view.balance_sats,
            held_sats - view.balance_sats, f"the ledger's recorded balance changes sum to "
            f"{view.balance_sats} sats but the coins it recorded sum to {held_sats} sats"))
    difference = chain.balance_sats - view.balance_sats
    remainder = difference - sum(f.difference_sats for f in books.findings)
    if remainder:
        books.findings.append(Finding(
            "unexplained_difference", HIGH, view.vault_id, view.asset, None, remainder,
            remainder, "part of the difference is not explained by any itemised finding"))
    findings = tuple(sorted(books.findings, key=finding_order))
    summary = SummaryRow(view.vault_id, view.asset, view.balance_sats, chain.balance_sats,
                         difference, _status(difference, findings), len(chain.coins))
    return VaultResult(summary, findings)


def finding_order(finding: Finding) -> tuple[int, str, str, str, tuple[str, ...]]:
    return (SEVERITY_RANK[finding.severity], finding.kind, finding.vault_id,
            finding.txid or "", finding.outpoints)
