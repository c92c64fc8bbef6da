"""The busiest read routes, answered on the event loop from answers kept by exactly what
determines them.

`GET /api/vaults`, a page of `GET /api/ledger/entries` and `GET /api/proposals/{digest}`
each cost several statements and a few hundred microseconds of Python over the ledger and
its read models, on every request, for the same answer until the ledger moves. Here a
request is authenticated and reads the ledger's head (its size and the hash of its last
entry: the hash chain commits to every entry before it) together, without a thread (on
PostgreSQL in one statement, one non-blocking round trip awaited on the event loop; on
SQLite two reads of local pages), and looks its answer up by the head plus
whatever else the answer depends on:

- what the caller may see (`visibility`: every vault, or a custodian's own);
- the route's parameters;
- for the vaults, the Bitcoin vault files (their names, sizes and modification times).

Everything else the answers show is a function of the ledger at that head: the read
models are written in the same transaction as the entries they follow and equal a replay
of them. An answer is kept only when the head read again after it was computed is still
the head it was looked up by (no entry was committed in between, by this process or any
other), so a kept answer was computed on exactly the ledger its key names; the next
request after a commit reads a new head and computes afresh. Authentication is never
kept: the token and its user are read on every request.

A proposal's decision depends on the time too (delays, expiry, the velocity window), so
what is kept for it is the time-independent part of the answer and the decision's inputs
(the proposal, its vault's policy, the approvals of the velocity window at the time they
were read, the licence register); each request decides afresh at its own time, through
the service's own rule (`reserve.transfers.service.decide`), on the window's approvals
that are still inside it then. The window only narrows as time advances; a clock that
went back reads the inputs again.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response, status

from reserve.api.auth import Principal, Role
from reserve.api.deps import (
    Service,
    _credentials,
    check_token,
    check_token_at_head,
    check_token_at_head_async,
    client_address,
    head_on_loop,
    unauthorized,
)
from reserve.policy.evaluate import History
from reserve.transfers.projection import velocity_window_seconds

ANSWERS_MAX = 1024  # kept answers, least recently used forgotten first
ANSWER_BYTES_MAX = 32 * 1024 * 1024  # and at most this many bytes of encoded answers
JSON = "application/json"


class AnswerCache:
    """A bounded, thread-safe map from a key (which includes the ledger head) to an answer."""

    def __init__(self, entries_max: int = ANSWERS_MAX,
                 bytes_max: int = ANSWER_BYTES_MAX) -> None:
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._entries_max = entries_max
        self._bytes_max = bytes_max
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        if size > self._bytes_max // 4:
            return  # one answer may not crowd out the others
        with self._lock:
            previous = self._items.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > self._entries_max or self._bytes > self._bytes_max:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def answer_cache(service: Service) -> AnswerCache:
    """The service's answer cache (one per service, made on first use)."""
    cache: AnswerCache | None = getattr(service, "_answers", None)
    if cache is None:
        with _CREATE:
            cache = getattr(service, "_answers", None)
            if cache is None:
                cache = AnswerCache()
                setattr(service, "_answers", cache)  # noqa: B010 - kept on the service
    return cache


_CREATE = threading.Lock()


def visibility(principal: Principal) -> frozenset[str] | None:
    """What decides which vaults' data the principal sees: None for every vault (every
    role but custodian), else the custodian's vaults."""
    return principal.vaults if principal.role is Role.CUSTODIAN else None


@dataclass(frozen=True)
class Reading:
    """One authenticated read: the service, the caller and the ledger head it was read at."""

    service: Service
    principal: Principal
    head: tuple[int, bytes]

    # On the event loop only kept answers are served: computing one raises NotKept, and
    # the request goes to the thread pool.
    on_loop: bool = False

    def kept(self, key: Hashable, compute: Callable[[], tuple[Any, int]],
             unchanged: Callable[[], bool] | None = None) -> Any:
        """The value kept for (`key`, this head), or `compute()`'s (value, size), kept only
        if the ledger's head is still this one after it was computed (and `unchanged()`
        says the rest of the key still holds)."""
        cache = answer_cache(self.service)
        full = (key, self.head)
        found = cache.get(full)
        if found is not None:
            return found
        if self.on_loop:
            raise NotKept
        value, size = compute()
        if self.service.ledger.head() == self.head and (unchanged is None or unchanged()):
            cache.put(full, value, size)
        return value

    def encoded(self, key: Hashable, compute: Callable[[], dict[str, Any]],
                unchanged: Callable[[], bool] | None = None) -> Response:
        """A JSON answer kept as its encoded bytes."""
        def encode() -> tuple[bytes, int]:
            body = encode_json(compute())
            return body, len(body)

        return Response(self.kept(key, encode, unchanged), media_type=JSON)


_PLAIN_JSON = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | \
    orjson.OPT_PASSTHROUGH_SUBCLASS


