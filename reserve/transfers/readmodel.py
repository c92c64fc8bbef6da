"""Read models: the workflow's vaults and proposals, and the holdings, kept in tables.

They are a cache of the ledger, never a source of truth. Each is attached to the ledger
(`attach`) and handed every batch inside the append's own transaction, so its rows and
the entries that change them commit together or not at all; a batch the workflow's
replay refuses (a vote for an unknown proposal, a digest that does not match its
document) rolls the append back. A process that appended without them attached (an
older tool, a chain command) leaves them behind; the next reader that finds them behind
applies the missing entries first (`current`), so they are never read stale.

The transitions are `Projection`'s own (reserve/transfers/projection.py): a batch runs
them over mappings that read rows of this transaction on demand and write back the rows
it changed, so replay in memory and the stored rows follow one set of rules. Reading
costs what the question costs: one proposal is one row by primary key, the open
proposals come from an index on state, a decision's velocity evidence is the approvals
inside the policy's widest window (an index on vault and approval time), and holdings
are one row per vault and asset. `reserve projections rebuild` recreates every row from
the ledger; `reserve ledger verify --projections` compares them with a full replay.

Tables (revision 0005_read_models): `read_model_state` (name, size: how many entries a
model has applied), `rm_vaults`, `rm_proposals`, `rm_holdings`, `rm_holding_points`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from reserve.errors import EventError, WorkflowError
from reserve.events import Event, decode
from reserve.events.chain_btc import BtcConfirmed, BtcDeposit, BtcReorg
from reserve.events.chain_evm import EvmDeposit, EvmExecuted, EvmReorg
from reserve.events.records import ReconcileReport
from reserve.events.supervision import ReportAttested
from reserve.policy import loader
from reserve.policy.evaluate import DestinationRecord, Freeze, History, TransferRecord
from reserve.proposals import proposal as proposal_module
from reserve.proposals.approval import Approval
from reserve.proposals.proposal import TransferBody
from reserve.proposals.state import TERMINAL
from reserve.transfers.chain import ChainStep
from reserve.transfers.projection import (
    RELEVANT_KINDS,
    Projection,
    ProposalQuery,
    ProposalStatus,
    StateChange,
    VaultState,
    velocity_window_seconds,
)

WORKFLOW = "workflow"
HOLDINGS = "holdings"
HOLDING_KINDS = ("btc.deposit", "btc.confirmed", "btc.reorg", "evm.deposit", "evm.executed",
                 "evm.reorg")
TABLES = ("read_model_state", "rm_vaults", "rm_proposals", "rm_digest_entries", "rm_holdings",
          "rm_holding_points")
DECODED_CACHE_MAX = 4096
# Velocity evidence kept: more than the approvals of a busy reserve's widest window.
EVIDENCE_CACHE_MAX = 65_536
EVIDENCE_CHUNK = 500  # digests per query (SQLite's parameter limit is 999 and up)
KIND_CHUNK = 10_000
FINDINGS_MAX = 20
HISTORY_CHECK_MAX = 10**9  # every point, when checking
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# For an in-memory SQLite ledger only (unit tests); files and PostgreSQL get the same
# tables from the Alembic revision 0005_read_models (a test compares the two).
MEMORY_DDL = (
    "CREATE TABLE IF NOT EXISTS read_model_state (name TEXT NOT NULL PRIMARY KEY, size BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_vaults (vault TEXT NOT NULL PRIMARY KEY, updated_seq BIGINT NOT NULL,"
    " state TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rm_proposals (digest TEXT NOT NULL PRIMARY KEY, vault TEXT NOT NULL,"
    " action TEXT NOT NULL, state TEXT NOT NULL, seq BIGINT NOT NULL, approved_at_us BIGINT,"
    " updated_seq BIGINT NOT NULL, status TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rm_proposals_by_seq ON rm_proposals (seq)",
    "CREATE INDEX IF NOT EXISTS rm_proposals_by_action ON rm_proposals (action, seq)",
    "CREATE INDEX IF NOT EXISTS rm_proposals_by_vault ON rm_proposals (vault, seq)",
    "CREATE INDEX IF NOT EXISTS rm_proposals_by_state ON rm_proposals (state, seq)",
    "CREATE INDEX IF NOT EXISTS rm_proposals_by_approval ON rm_proposals (vault, approved_at_us)",
    "CREATE TABLE IF NOT EXISTS rm_digest_entries (digest TEXT NOT NULL, seq BIGINT NOT NULL,"
    " PRIMARY KEY (digest, seq))",
    "CREATE TABLE IF NOT EXISTS rm_holdings (vault TEXT NOT NULL, asset TEXT NOT NULL,"
    " balance TEXT NOT NULL, entries BIGINT NOT NULL, updated_seq BIGINT NOT NULL,"
    " PRIMARY KEY (vault, asset))",
    "CREATE TABLE IF NOT EXISTS rm_holding_points (vault TEXT NOT NULL, asset TEXT NOT NULL,"
    " seq BIGINT NOT NULL, time TEXT NOT NULL, balance TEXT NOT NULL,"
    " PRIMARY KEY (vault, asset, seq))",
)


# -- rows <-> values ---------------------------------------------------------------------
def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // timedelta(microseconds=1)


def _dumps(value: Any) -> str:
    """Compact JSON with sorted keys: orjson (several times faster, UTF-8 as is), or
    `json` for what orjson refuses (an integer past 64 bits, a lone surrogate). Either
    text reads back (with `json`) as the same value; nothing compares the texts."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))


