"""What the API and dashboard show about the reserve, computed from the ledger alone.

The vault and workflow routes and the dashboard panels share these read models: the
workflow projection (one per service, behind a lock because requests run in threads),
holdings with their history from the chain layers' ledger entries, the Bitcoin vault
configurations (descriptors, next receive address) and the reconciliation entries, with
amounts, times and decisions worded by `reserve.present`. Nothing here calls a node: what
the ledger knows is enough.

Writes go through `act`, which hands the request's `api.request` entry to the workflow
action as its `prelude`: the service appends it first in the action's own batch, so the
request and its domain entries land in one commit.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from reserve import present
from reserve.api import entry_words
from reserve.api.auth import Principal, Role
from reserve.config import PROJECT_ROOT
from reserve.errors import ConfigError, EventError, LedgerError
from reserve.events import decode
from reserve.events.access import ApiRequest
from reserve.events.chain_btc import BtcConfirmed, BtcDeposit
from reserve.events.chain_evm import EvmConfirmed
from reserve.events.custody import EvmVaultRegistered, VaultRegistered
from reserve.policy.evaluate import Decision
from reserve.policy.model import ApprovalRule, Policy
from reserve.present import format_time
from reserve.proposals.proposal import TransferBody
from reserve.proposals.state import OPEN, PROPOSED
from reserve.transfers import readmodel
from reserve.transfers.next_step import next_step, voters_left
from reserve.transfers.projection import ProposalQuery, ProposalStatus
from reserve.transfers.readmodel import StoredProjection
from reserve.transfers.service import Item, WorkflowService

T = TypeVar("T")
BITCOIN_VAULTS_DIR = PROJECT_ROOT / "config" / "vaults"
# The latest points of each holding's history that the API and dashboard show (a chart of
# the recent past; the whole history is in the ledger and in `rm_holding_points`).
HISTORY_POINTS = 500
_CREATE = threading.Lock()
# A listing of proposals or transfers is paged: its cost is its page, not the history.
PAGE_DEFAULT = 100
PAGE_MAX = 500
# The overview's pending panel: the newest open proposals with their decisions; the others
# are a page at a time on /dashboard/proposals (a page costs its rows, not the history).
PENDING_SHOWN = 20
PENDING_PAGE = 50


# -- the workflow, shared by the requests of one service ---------------------------------
# The most requests one commit carries (a group waits for no one: it takes what queued
# while the previous commit was in flight).
GROUP_REQUESTS_MAX = 64


class _Queued:
    """One request's action waiting for a group commit, and what became of it: a thread
    waits on `done`; a coroutine awaits `future`, resolved on its own loop."""

    def __init__(self, run: Callable[[], Any],
                 future: asyncio.Future[None] | None = None) -> None:
        self.run = run
        self.future = future
        self.done: threading.Event | None = threading.Event() if future is None else None
        self.result: Any = None
        self.error: BaseException | None = None

    def is_done(self) -> bool:
        return self.done is not None and self.done.is_set()


def _finish(group: Sequence[_Queued]) -> None:
    """Wake whoever waits on `group` (by the thread that ran it, once): each thread by its
    event, the coroutines with one call into each of their loops."""
    loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for queued in group:
        if queued.done is not None:
            queued.done.set()
        elif queued.future is not None:
            loops.setdefault(queued.future.get_loop(), []).append(queued.future)
    for loop, futures in loops.items():
        loop.call_soon_threadsafe(_settle, futures)


def _settle(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():  # a request cancelled meanwhile has no one to tell
            future.set_result(None)


class WorkflowAccess:
    """One WorkflowService per API service; every use holds the lock (the projection
    is a mutable cache that one request must not read while another applies entries).

    Writes are group-committed: a request queues its action; whichever takes the lock
    next (a route's thread in `act`, or the committer thread that `submit` wakes for the
    routes on the event loop) runs every queued action, each append a savepoint of one
    transaction (`Ledger.group`), and commits once (one fsync for all). Each request is
    answered only after that commit; a refused action writes nothing and refuses only its
    own request.
    """

    def __init__(self, ledger: Any, clock: Callable[[], datetime],
                 freeze_mirror: Any = None) -> None:
        self.ledger = ledger
        self.lock = threading.RLock()
        self.workflow = WorkflowService(ledger, clock=clock, freeze_mirror=freeze_mirror)
        self._queue: list[_Queued] = []
        self._queue_lock = threading.Lock()
        self._draining = False  # whether the committer thread is taking groups
        self._committer: ThreadPoolExecutor | None = None
        self.groups = 0  # commits made for queued actions (for tests and benchmarks)

    @contextmanager
    def reading(self) -> Iterator[WorkflowService]:
        with self.lock:
            self.workflow.sync()
            yield self.workflow

    def act(self, recorder: Any, action: Callable[[WorkflowService, Sequence[Item]], T],
            summary: dict[str, Any] | Callable[[WorkflowService], dict[str, Any]] | None
            = None) -> T:
        """Run `action(workflow, prelude)`, where the prelude is the request's api.request
        entry: the action must pass it on as its `prelude=` (one batch with its own).

        `summary` (the entry's) may be a function of the workflow, called in the group
        just before the action (it may raise to refuse the request: nothing is written).
        Whether the entry was written is seen from the entries the workflow appended (or,
        failing that, read back): an action that dropped it leaves the request
        unrecorded, so the app's recording net logs that and records it after all.

        For a route running in a thread; `submit` is the same for a coroutine.
        """
        queued = _Queued(self._runner(recorder, action, summary))
        with self._queue_lock:
            self._queue.append(queued)
        while not queued.is_done():
            with self.lock:  # the previous group has answered everyone it took
                if not queued.is_done():
                    self._commit_group()
        return self._outcome(queued, recorder)  # type: ignore[no-any-return]

    async def submit(self, recorder: Any,
                     action: Callable[[WorkflowService, Sequence[Item]], T],
                     summary: dict[str, Any] | Callable[[WorkflowService], dict[str, Any]]
                     | None = None) -> T:
        """`act` for a route on the event loop: the request waits without a thread of its
        own. The committer (one thread of this access) takes the queued actions group by
        group while any are queued, and wakes each request after its group's commit; a
        thread in `act` may take a group too, whichever holds the lock. So requests
        arriving during a commit are parsed on the loop meanwhile and share the next one,
        and the thread pool's size does not bound how many share it."""
        queued = _Queued(self._runner(recorder, action, summary),
                         asyncio.get_running_loop().create_future())
        with self._queue_lock:
            self._queue.append(queued)
            start, self._draining = not self._draining, True
            if start and self._committer is None:
                self._committer = ThreadPoolExecutor(1, thread_name_prefix="group-commit")
            committer = self._committer
        if start and committer is not None:
            try:
                committer.submit(self._drain)
            except RuntimeError:  # shut down meanwhile (the app stopping): drain anyway
                asyncio.get_running_loop().run_in_executor(None, self._drain)
        assert queued.future is not None
        await queued.future
        return self._outcome(queued, recorder)  # type: ignore[no-any-return]

    def _drain(self) -> None:
        """Commit groups until the queue is empty (the committer thread). Should anything
        escape a group (it answers its own requests first), the next `submit` starts
        another drain instead of queueing behind one that is gone."""
        try:
            while True:
                with self._queue_lock:
                    if not self._queue:
                        self._draining = False
                        return
                with self.lock:
                    self._commit_group()
        except BaseException:
            with self._queue_lock:
                self._draining = False
            raise

    def close(self) -> None:
        """Let the committer thread end once the queue is empty (the app's shutdown); a
        later `submit` (the app started again) makes a new one."""
        with self._queue_lock:
            committer, self._committer = self._committer, None
        if committer is not None:
            committer.shutdown(wait=True)

    @staticmethod
    def _outcome(queued: _Queued, recorder: Any) -> Any:
        """The action's result (or its error raised), the recorded flag on the request."""
        if queued.error is not None:
            raise queued.error
        result, recorder.request.state.recorded = queued.result
        return result

    def _runner(self, recorder: Any, action: Callable[[WorkflowService, Sequence[Item]], T],
                summary: dict[str, Any] | Callable[[WorkflowService], dict[str, Any]] | None
                ) -> Callable[[], tuple[T, bool]]:
        """The queued part of a request: its entry, its action and whether it recorded."""
        ready: Item | None = None if callable(summary) else recorder.entry(summary)

        def run() -> tuple[T, bool]:
            workflow = self.workflow
            start = workflow.projection.size  # at most the ledger's size: no statement
            request: Item = ready if ready is not None else recorder.entry(
                summary(workflow) if callable(summary) else summary)
            request_id = request[2]["request_id"]
            workflow.appended = []
            try:
                result = action(workflow, (request,))
                appended = workflow.appended
            finally:
                workflow.appended = None
            # The entries the workflow just appended carry the payloads it was given: the
            # request's id is read from them as is (decoding the event costs more than it).
            return result, any(
                entry.kind == request[0] and entry.payload.get("request_id") == request_id
                for entry in appended) or any(
                ApiRequest.of(entry).request_id == request_id
                for entry in self.ledger.entries(start, kinds=(request[0],)))

        return run

    def _commit_group(self) -> None:
        with self._queue_lock:
            group = self._queue[:GROUP_REQUESTS_MAX]
            del self._queue[:GROUP_REQUESTS_MAX]
        if not group:  # another thread took them
            return
        projection = self.workflow.projection
        stored = projection if isinstance(projection, StoredProjection) else None
        held = stored is not None and hasattr(self.ledger, "group")
        try:
            with group_commit(self.ledger):
                if held and stored is not None:  # no one else appends until it ends
                    stored.hold(True)
                for queued in group:
                    try:
                        queued.result = queued.run()
                    except Exception as error:  # refused: its appends rolled back alone
                        queued.error = error
            self.groups += 1
        except Exception as error:  # the commit failed: none of the group is written
            self.workflow.forget_cached_state()
            for queued in group:
                if queued.error is None:
                    queued.error = error
                    queued.result = None
        finally:
            if held and stored is not None:
                stored.hold(False)
            for queued in group:
                if queued.error is None and queued.result is None:
                    queued.error = LedgerError("the request was not run")  # BaseException
            _finish(group)


@contextmanager
def group_commit(ledger: Any) -> Iterator[None]:
    """`ledger.group()` where the ledger has one (a store); each append on its own else."""
    group = getattr(ledger, "group", None)
    if group is None:
        yield
        return
    with group():
        yield


def workflow_access(service: Any) -> WorkflowAccess:
    with _CREATE:
        access = getattr(service, "_workflow_access", None)
        if access is None:
            # Freezes and unfreezes recorded here reach the EVM vaults' guards too.
            mirror = getattr(service.chains, "freeze_mirror", None)
            access = WorkflowAccess(service.ledger, service.clock,
                                    mirror() if callable(mirror) else None)
            setattr(service, "_workflow_access", access)  # noqa: B010 - cache on the service
        return access


def proposal_query(principal: Principal, vault: str | None = None,
                   **fields: Any) -> ProposalQuery:
    """Proposals `principal` may see (of `vault`, if named): a custodian only its own
    vaults' (another vault reads as an unknown one: nothing); `fields` as ProposalQuery."""
    vaults = None if vault is None else frozenset({vault})
    if principal.role is Role.CUSTODIAN:
        vaults = principal.vaults if vaults is None else vaults & principal.vaults
    return ProposalQuery(vaults=vaults, **fields)


def paged(found: list[ProposalStatus], limit: int) -> tuple[list[ProposalStatus],
                                                            dict[str, int] | None]:
    """A page asked for with `limit + 1`: the first `limit` and the cursor of the next."""
    shown = found[:limit]
    return shown, ({"after": shown[-1].seq} if len(found) > limit else None)


# -- holdings --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Holding:
    vault: str
    asset: str
    balance: int
    history: tuple[tuple[str, int], ...]  # (ledger time, balance after), the latest ones
    tokens: Mapping[str, present.Unit] = field(default_factory=dict)  # see token_units
    entries: int = 0  # how many ledger entries changed it

    @property
    def unit(self) -> present.Unit:
        return present.unit_of(self.asset, self.tokens)

    def to_json(self) -> dict[str, Any]:
        return {"vault": self.vault, "asset": self.asset, "symbol": self.unit.symbol,
                "unit": self.unit.base, "balance": str(self.balance),
                "balance_text": present.format_amount(self.balance, self.asset, self.tokens),
                "history": [{"time": t, "balance": str(b)} for t, b in self.history]}


def token_units(ledger: Any) -> dict[str, present.Unit]:
    """Each registered EVM vault's token, by contract address and by symbol, in its own
    units (symbol and decimals recorded at deployment); older registrations are skipped."""
    found: dict[str, present.Unit] = {}
    for entry in ledger.entries(kinds=(VaultRegistered.KIND,)):
        try:
            registered = VaultRegistered.of(entry)
        except EventError:
            continue
        if not isinstance(registered, EvmVaultRegistered) or \
                not isinstance(registered.token_symbol, str) or \
                not isinstance(registered.token_decimals, int):
            continue
        unit = present.token_unit(registered.token_symbol, registered.token_decimals)
        found[registered.token] = found[registered.token_symbol] = unit
    return found


def holdings(ledger: Any, principal: Principal | None = None, *,
             history_points: int = HISTORY_POINTS) -> list[Holding]:
    """Every vault's balance per asset with its latest history, from the holdings read
    model (one row per vault and asset, not the ledger's chain entries)."""
    found = [row for row in readmodel.holdings(ledger, history_points=history_points)
             if principal is None or principal.may_see_vault(row.vault)]
    tokens = token_units(ledger) if found else {}
    return [Holding(row.vault, row.asset, row.balance, row.history, tokens, row.entries)
            for row in found]


# -- Bitcoin vault configurations ------------------------------------------------------------
# directory -> (what its files were when read: names, mtimes, sizes; the vaults read then)
_VAULT_FILES: dict[Path, tuple[tuple[tuple[str, int, int], ...], dict[str, Any]]] = {}
_VAULT_FILES_LOCK = threading.Lock()


def _files_signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    # os.scandir and one stat a file (checked on every /api/vaults request: pathlib's glob
    # cost more than the rest of a kept answer).
    found = []
    try:
        with os.scandir(directory) as listing:
            names = sorted(entry.name for entry in listing if entry.name.endswith(".toml"))
    except OSError:  # no such folder, or not a folder
        return ()
    for name in names:
        try:
            stat = os.stat(os.path.join(directory, name))
        except OSError:
            continue
        found.append((name, stat.st_mtime_ns, stat.st_size))
    return tuple(found)


def vault_files_signature(directory: Path = BITCOIN_VAULTS_DIR
                          ) -> tuple[tuple[str, int, int], ...]:
    """The Bitcoin vault files of `directory` as they are now: (name, mtime, size) each,
    what `bitcoin_vaults` reads them again on (and what an answer built on them is kept by)."""
    return _files_signature(directory)


def bitcoin_vaults(directory: Path = BITCOIN_VAULTS_DIR) -> dict[str, Any]:
    """vault id -> Vault for each `*.toml` in `directory` (unreadable files are skipped).

    Parsed once and kept while the folder's files keep their names, sizes and modification
    times (checked on every call: a changed, added or removed file is read again); parsing
    and checking the keys of every vault cost more than the rest of `GET /api/vaults`.
    """
    from wallets.bitcoin.vault import load_vault

    signature = _files_signature(directory)
    with _VAULT_FILES_LOCK:
        cached = _VAULT_FILES.get(directory)
    if cached is not None and cached[0] == signature:
        return dict(cached[1])
    found: dict[str, Any] = {}
    for name, _, _ in signature:
        try:
            vault = load_vault(directory / name)
        except ConfigError:
            continue
        found[vault.vault_id] = vault
    with _VAULT_FILES_LOCK:
        if len(_VAULT_FILES) >= 16:  # a service reads one folder; tests use a few
            _VAULT_FILES.clear()
        _VAULT_FILES[directory] = (signature, found)
    return dict(found)


def vault_descriptor(vault: Any) -> str:
    """`vault.descriptor()` (its checksum costs a millisecond), memoised per Vault value."""
    return _descriptor(vault)


@lru_cache(maxsize=256)
def _descriptor(vault: Any) -> str:
    return str(vault.descriptor())


def _by_identity(compute: Callable[[Any], T]) -> Callable[[Any], T]:
    """`compute` memoised on its argument's identity, for immutable values (frozen
    policies) that are costly to hash; the value is held, so its id is not reused."""
    memo: dict[int, tuple[Any, T]] = {}
    lock = threading.Lock()

    def memoised(value: Any) -> T:
        with lock:
            hit = memo.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        result = compute(value)
        with lock:
            if len(memo) >= 256:
                memo.clear()
            memo[id(value)] = (value, result)
        return result

    return memoised


def _policy_sha256(policy: Policy) -> str:
    from reserve.policy import loader

    return loader.policy_sha256(policy)


# A vault's policy in force: its content hash and its sentences, the same for every
# request until a new version replaces the (frozen) Policy object.
policy_sha256 = _by_identity(_policy_sha256)
policy_words = _by_identity(lambda policy: tuple(present.policy_words(policy)))


def next_receive_address(vault: Any, ledger: Any) -> tuple[str, int]:
    """The first receive address no recorded deposit has paid (derived locally, no node)."""
    from wallets.bitcoin.vault import RECEIVE

    used: set[str] = set()
    for entry in ledger.entries(kinds=("btc.deposit",)):
        deposit = BtcDeposit.of(entry)
        if deposit.vault == vault.vault_id:
            used.update(str(o.get("address")) for o in deposit.outputs if isinstance(o, dict))
    for index in range(len(used) + 1):  # at most len(used) addresses can be taken
        address = vault.address(RECEIVE, index)
        if address not in used:
            return address, index
    raise AssertionError("unreachable: more used addresses than deposits")


def evm_registrations(ledger: Any) -> dict[str, EvmVaultRegistered]:
    """vault id -> the latest registration of an EVM vault (its Safe)."""
    found: dict[str, EvmVaultRegistered] = {}
    for entry in ledger.entries(kinds=("vault.registered",)):
        event = VaultRegistered.of(entry)
        if isinstance(event, EvmVaultRegistered):
            found[event.vault] = event
    return found


# -- policies and decisions in plain words ---------------------------------------------------
def destination_labels(workflow: WorkflowService, vault: str) -> dict[str, str]:
    """address -> label of a vault's allowlisted destinations (policy and added ones)."""
    state = workflow.projection.vaults.get(vault)
    if state is None:
        return {}
    labels = {d.address: d.label for d in state.policy.destinations}
    labels.update({d.address: d.label for d in state.destinations})
    return labels


def proposal_briefs(workflow: WorkflowService, principal: Principal, digests: Iterable[str]
                    ) -> dict[str, entry_words.ProposalBrief]:
    """digest -> what the ledger explorer's sentences say of it, for the proposals known
    and of vaults the principal may see (an entry may name a digest but not its vault)."""
    found: dict[str, entry_words.ProposalBrief] = {}
    for digest in digests:
        status = workflow.projection.proposals.get(digest)
        if status is not None and principal.may_see_vault(status.proposal.vault):
            labels = destination_labels(workflow, status.proposal.vault)
            found[digest] = entry_words.brief(status.proposal, labels)
    return found


def decision_json(decision: Decision) -> dict[str, Any]:
    return {"explain": decision.explain(), **present.decision_fields(decision),
            "may_approve": decision.may_approve}


def still_to_act(policy: Policy, status: ProposalStatus) -> list[str]:
    """Custodians who may still vote on an open proposal (not the proposer, not voted)."""
    return list(voters_left(policy, status)) if status.state == PROPOSED else []


def proposal_summary(status: ProposalStatus) -> dict[str, Any]:
    proposal = status.proposal
    body = proposal.body
    data: dict[str, Any] = {
        "digest": status.digest, "vault": proposal.vault, "action": proposal.action,
        "state": status.state, "open": status.state in OPEN, "proposer": proposal.proposer,
        "purpose": proposal.purpose, "reference": proposal.reference,
        "policy_version": proposal.policy_version,
        "created_at": format_time(proposal.created_at),
        "expires_at": format_time(proposal.expires_at), "seq": status.seq,
        "votes": [{"custodian": v.custodian, "decision": v.decision,
                   "recorded_at": format_time(v.recorded_at) if v.recorded_at else None}
                  for v in status.votes],
        "txid": status.txid or None}
    if isinstance(body, TransferBody):
        data.update({"asset": body.asset, "amount": str(body.amount),
                     "amount_text": present.format_amount(body.amount, body.asset),
                     "fee_max": str(body.fee_max),
                     "outputs": [{"destination": o.destination, "amount": str(o.amount),
                                  "amount_text": present.format_amount(o.amount, body.asset)}
                                 for o in body.outputs]})
    return data


def confirmations(status: ProposalStatus) -> int:
    """The deepest confirmation count the chain layers recorded for this transfer."""
    depth = 0
    for step in status.chain_steps:
        if step.kind in ("btc.confirmed", "evm.confirmed"):
            event = decode(step.kind, step.payload)
            if isinstance(event, BtcConfirmed | EvmConfirmed):
                depth = max(depth, event.confirmations)
    changes = [c for c in status.changes if c.state == "confirmed"]
    if changes and depth == 0:
        depth = 1  # confirmed by the workflow without a recorded depth: at least one
    return depth


def approval_progress(policy: Policy, status: ProposalStatus, decision: Decision) -> str:
    """'2 of 3 approvals from 2 of 3 institutions' under the rule that governs it."""
    body = status.proposal.body
    rule: ApprovalRule | None = None
    if isinstance(body, TransferBody):
        rules = policy.asset_rules(body.asset)
        tier = rules.tier_for(body.amount) if rules else None
        rule = tier.rule if tier else None
    else:
        rule = getattr(policy.governance, decision.rule_name, None)
    if rule is None:
        return f"{len(decision.approvers)} approvals (no rule applies)"
    rejections = f", {len(decision.rejecters)} rejected" if decision.rejecters else ""
    return (f"{len(decision.approvers)} of {rule.approvals_min} approvals from "
            f"{len(decision.institutions)} of {rule.institutions_min} institutions"
            f"{rejections}")


def open_counts(workflow: WorkflowService, principal: Principal) -> dict[str, int]:
    """How many open proposals the principal may see, per open state: exact, counted by
    the read model's state index (the cost of the open proposals, not of the history)."""
    return {state: workflow.count(proposal_query(principal, states=frozenset({state})))
            for state in sorted(OPEN)}


def open_page(workflow: WorkflowService, principal: Principal, *,
              before_seq: int | None = None, limit: int | None = None
              ) -> tuple[list[ProposalStatus], int | None]:
    """The newest `limit` (default PENDING_SHOWN) open proposals the principal may see
    (before `before_seq`, when given) and the cursor of the next older page (None on the
    last page).

    Requires 1 <= limit <= PAGE_MAX."""
    limit = PENDING_SHOWN if limit is None else limit
    if not 1 <= limit <= PAGE_MAX:
        raise AssertionError(f"page limit {limit} outside 1..{PAGE_MAX}")
    found = workflow.page(proposal_query(principal, states=OPEN, before_seq=before_seq,
                                         newest_first=True, limit=limit + 1))
    shown = found[:limit]
    return shown, (shown[-1].seq if len(found) > limit else None)


def pending_rows(workflow: WorkflowService, statuses: Sequence[ProposalStatus],
                 now: datetime) -> list[dict[str, Any]]:
    """Open proposals (one page of them) with progress, delay and who must act: each
    policy decision at `now`, each vault's velocity window read once for the page."""
    policies: dict[str, Policy] = {}
    rows = []
    for status, decision in zip(statuses, workflow.decisions(statuses, now), strict=True):
        vault = status.proposal.vault
        if vault not in policies:
            policies[vault] = workflow.projection.vault(vault).policy
        policy = policies[vault]
        rows.append({**proposal_summary(status),
                     "progress": approval_progress(policy, status, decision),
                     "remaining_delay": present.remaining_delay(decision, now),
                     "still_to_act": still_to_act(policy, status),
                     "next": next_step(status, policy, decision, now).to_json(),
                     "explain": decision.explain()})
    return rows