def encode_json(data: Any) -> bytes:
    """`data` as JSON bytes: orjson for plain JSON values, FastAPI's encoder first for
    anything else (datetimes, dataclasses, enums, integers past 64 bits), as a route that
    returned `data` would have answered."""
    try:
        return orjson.dumps(data, option=_PLAIN_JSON)
    except (TypeError, orjson.JSONEncodeError):
        from fastapi.encoders import jsonable_encoder

        return json.dumps(jsonable_encoder(data), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")


class NotKept(Exception):
    """Raised on the event loop where an answer would have to be computed."""


def _principal(service: Service, address: str, token: str,
               allowed: frozenset[Role]) -> Principal:
    principal = check_token(service, address, token)
    _allowed(principal, allowed)
    return principal


def _allowed(principal: Principal, allowed: frozenset[Role]) -> None:
    if principal.role not in allowed:
        names = ", ".join(sorted(role.value for role in allowed))
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"role {principal.role.value} may not do this "
                                   f"(allowed: {names})")


def _on_loop(service: Service) -> bool:
    """Whether kept answers are served on the event loop: on SQLite, where the token and
    the head are two indexed reads of local pages (no round trip) and a busy ledger is
    not waited for (`Ledger.head_now`)."""
    return getattr(service.ledger, "dialect", "") == "sqlite" and \
        hasattr(service.ledger, "head_now")


async def read(request: Request, allowed: frozenset[Role],
               build: Callable[[Reading], Response]) -> Any:
    """Authenticate the request (401, 429, 403 as `deps.require`), read the ledger head and
    run `build` on it. A kept answer is served on the event loop: on SQLite after two
    indexed reads of local pages, on PostgreSQL after one non-blocking round trip on the
    account store's own connections (the token row and the head in one statement, awaited
    on the loop); the thread pool computes the others (on SQLite it also reads the head
    when the ledger is busy). Without such a store, all of it runs in one hop to the
    thread pool. (Typed Any: the routes keep their declared `dict[str, Any]` answer in the
    schema; FastAPI sends a Response as is.)"""
    from starlette.concurrency import run_in_threadpool

    token = _credentials(request)
    if token is None:
        raise unauthorized("authentication required: send Authorization: Bearer <token>")
    service: Service = request.app.state.service
    address = client_address(request)
    if _on_loop(service):
        principal = _principal(service, address, token, allowed)
        request.state.principal = principal
        head = service.ledger.head_now()
        if head is not None:
            return await _on_loop_or_computed(build, Reading(service, principal, head))

        def later() -> Response:
            return build(Reading(service, principal, service.ledger.head()))

        return await run_in_threadpool(later)

    if head_on_loop(service):
        principal, head = await check_token_at_head_async(service, address, token)
        _allowed(principal, allowed)
        request.state.principal = principal
        return await _on_loop_or_computed(build, Reading(service, principal, head))

    def run() -> Response:
        principal, head = _principal_at_head(service, address, token, allowed)
        request.state.principal = principal
        return build(Reading(service, principal, head))

    return await run_in_threadpool(run)


async def _on_loop_or_computed(build: Callable[[Reading], Response],
                               reading: Reading) -> Response:
    """`build` on the loop, serving only a kept answer; one that must be computed is
    computed in the thread pool."""
    from starlette.concurrency import run_in_threadpool

    try:
        return build(replace(reading, on_loop=True))
    except NotKept:
        return await run_in_threadpool(build, replace(reading, on_loop=False))


def _principal_at_head(service: Service, address: str, token: str,
                       allowed: frozenset[Role]) -> tuple[Principal, tuple[int, bytes]]:
    """The principal and the ledger head: in one statement (one round trip, on one of
    the account store's own connections rather than the ledger's single one) when the
    store is on the ledger's database, else one statement each."""
    shares = getattr(service.accounts, "shares_database", None)
    if shares is None or not shares(str(getattr(service.ledger, "url", ""))):
        return _principal(service, address, token, allowed), service.ledger.head()
    principal, head = check_token_at_head(service, address, token)
    _allowed(principal, allowed)
    return principal, head


# -- a proposal's decision from kept inputs ---------------------------------------------------
@dataclass(frozen=True)
class DecisionInputs:
    """What deciding about a proposal needs, read at `read_at` on one ledger head."""

    status: Any  # ProposalStatus
    policy: Any  # the vault's Policy in force
    history: History  # the vault's history with the velocity window's approvals at read_at
    licences: Any  # the licence register
    read_at: datetime

    def history_at(self, now: datetime) -> History:
        """The history at `now` (>= read_at): the window's approvals still inside it."""
        window = velocity_window_seconds(self.policy)
        if not window:
            return replace(self.history, transfers=(), approved_at={})
        since = now - timedelta(seconds=window)
        if all(record.approved_at > since for record in self.history.transfers):
            return self.history
        transfers = tuple(record for record in self.history.transfers
                          if record.approved_at > since)
        return replace(self.history, transfers=transfers,
                       approved_at={record.digest: record.approved_at for record in transfers})