def status_json(status: ProposalStatus) -> str:
    return _dumps({
        "proposal": status.proposal.document(), "state": status.state, "seq": status.seq,
        "votes": [{"custodian": v.custodian, "decision": v.decision,
                   "signature": v.signature.hex(), "recorded_at": _time(v.recorded_at)}
                  for v in status.votes],
        "changes": [{"state": c.state, "at": _time(c.at), "seq": c.seq, "reason": c.reason}
                    for c in status.changes],
        "approved_at": _time(status.approved_at),
        "chain_steps": [{"kind": c.kind, "payload": c.payload} for c in status.chain_steps],
        "txid": status.txid})


def status_from_json(text: str) -> ProposalStatus:
    data = json.loads(text)
    proposal = proposal_module.from_document(data["proposal"])
    return ProposalStatus(
        proposal=proposal, state=data["state"], seq=data["seq"],
        votes=tuple(Approval(proposal_digest=proposal.digest, custodian=v["custodian"],
                             decision=v["decision"], signature=bytes.fromhex(v["signature"]),
                             recorded_at=_parse(v["recorded_at"])) for v in data["votes"]),
        changes=tuple(StateChange(c["state"], _parse(c["at"]), c["seq"], c["reason"])  # type: ignore[arg-type]
                      for c in data["changes"]),
        approved_at=_parse(data["approved_at"]),
        chain_steps=tuple(ChainStep(kind=c["kind"], payload=c["payload"])
                          for c in data["chain_steps"]),
        txid=data["txid"])


VAULT_TEXTS_MAX = 256  # vault states kept decoded (a reserve has a few vaults)


def vault_json(state: VaultState) -> str:
    freeze = state.freeze
    return json.dumps({
        "vault": state.vault, "policy": loader.to_document(state.policy),
        "policy_versions": [list(v) for v in state.policy_versions],
        "freeze": None if freeze is None else {"since": _time(freeze.since), "by": freeze.by,
                                               "reason": freeze.reason},
        "destinations": [{"asset": d.asset, "address": d.address, "label": d.label,
                          "usable_from": _time(d.usable_from)} for d in state.destinations]},
        sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=VAULT_TEXTS_MAX)
def vault_from_json(text: str) -> VaultState:
    """The vault state a `vault_json` text holds. Memoised on the text (a pure function
    with a frozen result): every write batch reads its vault's row afresh, and parsing
    and checking the policy in it cost more than the rest of a proposal's append."""
    data = json.loads(text)
    freeze = data["freeze"]
    return VaultState(
        vault=data["vault"],
        policy=loader.from_mapping(data["policy"], source=f"read model of {data['vault']}"),
        policy_versions=tuple((int(v), str(sha), int(seq))
                              for v, sha, seq in data["policy_versions"]),
        freeze=None if freeze is None else Freeze(since=_parse(freeze["since"]),  # type: ignore[arg-type]
                                                  by=freeze["by"], reason=freeze["reason"]),
        destinations=tuple(DestinationRecord(d["asset"], d["address"], d["label"],
                                             _parse(d["usable_from"]))  # type: ignore[arg-type]
                           for d in data["destinations"]))


# -- the batch's view of the rows ----------------------------------------------------------
class _BatchRows(MutableMapping[str, Any]):
    """Rows of one table as a mapping, inside one write transaction: read on demand,
    written back by `flush` (the rows the batch changed, once each)."""

    def __init__(self, tx: Any, select: str, decode: Any,
                 known: Mapping[str, Any] | None = None) -> None:
        self._tx, self._select, self._decode = tx, select, decode
        self._loaded: dict[str, Any] = {}
        self._known = known or {}
        self.dirty: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self.dirty:
            return self.dirty[key]
        if key not in self._loaded and key in self._known:
            self._loaded[key] = self._known[key]  # this transaction's row, read before
        if key not in self._loaded:
            rows = self._tx.query(self._select, (key,))
            self._loaded[key] = self._decode(rows[0][0]) if rows else None
        value = self._loaded[key]
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __setitem__(self, key: str, value: Any) -> None:
        self.dirty[key] = value

    def __delitem__(self, key: str) -> None:
        raise WorkflowError("the workflow never deletes a vault or a proposal")

    def __iter__(self) -> Iterator[str]:
        raise WorkflowError("a replay batch does not list every row")

    def __len__(self) -> int:
        raise WorkflowError("a replay batch does not count every row")


def _sizes_in(tx: Any) -> dict[str, int]:
    """Every model's stored size, read once per transaction object (an append's `tx` is
    its own: both models of one batch share one statement) and kept up to date by
    `_set_size` and `_forget_size`."""
    sizes: dict[str, int] | None = getattr(tx, "model_sizes", None)
    if sizes is None:
        sizes = {str(name): int(size) for name, size in
                 tx.query("SELECT name, size FROM read_model_state")}
        tx.model_sizes = sizes
    return sizes


def _stored_size(tx: Any, name: str) -> int:
    return _sizes_in(tx).get(name, 0)


def _set_size(tx: Any, name: str, size: int) -> None:
    tx.execute("INSERT INTO read_model_state (name, size) VALUES (?, ?) ON CONFLICT (name) "
               "DO UPDATE SET size = excluded.size", (name, size))
    _sizes_in(tx)[name] = size


def _forget_size(tx: Any, name: str) -> None:
    tx.execute("DELETE FROM read_model_state WHERE name = ?", (name,))
    _sizes_in(tx).pop(name, None)


def _pending(tx: Any, name: str, entries: Sequence[Any]) -> Iterator[Any]:
    """The entries a model has not applied yet, up to the end of `entries`: those appended
    without it first, then the batch itself."""
    size = _stored_size(tx, name)
    first = entries[0].seq if entries else tx.size()
    if size > first:
        raise WorkflowError(f"the {name} read model has applied {size} entries but the "
                            f"ledger holds {first}: run `reserve projections rebuild`")
    if size < first:
        yield from tx.entries(size, first)
    yield from entries


# Entries that name a checked-in document by its SHA-256, in `report_sha256`: a
# reconciliation report and the supervisors' attestations of it (or of a statement).
DOCUMENT_EVENTS: dict[str, type[ReconcileReport] | type[ReportAttested]] = {
    ReconcileReport.KIND: ReconcileReport, ReportAttested.KIND: ReportAttested}


def digest_named(entry: Any) -> str:
    """The proposal or document an entry is about, for `rm_digest_entries` ("" if none): a
    workflow entry's `digest`, a chain layer's `proposal_digest` on its btc.* / evm.*
    entries, or the `report_sha256` of a reconciliation report and of an attestation.
    The signing package selects by it (reserve/transfers/package.py); a report and its
    attestations are found by it (reserve/supervision/attest.py)."""
    kind = entry.kind
    document = DOCUMENT_EVENTS.get(kind)
    if document is not None:
        try:
            return str(document.of(entry).report_sha256)
        except EventError:  # refused at append; only an altered database holds one
            return ""
    if kind not in RELEVANT_KINDS and not kind.startswith(("btc.", "evm.")):
        return ""
    payload = entry.payload
    value = payload.get("digest") or payload.get("proposal_digest")
    return value if isinstance(value, str) else ""


def entries_naming(ledger: Any, digests: Iterable[str], stop: int) -> list[int]:
    """The seqs below `stop` of the entries naming any of `digests` (the index, in order)."""
    wanted = sorted(set(digests))
    if not wanted:
        return []
    rows = ledger.query(
        f"SELECT seq FROM rm_digest_entries WHERE digest IN ({', '.join('?' * len(wanted))})"
        " AND seq < ? ORDER BY seq", (*wanted, stop))
    return [int(row[0]) for row in rows]


class WorkflowModel:
    """The workflow projection as rows: `rm_vaults` and `rm_proposals`.

    `written` is what the last batch it applied wrote: (the model's size after it, vault
    -> state, digest -> status), the rows exactly as stored. A writer holding the ledger
    (StoredProjection, inside a group) takes them from here after its append returned,
    instead of reading them back.
    """

    name = WORKFLOW
    memory_ddl = MEMORY_DDL

    def __init__(self) -> None:
        self.written: tuple[int, dict[str, VaultState], dict[str, ProposalStatus]] | None = None
        # Set by a StoredProjection holding the group for its very next append (`arm`):
        # (the models' size, the rows it read in this transaction, by (table, key); None
        # for an absent row). Used only by a batch starting at that size.
        self.known: tuple[int, Mapping[tuple[str, str], Any]] | None = None

    def apply(self, tx: Any, entries: Sequence[Any]) -> None:
        known, self.known = self.known, None
        rows: Mapping[tuple[str, str], Any] = {}
        if known is not None and entries and entries[0].seq == known[0] and \
                getattr(tx, "model_sizes", None) is None:
            # Both models stood at this size when the group caught up, and every append
            # since moved both (a failed one rolled back both).
            rows = known[1]
            tx.model_sizes = {WORKFLOW: known[0], HOLDINGS: known[0]}
        vaults = _BatchRows(tx, "SELECT state FROM rm_vaults WHERE vault = ?", vault_from_json,
                            {k: v for (t, k), v in rows.items() if t == "rm_vaults"})
        proposals = _BatchRows(tx, "SELECT status FROM rm_proposals WHERE digest = ?",
                               status_from_json,
                               {k: v for (t, k), v in rows.items() if t == "rm_proposals"})
        projection = Projection(vaults=vaults, proposals=proposals)
        projection.size = _stored_size(tx, WORKFLOW)
        named: list[tuple[str, int]] = []
        for entry in _pending(tx, WORKFLOW, entries):
            projection.apply(entry)
            digest = digest_named(entry)
            if digest:
                named.append((digest, entry.seq))
        last = projection.size - 1
        tx.executemany("INSERT INTO rm_digest_entries (digest, seq) VALUES (?, ?)", named)
        tx.executemany(
            "INSERT INTO rm_vaults (vault, updated_seq, state) VALUES (?, ?, ?) ON CONFLICT "
            "(vault) DO UPDATE SET updated_seq = excluded.updated_seq, state = excluded.state",
            [(name, last, vault_json(state)) for name, state in vaults.dirty.items()])
        tx.executemany(
            "INSERT INTO rm_proposals (digest, vault, action, state, seq, approved_at_us, "
            "updated_seq, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO "
            "UPDATE SET state = excluded.state, approved_at_us = excluded.approved_at_us, "
            "updated_seq = excluded.updated_seq, status = excluded.status",
            [(digest, s.proposal.vault, s.proposal.action, s.state, s.seq,
              _micros(s.approved_at), last, status_json(s))
             for digest, s in proposals.dirty.items()])
        _set_size(tx, WORKFLOW, projection.size)
        self.written = (projection.size, dict(vaults.dirty), dict(proposals.dirty))

    def reset(self, tx: Any) -> None:
        self.written = None
        for table in ("rm_vaults", "rm_proposals", "rm_digest_entries"):
            tx.execute(f"DELETE FROM {table}")
        _forget_size(tx, WORKFLOW)


# -- holdings --------------------------------------------------------------------------------
def holding_delta(event: Event) -> tuple[str, str, int] | None:
    """(vault, asset, signed amount) an entry adds to a holding, or None."""
    if isinstance(event, BtcDeposit | BtcConfirmed | BtcReorg):
        return event.vault, "BTC", event.delta_sats
    if isinstance(event, EvmDeposit):
        return event.vault, event.asset, event.amount_wei
    if isinstance(event, EvmExecuted):
        return (event.vault, event.asset, -event.amount_wei) if event.success else None
    if isinstance(event, EvmReorg):  # reverses the entry it names
        reversed_deposit = event.reverses_kind == "evm.deposit"
        return event.vault, event.asset, -event.amount_wei if reversed_deposit \
            else event.amount_wei
    return None


def entry_delta(entry: Any) -> tuple[str, str, int] | None:
    """The holding change of a ledger entry; None for other kinds and for a malformed
    chain entry (that is the reconciliation's business, not the holdings')."""
    if entry.kind not in HOLDING_KINDS:
        return None
    try:
        return holding_delta(decode(entry.kind, entry.payload))
    except EventError:
        return None


class HoldingsModel:
    """Balances per vault and asset (`rm_holdings`, with how many entries changed each)
    and the balance after each such entry (`rm_holding_points`, the dashboard's charts)."""

    name = HOLDINGS
    memory_ddl = MEMORY_DDL

    def apply(self, tx: Any, entries: Sequence[Any]) -> None:
        balances: dict[tuple[str, str], tuple[int, int]] = {}  # (balance, entries)
        points: list[tuple[str, str, int, str, str]] = []
        size = _stored_size(tx, HOLDINGS)
        for entry in _pending(tx, HOLDINGS, entries):
            size = entry.seq + 1
            found = entry_delta(entry)
            if found is None:
                continue
            key = (found[0], found[1])
            if key not in balances:
                rows = tx.query("SELECT balance, entries FROM rm_holdings WHERE vault = ? "
                                "AND asset = ?", key)
                balances[key] = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
            balance, count = balances[key]
            balances[key] = (balance + found[2], count + 1)
            points.append((key[0], key[1], entry.seq, entry.time, str(balance + found[2])))
        tx.executemany(
            "INSERT INTO rm_holdings (vault, asset, balance, entries, updated_seq) VALUES "
            "(?, ?, ?, ?, ?) ON CONFLICT (vault, asset) DO UPDATE SET balance = "
            "excluded.balance, entries = excluded.entries, updated_seq = excluded.updated_seq",
            [(v, a, str(b), n, size - 1) for (v, a), (b, n) in balances.items()])
        tx.executemany("INSERT INTO rm_holding_points (vault, asset, seq, time, balance) "
                       "VALUES (?, ?, ?, ?, ?)", points)
        _set_size(tx, HOLDINGS, size)

    def reset(self, tx: Any) -> None:
        for table in ("rm_holdings", "rm_holding_points"):
            tx.execute(f"DELETE FROM {table}")
        _forget_size(tx, HOLDINGS)


def attach(ledger: Any) -> None:
    """Attach both read models to `ledger` (idempotent): its appends keep them in step."""
    ledger.attach(WorkflowModel())
    ledger.attach(HoldingsModel())


def _sizes(ledger: Any) -> dict[str, int]:
    return {str(name): int(size) for name, size in
            ledger.query("SELECT name, size FROM read_model_state")}


# The models' sizes and the ledger's, in one statement (asked before most reads).
_SIZES_AND_SIZE = ("SELECT name, size, (SELECT seq + 1 FROM ledger_entries ORDER BY seq DESC "
                   "LIMIT 1) FROM read_model_state")


def current(ledger: Any) -> int | None:
    """Attach the models and apply what was appended without them, if anything was.

    Returns the workflow model's size when it was already current (read in the same
    statement as the ledger's size), None when the models had to catch up.
    """
    attach(ledger)
    rows = ledger.query(_SIZES_AND_SIZE)
    sizes = {str(name): int(size) for name, size, _ in rows}
    size = int(rows[0][2] or 0) if rows else ledger.size()
    if any(sizes.get(name, 0) != size for name in (WORKFLOW, HOLDINGS)):
        ledger.update_models()
        return None
    return sizes.get(WORKFLOW, 0)


# -- reading -------------------------------------------------------------------------------
@dataclass(frozen=True)
class HoldingRow:
    vault: str
    asset: str
    balance: int
    entries: int  # how many ledger entries changed it
    history: tuple[tuple[str, int], ...]  # (ledger time, balance after), latest ones


def holdings(ledger: Any, *, history_points: int = 0) -> list[HoldingRow]:
    """Every vault's balance per asset, with its `history_points` latest points each."""
    current(ledger)
    found = []
    for vault, asset, balance, count in ledger.query(
            "SELECT vault, asset, balance, entries FROM rm_holdings ORDER BY vault, asset"):
        points: tuple[tuple[str, int], ...] = ()
        if history_points > 0:
            rows = ledger.query(
                "SELECT time, balance FROM rm_holding_points WHERE vault = ? AND asset = ? "
                "ORDER BY seq DESC LIMIT ?", (vault, asset, history_points))
            points = tuple((str(t), int(b)) for t, b in reversed(rows))
        found.append(HoldingRow(str(vault), str(asset), int(balance), int(count), points))
    return found


def replay_holdings(entries: Iterable[Any]) -> list[HoldingRow]:
    """The same rows from a replay of `entries` (every point): what the stored ones must be."""
    running: dict[tuple[str, str], int] = {}
    history: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for entry in entries:
        found = entry_delta(entry)
        if found is None:
            continue
        key = (found[0], found[1])
        running[key] = running.get(key, 0) + found[2]
        history.setdefault(key, []).append((entry.time, running[key]))
    return [HoldingRow(vault, asset, running[(vault, asset)], len(history[(vault, asset)]),
                       tuple(history[(vault, asset)])) for vault, asset in sorted(running)]


class _Decoded:
    """A bounded cache of decoded rows, keyed by (key, updated_seq): a row that changed,
    or that a rolled-back batch wrote, is never served from it."""

    def __init__(self, limit: int = DECODED_CACHE_MAX) -> None:
        self._items: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._limit = limit

    def clear(self) -> None:
        self._items.clear()

    def peek(self, key: str, updated: int) -> Any:
        """The kept value of (key, updated_seq), or None; as fresh as `get` makes it."""
        cached = self._items.get((key, updated))
        if cached is not None:
            self._items.move_to_end((key, updated))
        return cached

    def put(self, key: str, updated: int, value: Any) -> None:
        """Keep `value` as the row (key, updated_seq), decoded (what was just written)."""
        self._items[(key, updated)] = value
        self._items.move_to_end((key, updated))
        if len(self._items) > self._limit:
            self._items.popitem(last=False)

    def get(self, key: str, updated: int, text: Any, decode: Any) -> Any:
        cached = self._items.get((key, updated))
        if cached is not None:
            self._items.move_to_end((key, updated))
            return cached
        value = decode(text)
        self._items[(key, updated)] = value
        if len(self._items) > self._limit:
            self._items.popitem(last=False)
        return value


class _StoredRows(Mapping[str, Any]):
    """Read-only mapping over one read-model table (committed rows)."""

    def __init__(self, owner: StoredProjection, table: str, key: str, column: str,
                 decode: Any) -> None:
        self._owner, self._table, self._key, self._column = owner, table, key, column
        self._decode = decode

    def get(self, key: str, default: Any = None) -> Any:
        owner = self._owner
        held = owner.held and owner.fresh
        if held and (self._table, key) in owner.rows_held:
            value = owner.rows_held[(self._table, key)]
            return default if value is None else value
        rows = owner.ledger.query(
            f"SELECT updated_seq, {self._column} FROM {self._table} WHERE {self._key} = ?",
            (key,))
        value = owner.decoded.get(key, int(rows[0][0]), rows[0][1], self._decode) \
            if rows else None
        if held:
            owner.rows_held[(self._table, key)] = value
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if self._owner.held and self._owner.fresh:
            return self.get(key) is not None  # the row, kept for the rest of the group
        return bool(self._owner.ledger.query(
            f"SELECT 1 FROM {self._table} WHERE {self._key} = ?", (key,)))

    def __iter__(self) -> Iterator[str]:
        return iter([str(row[0]) for row in self._owner.ledger.query(
            f"SELECT {self._key} FROM {self._table} ORDER BY {self._key}")])

    def __len__(self) -> int:
        return int(self._owner.ledger.query(f"SELECT COUNT(*) FROM {self._table}")[0][0])

    def rows(self, where: str = "", params: Sequence[Any] = (), order: str = "") -> list[Any]:
        return [value for _, _, value in self.keyed_rows(where, params, order)]

    def keyed_rows(self, where: str = "", params: Sequence[Any] = (), order: str = ""
                   ) -> list[tuple[str, int, Any]]:
        """(key, updated_seq, decoded value) of the rows `where` selects, in `order`."""
        rows = self._owner.ledger.query(
            f"SELECT {self._key}, updated_seq, {self._column} FROM {self._table}"
            f"{' WHERE ' + where if where else ''}{' ORDER BY ' + order if order else ''}",
            params)
        return [(str(k), int(u), self._owner.decoded.get(str(k), int(u), text, self._decode))
                for k, u, text in rows]


def _live(query: ProposalQuery) -> bool:
    """True when `query` asks only about live proposals (no final state among its states)."""
    return query.states is not None and bool(query.states) and not query.states & TERMINAL


def _order(query: ProposalQuery) -> str:
    """The ORDER BY (and LIMIT) of a page. A page of live proposals sorts the live rows the
    state index found: walking the seq index instead (PostgreSQL's choice, its statistics
    expecting live rows spread evenly) would read the history back to the oldest live one."""
    key = "seq + 0" if _live(query) else "seq"
    order = f"{key} DESC" if query.newest_first else key
    return order if query.limit is None else f"{order} LIMIT {int(query.limit)}"


def _evidence_of_row(digest: str, text: str) -> TransferRecord | bool:
    """A stored proposal row as velocity evidence: its approved transfer, or False for a
    row that is none (kept so the cache remembers it: `_Decoded` does not keep None).

    Reads only what the evidence needs (the transfer's body, its approval time and state)
    and takes the digest from the row's key, checked when the row was written: no
    canonical re-hash of the document, which a cold window would pay for every approval."""
    data = json.loads(text)
    document = data["proposal"]
    approved_at = _parse(data["approved_at"])
    if document.get("action") != "transfer" or approved_at is None:
        return False
    body = proposal_module.body_from_document("transfer", document)
    if not isinstance(body, TransferBody):
        return False
    return TransferRecord(digest=digest, asset=body.asset, amount=body.amount,
                          approved_at=approved_at, state=data["state"])


class StoredProjection(Projection):
    """The workflow projection read from the read-model tables: what a replay of the whole
    ledger would hold, at the cost of the rows a question needs."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.decoded = _Decoded()
        # Each approved transfer's velocity evidence, built once per row version: a decision
        # reads the whole window's approvals, on every request.
        self.evidence = _Decoded(EVIDENCE_CACHE_MAX)
        attach(ledger)
        stored_vaults = _StoredRows(self, "rm_vaults", "vault", "state", vault_from_json)
        stored_proposals = _StoredRows(self, "rm_proposals", "digest", "status",
                                       status_from_json)
        super().__init__(vaults=stored_vaults, proposals=stored_proposals)  # type: ignore[arg-type]
        self._vault_rows, self._proposal_rows = stored_vaults, stored_proposals
        attached = ledger.attach(WorkflowModel())
        self._model = attached if isinstance(attached, WorkflowModel) else None
        # Held (`hold`): the caller holds the ledger's write transaction (a group commit),
        # so no one else appends; once caught up (`fresh`), the rows change only by this
        # process's own appends, and `rows_held` keeps each row read or written meanwhile
        # ((table, key) -> value, None for a row that is not there).
        self.held = False
        self.fresh = False
        self.rows_held: dict[tuple[str, str], Any] = {}
        self.size = self._stored_size()

    def _stored_size(self) -> int:
        rows = self.ledger.query("SELECT size FROM read_model_state WHERE name = ?",
                                 (WORKFLOW,))
        return int(rows[0][0]) if rows else 0

    # -- keeping up ----------------------------------------------------------------------
    def hold(self, held: bool) -> None:
        """Say that the caller holds (True) or no longer holds (False) the ledger's write
        transaction: the serialised group of `Ledger.group()`, which no other writer, in
        this process or another, can append during. While held, the first `catch_up`
        reads the sizes; later ones (and the rows read or written since) need no
        statement, as only this process's own appends change them (`apply_all`)."""
        self.held = held
        self.fresh = False
        self.rows_held.clear()

    def arm(self, armed: bool) -> None:
        """Around an append of this process while held and fresh: the workflow model may
        take the rows and sizes read in this transaction instead of reading them again."""
        if self._model is not None:
            self._model.known = (self.size, self.rows_held) \
                if armed and self.held and self.fresh else None

    def stale(self) -> None:
        """Someone appended past what this projection knows (a conflict): the next
        `catch_up` reads the sizes again, and the rows kept while held are dropped."""
        self.fresh = False
        self.rows_held.clear()

    def forget(self) -> None:
        """After a commit that failed: rows read inside it may never have been written
        (and their (key, updated_seq) may come back with other contents)."""
        self.decoded.clear()
        self.evidence.clear()
        self.fresh = False
        self.rows_held.clear()
        self.size = self._stored_size()

    def catch_up(self, ledger: Any) -> int:
        if self.held and self.fresh:
            return 0
        before = self.size
        stored = current(ledger)
        self.size = self._stored_size() if stored is None else stored
        self.fresh = self.held
        return self.size - before

    def apply(self, entry: Any) -> None:
        raise WorkflowError("the stored projection is written by the ledger's appends, "
                            "not applied to by hand")

    def apply_all(self, entries: Iterable[Any]) -> None:
        """After an append: the rows were written in its transaction; take the new size
        (beyond the append's end when another writer, another process, appended since)."""
        last = None
        for entry in entries:
            last = entry
        written = None if self._model is None else self._model.written
        if last is not None and written is not None and written[0] == last.seq + 1:
            # The rows this very append wrote, as stored (their updated_seq is its last
            # entry's): a later read of them needs no decoding.
            for key, value in (*written[1].items(), *written[2].items()):
                self.decoded.put(key, last.seq, value)
        else:
            written = None
        if self.held and self.fresh and written is not None:
            # Nobody else appends while the group is held: the model now ends where this
            # append ended, and its rows are the ones it just wrote (the others unchanged).
            self.size = written[0]
            self.rows_held.update({("rm_vaults", key): value
                                   for key, value in written[1].items()})
            self.rows_held.update({("rm_proposals", key): value
                                   for key, value in written[2].items()})
            return
        self.fresh = False
        self.rows_held.clear()
        self.size = self._stored_size()
        if last is not None and self.size < last.seq + 1:
            raise WorkflowError(f"the workflow read model is at {self.size} after an append "
                                f"that ended at {last.seq + 1}")

    # -- questions -----------------------------------------------------------------------
    def status(self, digest_hex: str) -> ProposalStatus:
        prefix = digest_hex.lower()
        if self.held and self.fresh and len(prefix) == 64 and \
                ("rm_proposals", prefix) in self.rows_held:
            held = self.rows_held[("rm_proposals", prefix)]
            if held is None:
                raise WorkflowError(f"unknown proposal {digest_hex!r}")
            return held  # type: ignore[no-any-return]
        matches: list[ProposalStatus] = []
        if len(prefix) >= 8 and all(c in "0123456789abcdef" for c in prefix):
            matches = self._proposal_rows.rows(
                "digest >= ? AND digest < ?", (prefix, prefix + "g"), "digest LIMIT 2")
        if len(matches) != 1:
            what = "ambiguous" if matches else "unknown"
            raise WorkflowError(f"{what} proposal {digest_hex!r}")
        if self.held and self.fresh:
            self.rows_held[("rm_proposals", matches[0].digest)] = matches[0]
        return matches[0]

    def select(self, vault: str | None = None, states: Iterable[str] | None = None
               ) -> list[ProposalStatus]:
        clauses, params = [], []
        if vault is not None:
            clauses.append("vault = ?")
            params.append(vault)
        if states is not None:
            wanted = sorted(set(states))
            if not wanted:
                return []
            clauses.append(f"state IN ({', '.join('?' * len(wanted))})")
            params += wanted
        return self._proposal_rows.rows(" AND ".join(clauses), params, "seq")

    def _where(self, query: ProposalQuery) -> tuple[str, list[Any]] | None:
        """The SQL condition of `query` and its parameters; None when it admits nothing.

        A question about live proposals only (states none of which is final: the open
        ones, those being signed or broadcast) is answered through the state index, so
        it costs the live proposals, however long the history. SQLite's planner, without
        statistics, would rather take the vault or action index (every proposal of a
        vault); a unary `+` keeps those columns out of index choice there (`page` keeps
        the seq index out of its ordering, for PostgreSQL's planner).
        """
        clauses: list[str] = []
        params: list[Any] = []
        live = _live(query)
        other = "+" if live and getattr(self.ledger, "dialect", "") == "sqlite" else ""
        for column, values in ((f"{other}vault", query.vaults), ("state", query.states)):
            if values is not None:
                if not values:
                    return None
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
                params += sorted(values)
        for clause, value in ((f"{other}action = ?", query.action),
                              ("seq > ?", query.after_seq), ("seq < ?", query.before_seq)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        return " AND ".join(clauses), params

    def page(self, query: ProposalQuery) -> list[ProposalStatus]:
        where = self._where(query)
        if where is None:
            return []
        return self._proposal_rows.rows(where[0], where[1], _order(query))

    def approved_transfers(self, vault: str, since: datetime, until: datetime
                           ) -> list[ProposalStatus]:
        return [s for s in self._proposal_rows.rows(
            "vault = ? AND action = 'transfer' AND approved_at_us > ? AND approved_at_us <= ?",
            (vault, _micros(since), _micros(until)), "seq")
            if isinstance(s.proposal.body, TransferBody)]

    def count(self, query: ProposalQuery) -> int:
        where = self._where(query)
        if where is None:
            return 0
        sql = "SELECT COUNT(*) FROM rm_proposals" + (f" WHERE {where[0]}" if where[0] else "")
        return int(self.ledger.query(sql, where[1])[0][0])

    def history(self, vault: str, now: datetime | None = None) -> History:
        state = self.vault(vault)
        window = velocity_window_seconds(state.policy)
        transfers: tuple[TransferRecord, ...] = ()
        if window and now is not None:
            transfers = self._evidence(
                "vault = ? AND action = 'transfer' AND approved_at_us > ?",
                (vault, _micros(now - timedelta(seconds=window))))
        elif now is None:
            transfers = self._evidence(
                "vault = ? AND action = 'transfer' AND approved_at_us IS NOT NULL", (vault,))
        # Only the window's approvals: a decision adds its own proposal's (WorkflowService
        # ._decide), so the open proposals of the whole history are not read for it.
        approved_at = {record.digest: record.approved_at for record in transfers}
        return History(transfers=transfers, destinations=state.destinations,
                       freeze=state.freeze, approved_at=approved_at)

    def _evidence(self, where: str, params: Sequence[Any]) -> tuple[TransferRecord, ...]:
        """The approved transfers `where` selects, by seq, as velocity evidence.

        A decision reads its whole window on every request, so each row's record is built
        once per row version (digest, updated_seq) and kept (bounded), and the status text
        is read only for the rows whose record is not kept yet: a request costs the
        window's keys, not its documents."""
        keys = [(str(digest), int(updated)) for digest, updated in self.ledger.query(
            f"SELECT digest, updated_seq FROM rm_proposals WHERE {where} ORDER BY seq",
            params)]
        missing = [digest for digest, updated in keys
                   if self.evidence.peek(digest, updated) is None]
        fetched: dict[str, Any] = {}
        for start in range(0, len(missing), EVIDENCE_CHUNK):
            chunk = missing[start:start + EVIDENCE_CHUNK]
            for digest, updated, text in self.ledger.query(
                    "SELECT digest, updated_seq, status FROM rm_proposals WHERE digest IN "
                    f"({', '.join('?' * len(chunk))})", chunk):
                # A row rewritten since the keys were read is taken as it is now.
                key = str(digest)
                fetched[key] = self.evidence.get(
                    key, int(updated), text, lambda row, key=key: _evidence_of_row(key, row))
        found = [fetched.get(digest) or self.evidence.peek(digest, updated)
                 for digest, updated in keys]
        return tuple(record for record in found if isinstance(record, TransferRecord))

    def snapshot(self) -> dict[str, Any]:
        replay = Projection()
        replay.size = self.size
        replay.vaults = dict(self._vault_rows.items())
        replay.proposals = {s.digest: s for s in self._proposal_rows.rows(order="digest")}
        return replay.snapshot()


# -- checking and rebuilding -----------------------------------------------------------------
def rebuild(ledger: Any) -> dict[str, int]:
    """Recreate the read models from the ledger; returns each model's size afterwards."""
    attach(ledger)
    ledger.rebuild_models()
    return _sizes(ledger)


def _kind_index_findings(ledger: Any) -> list[str]:
    """The kind index must name every entry's own kind, one row per entry, no more."""
    findings: list[str] = []
    rows: dict[int, str] = {}
    position, size = 0, ledger.size()
    for entry in ledger.entries():
        if position % KIND_CHUNK == 0:
            rows = {int(seq): str(kind) for seq, kind in ledger.query(
                "SELECT seq, kind FROM ledger_entries WHERE seq >= ? AND seq < ?",
                (position, position + KIND_CHUNK))}
        indexed = rows.get(entry.seq)
        if indexed != entry.kind:
            findings.append(f"kind index: entry {entry.seq} is {entry.kind} but the index "
                            f"says {indexed or 'nothing'}")
        position += 1
        if len(findings) >= FINDINGS_MAX:
            return findings
    extra = ledger.query("SELECT COUNT(*) FROM ledger_entries WHERE seq >= ?", (size,))
    if int(extra[0][0]):
        findings.append(f"kind index: {extra[0][0]} rows name entries past the ledger's "
                        f"size {size}")
    return findings


def _digest_index_findings(ledger: Any) -> list[str]:
    """`rm_digest_entries` must list exactly the entries naming a proposal, with it."""
    findings: list[str] = []
    expected: dict[int, str] = {}
    stored: dict[int, str] = {}
    position, size = 0, ledger.size()

    def compare(stop: int) -> None:
        for seq in sorted(set(expected) | set(stored)):
            if seq < stop and expected.get(seq) != stored.get(seq) and \
                    len(findings) < FINDINGS_MAX:
                findings.append(f"digest index: entry {seq} names "
                                f"{expected.get(seq) or 'no proposal'} but the index says "
                                f"{stored.get(seq) or 'nothing'}")
        expected.clear()
        stored.clear()

    for entry in ledger.entries():
        if position % KIND_CHUNK == 0:
            compare(position)
            stored.update({int(seq): str(digest) for digest, seq in ledger.query(
                "SELECT digest, seq FROM rm_digest_entries WHERE seq >= ? AND seq < ?",
                (position, position + KIND_CHUNK))})
        digest = digest_named(entry)
        if digest:
            expected[entry.seq] = digest
        position += 1
    compare(size)
    extra = ledger.query("SELECT COUNT(*) FROM rm_digest_entries WHERE seq >= ?", (size,))
    if int(extra[0][0]):
        findings.append(f"digest index: {extra[0][0]} rows name entries past the ledger's "
                        f"size {size}")
    return findings


def _first_difference(stored: Any, replayed: Any, path: str = "") -> str:
    if isinstance(stored, dict) and isinstance(replayed, dict):
        for key in sorted(set(stored) | set(replayed), key=str):
            if key not in stored:
                return f"{path}{key}: missing from the read model"
            if key not in replayed:
                return f"{path}{key}: in the read model but not in the replay"
            if stored[key] != replayed[key]:
                return _first_difference(stored[key], replayed[key], f"{path}{key}.")
    return f"{path.rstrip('.')}: read model {stored!r:.120} != replay {replayed!r:.120}"


def check(ledger: Any) -> list[str]:
    """Findings where the read models or the kind index differ from a full replay of the
    ledger (empty: they are exactly the replay's state). Brings the models up to date
    first, so entries appended without them are not reported as differences."""
    current(ledger)
    findings = _kind_index_findings(ledger)
    replay = Projection()
    replay.catch_up(ledger)
    stored = StoredProjection(ledger).snapshot()
    expected = replay.snapshot()
    if stored != expected:
        for part in ("size", "vaults", "proposals"):
            if stored[part] != expected[part]:
                findings.append(f"workflow read model: "
                                f"{_first_difference({part: stored[part]}, {part: expected[part]})}")
    findings += _column_findings(ledger)
    findings += _digest_index_findings(ledger)
    replayed = replay_holdings(ledger.entries(kinds=HOLDING_KINDS))
    held = holdings(ledger, history_points=HISTORY_CHECK_MAX)
    if held != replayed:
        mine = {(h.vault, h.asset): h for h in held}
        theirs = {(h.vault, h.asset): h for h in replayed}
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                findings.append(f"holdings read model: {key[0]} {key[1]} is "
                                f"{_holding_words(mine.get(key))} but the replay gives "
                                f"{_holding_words(theirs.get(key))}")
    return findings


def _column_findings(ledger: Any) -> list[str]:
    """The indexed columns of each proposal row must say what its status says: queries
    (open proposals, the velocity window) select by them."""
    findings = []
    for digest, vault, action, state, seq, approved, text in ledger.query(
            "SELECT digest, vault, action, state, seq, approved_at_us, status "
            "FROM rm_proposals ORDER BY digest"):
        status = status_from_json(text)
        expected = (status.digest, status.proposal.vault, status.proposal.action,
                    status.state, status.seq, _micros(status.approved_at))
        found = (digest, vault, action, state, int(seq),
                 None if approved is None else int(approved))
        if found != expected:
            findings.append(f"workflow read model: the columns of proposal {digest} say "
                            f"{found[1:]} but its status says {expected[1:]}")
        if len(findings) >= FINDINGS_MAX:
            break
    return findings


def _holding_words(row: HoldingRow | None) -> str:
    if row is None:
        return "absent"
    return f"{row.balance} after {row.entries} entries ({len(row.history)} points)"
