"""Users and API tokens: the service's only mutable state, in their own tables.

They live in the ledger's database (SQLite or PostgreSQL, same URL) but never in the
append-only ledger tables: a token must be revocable, a user disableable. The ledger
keeps the history instead (`auth.token_issued`, `auth.token_revoked`, `api.request`).
The tables are the SQLModel models of reserve/api/models.py, read and written through
SQLModel sessions on one SQLAlchemy engine per store; their schema comes from the
database's Alembic chain (reserve/ledger/migrate.py), never from DDL at start-up, so the
service's own PostgreSQL role needs no CREATE. Callers get frozen `User` and
`TokenRecord` values, never the session's mutable rows.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, update
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, col, select

from reserve.api.models import ApiToken, ApiTokenGrant, ApiUser
from reserve.db import POSTGRES_PREFIXES, connect, create_private
from reserve.errors import AccountConflict, AccountError, AccountNotFound, ConfigError
from reserve.ledger.migrate import upgrade, upgrade_connection

LIST_MAX = 10_000
READERS_IDLE_MAX = 16  # authentication's idle connections kept (a worker runs 8 threads)
# Credentials rows decoded, kept by the row's exact values: a changed row (revoked, expired
# by a new date, user disabled, roles or vaults changed) is another key, decoded afresh.
DECODED_MAX = 1024
# PostgreSQL connections an event loop reads credentials and the ledger head on, at most
# (requests beyond them wait for one: each holds it for one round trip).
LOOP_READERS_MAX = 8


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=4096)
def parse_instant(text: str) -> datetime:
    """The instant `text` (`format_instant`'s form) names; memoised (pure, and read on
    every authenticated request). `format_instant`'s own spelling is read by
    `fromisoformat` (checked by spelling it again); anything else goes to `strptime`, which
    decides as it always has. (strptime's first call in a process imports and compiles its
    parser, 2.4 ms: a worker's first authenticated request paid it.)"""
    if len(text) == INSTANT_LENGTH and text.endswith("Z"):
        with suppress(ValueError):
            moment = datetime.fromisoformat(text[:-1])
            if moment.tzinfo is None and format_instant(moment.replace(tzinfo=UTC)) == text:
                return moment.replace(tzinfo=UTC)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


INSTANT_LENGTH = len("2026-01-05T09:00:00Z")


@dataclass(frozen=True)
class User:
    person: str
    name: str
    institution: str
    roles: tuple[str, ...]
    vaults: tuple[str, ...]
    created_at: str
    disabled_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"person": self.person, "name": self.name, "institution": self.institution,
                "roles": list(self.roles), "vaults": list(self.vaults),
                "created_at": self.created_at, "disabled_at": self.disabled_at}


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    token_hash: str
    person: str
    role: str
    label: str
    issued_by: str
    created_at: str
    expires_at: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if parse_instant(self.expires_at) <= now else "active"

    def to_json(self, now: datetime) -> dict[str, Any]:
        """Public view: never the hash itself, only its first hex digits."""
        return {"token_id": self.token_id, "hash_prefix": self.token_hash[:12],
                "person": self.person, "role": self.role, "label": self.label,
                "issued_by": self.issued_by, "created_at": self.created_at,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at,
                "revoked_by": self.revoked_by, "status": self.status(now)}


@dataclass(frozen=True)
class TokenGrant:
    """A token one admin asked for someone else (see reserve.api.accounts.request_token)."""

    grant_id: str
    person: str
    role: str
    label: str
    expires_in_seconds: int
    requested_by: str
    created_at: str
    expires_at: str
    state: str = "pending"
    closed_by: str | None = None
    closed_at: str | None = None
    token_id: str | None = None

    def status(self, now: datetime) -> str:
        if self.state != "pending":
            return self.state
        return "expired" if parse_instant(self.expires_at) <= now else "pending"

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {"grant_id": self.grant_id, "person": self.person, "role": self.role,
                "label": self.label, "expires_in_seconds": self.expires_in_seconds,
                "requested_by": self.requested_by, "created_at": self.created_at,
                "expires_at": self.expires_at, "closed_by": self.closed_by,
                "closed_at": self.closed_at, "token_id": self.token_id,
                "status": self.status(now)}


def _grant(row: ApiTokenGrant) -> TokenGrant:
    return TokenGrant(grant_id=row.grant_id, person=row.person, role=row.role,
                      label=row.label, expires_in_seconds=row.expires_in_seconds,
                      requested_by=row.requested_by, created_at=row.created_at,
                      expires_at=row.expires_at, state=row.state, closed_by=row.closed_by,
                      closed_at=row.closed_at, token_id=row.token_id)


def _user(row: ApiUser) -> User:
    return User(person=row.person, name=row.name, institution=row.institution,
                roles=tuple(json.loads(row.roles)), vaults=tuple(json.loads(row.vaults)),
                created_at=row.created_at, disabled_at=row.disabled_at)


def _user_row(user: User) -> ApiUser:
    # json.dumps with its default separators: the bytes the tables have always held.
    return ApiUser(person=user.person, name=user.name, institution=user.institution,
                   roles=json.dumps(list(user.roles)), vaults=json.dumps(list(user.vaults)),
                   created_at=user.created_at, disabled_at=user.disabled_at)


def _token(row: ApiToken) -> TokenRecord:
    return TokenRecord(token_id=row.token_id, token_hash=row.token_hash, person=row.person,
                       role=row.role, label=row.label, issued_by=row.issued_by,
                       created_at=row.created_at, expires_at=row.expires_at,
                       revoked_at=row.revoked_at, revoked_by=row.revoked_by)


def _token_row(record: TokenRecord) -> ApiToken:
    return ApiToken(token_id=record.token_id, token_hash=record.token_hash,
                    person=record.person, role=record.role, label=record.label,
                    issued_by=record.issued_by, created_at=record.created_at,
                    expires_at=record.expires_at, revoked_at=record.revoked_at,
                    revoked_by=record.revoked_by)


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    # Per connection, as before: SQLite enforces api_tokens.person only when asked to.
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=60000")


def _engine(url: str) -> tuple[Engine, str]:
    """(engine, dialect) for `url`; an in-memory SQLite database on one shared connection."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        arguments: dict[str, Any] = {"check_same_thread": False, "timeout": 60.0}
        if path == ":memory:":
            engine = create_engine("sqlite://", connect_args=arguments, poolclass=StaticPool)
        else:
            create_private(Path(path))
            engine = create_engine(url, connect_args=arguments)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine, "sqlite"
    if url.startswith(POSTGRES_PREFIXES):
        plain = url.split("://", 1)[1]
        return create_engine("postgresql+psycopg://" + plain, pool_size=2, max_overflow=2,
                             pool_pre_ping=True), "postgresql"
    raise ConfigError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")


def _migrate(url: str, engine: Engine, dialect: str) -> None:
    """Bring the schema to the head revision (one query when it already is)."""
    if url.endswith(":memory:"):
        with engine.connect() as connection:
            upgrade_connection(connection)
        return
    connection, _ = connect(url, ConfigError)
    try:
        upgrade(url, connection, dialect)
    finally:
        connection.close()


_CREDENTIALS_SQL = (
    "SELECT t.token_hash, t.person, t.role, t.label, t.issued_by, t.created_at, "
    "t.expires_at, t.revoked_at, t.revoked_by, u.person, u.name, u.institution, u.roles, "
    "u.vaults, u.created_at, u.disabled_at FROM api_tokens t "
    "LEFT JOIN api_users u ON u.person = t.person WHERE t.token_id = ?")
# The same row and the ledger's head: its last entry's seq and hash (primary key index).
_CREDENTIALS_HEAD_SQL = _CREDENTIALS_SQL.replace(
    " FROM api_tokens t", ", (SELECT seq FROM ledger_entries ORDER BY seq DESC LIMIT 1), "
    "(SELECT entry_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1) FROM api_tokens t", 1)
# On PostgreSQL the head as one lateral row: one probe of the primary key's index, where
# the two scalar subqueries cost the server about half as much again per statement.
_CREDENTIALS_HEAD_SQL_POSTGRES = _CREDENTIALS_SQL.replace(
    " FROM api_tokens t", ", h.seq, h.entry_hash FROM api_tokens t", 1).replace(
    " WHERE t.token_id", " LEFT JOIN LATERAL (SELECT seq, entry_hash FROM ledger_entries "
    "ORDER BY seq DESC LIMIT 1) h ON true WHERE t.token_id", 1)
_NO_LOCK = nullcontext()
_LOOP_STATEMENT = b"srl_credentials_head"  # prepared on each of the event loop's connections


@lru_cache(maxsize=1024)
def _json_list(text: str) -> tuple[str, ...]:
    """A stored JSON array of names (roles, vaults) as a tuple; memoised (pure)."""
    return tuple(json.loads(text))


def _credentials_of(token_id: str, row: Any) -> tuple[TokenRecord, User | None] | None:
    """The token and its user from a credentials row (None: no such token)."""
    if row is None:
        return None
    (token_hash, person, role, label, issued_by, created_at, expires_at, revoked_at,
     revoked_by, user_person, name, institution, roles, vaults, user_created,
     disabled_at) = row
    record = TokenRecord(token_id=token_id, token_hash=token_hash, person=person,
                         role=role, label=label, issued_by=issued_by,
                         created_at=created_at, expires_at=expires_at,
                         revoked_at=revoked_at, revoked_by=revoked_by)
    if user_person is None:
        return record, None
    return record, User(person=user_person, name=name, institution=institution,
                        roles=_json_list(roles), vaults=_json_list(vaults),
                        created_at=user_created, disabled_at=disabled_at)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8")


class _LoopReader:
    """One autocommit PostgreSQL connection driven from an event loop through libpq's
    non-blocking calls: the credentials-and-head statement is prepared once, then each
    request sends it and waits for the socket on the loop (no thread, no cursor).

    The socket stays registered with the loop for the connection's life (not added and
    removed around each statement: two system calls a request): while a statement is out
    its answer wakes the waiting request; while idle, whatever the server sends (a notice,
    the end of the connection) is consumed, and a connection that ended is marked broken
    and unregistered."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection  # the psycopg Connection owning the libpq one
        self.pgconn = connection.pgconn
        self.pgconn.nonblocking = 1
        self._fd: int = self.pgconn.socket
        self._loop: Any = None  # the loop the socket is registered with
        self._waiter: asyncio.Future[None] | None = None
        self.broken = False

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is loop:
            return
        self._unwatch()
        loop.add_reader(self._fd, self._readable)
        self._loop = loop

    def _unwatch(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            with suppress(Exception):
                loop.remove_reader(self._fd)

    def _readable(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(None)
            return
        try:  # idle: a notice, or the server ending the connection
            self.pgconn.consume_input()
        except Exception:
            self.broken = True
            self._unwatch()

    @classmethod
    def open(cls, url: str) -> _LoopReader:
        """Connect and prepare (blocking: run off the loop)."""
        connection, _ = connect(url, ConfigError)
        try:
            # What `row` decodes: UTF-8 text, bytea as \x and hex digits (whatever the
            # server's or the role's defaults).
            connection.execute("SET client_encoding TO 'UTF8'")
            connection.execute("SET bytea_output TO 'hex'")
            connection.execute("PREPARE " + _LOOP_STATEMENT.decode() + " (text) AS " +
                               _CREDENTIALS_HEAD_SQL_POSTGRES.replace("?", "$1"))
        except BaseException:
            with suppress(Exception):
                connection.close()
            raise
        return cls(connection)

    async def row(self, token_id: str) -> tuple[Any, ...] | None:
        """The credentials-and-head row of `token_id` (None: no such token)."""
        from psycopg import OperationalError
        from psycopg.pq import ExecStatus

        if self.broken:
            raise OperationalError("the server ended the connection")
        loop = asyncio.get_running_loop()
        self._watch(loop)
        pgconn = self.pgconn
        pgconn.send_query_prepared(_LOOP_STATEMENT, [token_id.encode("utf-8")])
        while pgconn.flush():  # bounded: libpq returns 0 once the query has left
            await _socket_writable(self._fd)
        pgconn.consume_input()
        while pgconn.is_busy():  # bounded by the server's answer
            waiter = self._waiter = loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
            pgconn.consume_input()
        result = pgconn.get_result()
        while pgconn.get_result() is not None:  # drain: one statement, one result
            pass
        if result is None or result.status != ExecStatus.TUPLES_OK:
            message = pgconn.get_error_message() if result is None else \
                result.get_error_message()
            raise OperationalError(f"credentials query failed: {message}")
        if result.ntuples == 0:
            return None
        values = [result.get_value(0, column) for column in range(result.nfields)]
        last, last_hash = values[-2], values[-1]
        return (*(_text(value) for value in values[:-2]),
                None if last is None else int(last),
                None if last_hash is None else bytes.fromhex(last_hash[2:].decode()))

    def close(self) -> None:
        self._unwatch()
        with suppress(Exception):
            self.connection.close()


async def _socket_writable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    try:
        await ready
    finally:
        loop.remove_writer(fd)


class _LoopReaders:
    """An event loop's connections for `AccountStore.credentials_and_head_async`: at most
    LOOP_READERS_MAX, made on demand; a request finding none idle waits for one."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._idle: list[_LoopReader] = []
        self._count = 0
        self._waiters: collections.deque[asyncio.Future[_LoopReader | None]] = \
            collections.deque()
        self.closed = False

    async def take(self) -> _LoopReader:
        while True:  # bounded: each turn either returns or waits for a release
            if self.closed:
                raise ConfigError("the account store is closed")
            if self._idle:
                return self._idle.pop()
            if self._count < LOOP_READERS_MAX:
                self._count += 1
                try:
                    return await asyncio.get_running_loop().run_in_executor(
                        None, _LoopReader.open, self._url)
                except BaseException:
                    self._count -= 1
                    self._wake(None)
                    raise
            waiter: asyncio.Future[_LoopReader | None] = \
                asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                reader = await waiter
            except BaseException:
                handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
                if handed is not None:
                    self.give_back(handed)  # handed over as we were cancelled
                raise
            if reader is not None:
                return reader
            # None: a connection was dropped, so one may be made: go round again

    def _wake(self, reader: _LoopReader | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(reader)
                return True
        return False

    def give_back(self, reader: _LoopReader) -> None:
        if self.closed:
            self.drop(reader)
        elif not self._wake(reader):
            self._idle.append(reader)

    def drop(self, reader: _LoopReader) -> None:
        """A connection that failed, or was interrupted mid-query: closed, not reused."""
        reader.close()
        self._count -= 1
        if not self.closed:
            self._wake(None)

    def close(self) -> None:
        self.closed = True
        for reader in self._idle:
            reader.close()
        self._idle.clear()
        self._wake(None)


class AccountStore:
    """Users and tokens in `api_users` / `api_tokens`, migrated on first open."""

    def __init__(self, engine: Engine, dialect: str, url: str | None = None) -> None:
        self.dialect = dialect
        self._engine = engine
        self._lock = threading.RLock()
        self._shared = isinstance(engine.pool, StaticPool)  # one connection for all
        # Authentication's own autocommit connections (see credentials), idle ones kept for
        # the next request: a file or server database only.
        self._url = None if self._shared else url
        self._readers: list[Any] = []
        self._loop_readers: dict[Any, _LoopReaders] = {}  # by event loop
        self._last_loop_readers: tuple[Any, _LoopReaders] | None = None
        self._closed = False
        self._decoded: dict[tuple[str, tuple[Any, ...]], tuple[TokenRecord, User | None]] = {}

    @classmethod
    def open(cls, url: str) -> AccountStore:
        engine, dialect = _engine(url)
        try:
            _migrate(url, engine, dialect)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, dialect, url)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for connection in self._readers:
                with suppress(Exception):
                    connection.close()
            self._readers.clear()
            for readers in self._loop_readers.values():
                readers.close()
            self._loop_readers.clear()
            self._last_loop_readers = None
            self._engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error. A
        row another process inserted first (same person or token id) is a conflict."""
        with self._lock, Session(self._engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except exc.IntegrityError:
                # Not the driver's text: PostgreSQL's would quote the row, a token hash included.
                session.rollback()
                raise AccountConflict("another process wrote the same user or token first; "
                                      "read it again and retry") from None
            except BaseException:
                session.rollback()
                raise

    # ------------------------------------------------------------------ users
    def create_user(self, user: User) -> User:
        with self._session() as session:
            if session.get(ApiUser, user.person) is not None:
                raise AccountConflict(f"user {user.person!r} already exists")
            session.add(_user_row(user))
        return user

    def update_user(self, user: User) -> User:
        with self._session() as session:
            row = session.get(ApiUser, user.person)
            if row is None:
                raise AccountNotFound(f"no user {user.person!r}")
            changed = _user_row(user)
            row.name, row.institution = changed.name, changed.institution
            row.roles, row.vaults = changed.roles, changed.vaults
            session.add(row)
        return self.require_user(user.person)

    def user(self, person: str) -> User | None:
        with self._session() as session:
            row = session.get(ApiUser, person)
            return _user(row) if row is not None else None

    def require_user(self, person: str) -> User:
        found = self.user(person)
        if found is None:
            raise AccountNotFound(f"no user {person!r}")
        return found

    def users(self) -> list[User]:
        with self._session() as session:
            rows = session.exec(select(ApiUser).order_by(col(ApiUser.person)).limit(LIST_MAX))
            return [_user(row) for row in rows]

    def disable_user(self, person: str, by: str, now: datetime) -> list[str]:
        """Disable a user and revoke their live tokens; returns the revoked token ids."""
        stamp = format_instant(now)
        with self._session() as session:
            row = session.get(ApiUser, person)
            if row is None:
                raise AccountNotFound(f"no user {person!r}")
            if row.disabled_at is not None:
                raise AccountConflict(f"user {person!r} is already disabled")
            live = list(session.exec(
                select(ApiToken.token_id).where(ApiToken.person == person,
                                                col(ApiToken.revoked_at).is_(None))
                .order_by(col(ApiToken.token_id))))
            row.disabled_at = stamp
            session.add(row)
            session.exec(update(ApiToken).where(col(ApiToken.person) == person,
                                                col(ApiToken.revoked_at).is_(None))
                         .values(revoked_at=stamp, revoked_by=by))
        return live

    # ----------------------------------------------------------------- tokens
    def insert_token(self, record: TokenRecord) -> TokenRecord:
        with self._session() as session:
            if session.get(ApiToken, record.token_id) is not None:
                raise AccountConflict(f"token {record.token_id} already exists")
            session.add(_token_row(record))
        return record

    def token(self, token_id: str) -> TokenRecord | None:
        with self._session() as session:
            row = session.get(ApiToken, token_id)
            return _token(row) if row is not None else None

    def credentials(self, token_id: str) -> tuple[TokenRecord, User | None] | None:
        """The token `token_id` and its user (None if the user row is gone), or None: what
        authenticating a request needs, read fresh from the tables on every call (a revoked
        token or a disabled user is refused from the next request on, in every process).

        One indexed query on a pooled DB-API connection, not two ORM sessions: this runs
        on every authenticated request, where the ORM's per-session work cost more than
        the rest of a small read.
        """
        row = self._credentials_row(token_id) if self._url is not None else \
            self._pooled_credentials_row(token_id)
        return self._decode(token_id, row)

    def _decode(self, token_id: str, row: Any) -> tuple[TokenRecord, User | None] | None:
        """`_credentials_of`, the same objects for the same row values (authentication
        reads the row on every request; decoding it each time cost as much as the read).
        The objects are frozen, so sharing them changes nothing."""
        if row is None:
            return None
        key = (token_id, tuple(row))
        found = self._decoded.get(key)
        if found is None:
            found = _credentials_of(token_id, row)
            if found is None:
                return None
            if len(self._decoded) >= DECODED_MAX:
                self._decoded.clear()
            self._decoded[key] = found
        return found

    def shares_database(self, url: str) -> bool:
        """Whether this store reads the database at `url` on its own connections."""
        return self._url is not None and self._url == url

    def credentials_and_head(self, token_id: str
                             ) -> tuple[tuple[TokenRecord, User | None] | None,
                                        tuple[int, bytes] | None]:
        """`credentials` and the ledger's head (size, hash of its last entry) in the same
        statement, so in one snapshot and one round trip (the read routes' answer cache
        keys on the head). Only for a store on the ledger's own database
        (`shares_database`); the head is None when the token is unknown."""
        if self._url is None:
            raise AccountError("this store has no connection of its own for the ledger head")
        row = self._credentials_row(token_id, _CREDENTIALS_HEAD_SQL if self.dialect == "sqlite"
                                    else _CREDENTIALS_HEAD_SQL_POSTGRES)
        if row is None:
            return None, None
        last, last_hash = row[-2], row[-1]
        head = (0, bytes(32)) if last is None else (int(last) + 1, bytes(last_hash))
        return self._decode(token_id, row[:-2]), head

    def reads_on_loop(self) -> bool:
        """Whether `credentials_and_head_async` may be used: a PostgreSQL store with
        connections of its own."""
        return self._url is not None and self.dialect == "postgresql"

    async def credentials_and_head_async(self, token_id: str
                                         ) -> tuple[tuple[TokenRecord, User | None] | None,
                                                    tuple[int, bytes] | None]:
        """`credentials_and_head` from the event loop, without a thread: the same
        statement, prepared on a connection this loop keeps (`_LoopReaders`), sent and
        awaited through libpq's non-blocking calls. Read fresh on every call, like
        `credentials`. A connection that fails is closed and the query tried once more
        on a new one; one interrupted mid-query (a cancelled request) is closed too."""
        if not self.reads_on_loop():
            raise AccountError("this store has no PostgreSQL connection of its own")
        readers = self._readers_of_loop()
        for attempt in (1, 2):
            reader = await readers.take()
            try:
                row = await reader.row(token_id)
            except BaseException as error:
                readers.drop(reader)
                if attempt == 2 or not isinstance(error, Exception):
                    raise
                continue
            readers.give_back(reader)
            if row is None:
                return None, None
            last, last_hash = row[-2], row[-1]
            head = (0, bytes(32)) if last is None else (last + 1, last_hash)
            return self._decode(token_id, row[:-2]), head
        raise AssertionError("unreachable")

    def _readers_of_loop(self) -> _LoopReaders:
        loop = asyncio.get_running_loop()
        last = self._last_loop_readers  # a worker's one loop, nearly always
        if last is not None and last[0] is loop:
            return last[1]
        readers = self._loop_readers.get(loop)
        if readers is None:
            with self._lock:
                if self._closed:
                    raise ConfigError("the account store is closed")
                for other in [key for key in self._loop_readers if key.is_closed()]:
                    self._loop_readers.pop(other).close()  # a finished test client's loop
                readers = self._loop_readers.setdefault(loop, _LoopReaders(str(self._url)))
        self._last_loop_readers = (loop, readers)
        return readers

    def _pooled_credentials_row(self, token_id: str) -> Any:
        """The credentials row through the engine's pool (an in-memory database's one
        shared connection, under the lock)."""
        statement = _CREDENTIALS_SQL if self.dialect == "sqlite" else \
            _CREDENTIALS_SQL.replace("?", "%s")
        with self._lock if self._shared else _NO_LOCK:
            connection = self._engine.raw_connection()
            try:
                cursor = connection.cursor()
                try:
                    cursor.execute(statement, (token_id,))
                    return cursor.fetchone()
                finally:
                    cursor.close()
            finally:
                connection.close()  # back to the pool, which ends the read transaction

    def _take_reader(self) -> Any:
        """An idle autocommit connection for authentication, or a new one."""
        with self._lock:
            if self._closed:
                raise ConfigError("the account store is closed")
            if self._readers:
                return self._readers.pop()
        connection, _ = connect(str(self._url), ConfigError)
        return connection

    def _give_back(self, connection: Any) -> None:
        with self._lock:
            if not self._closed and len(self._readers) < READERS_IDLE_MAX:
                self._readers.append(connection)
                return
        with suppress(Exception):
            connection.close()

    def _credentials_row(self, token_id: str, statement: str = _CREDENTIALS_SQL) -> Any:
        """The credentials row in one statement on an autocommit connection kept for it:
        no pool checkout, ping or rollback around it (on PostgreSQL each of those was a
        round trip of its own). A connection that fails is closed and the query tried
        once more on a new one (a server restarted meanwhile)."""
        if self.dialect != "sqlite":
            statement = statement.replace("?", "%s")
        for attempt in (1, 2):
            connection = self._take_reader()
            try:
                row = connection.execute(statement, (token_id,)).fetchone()
            except Exception:
                with suppress(Exception):
                    connection.close()
                if attempt == 2:
                    raise
                continue
            self._give_back(connection)
            return row
        raise AssertionError("unreachable")

    def tokens(self, person: str | None = None) -> list[TokenRecord]:
        query = select(ApiToken)
        if person is not None:
            query = query.where(ApiToken.person == person)
        query = query.order_by(col(ApiToken.created_at), col(ApiToken.token_id)).limit(LIST_MAX)
        with self._session() as session:
            return [_token(row) for row in session.exec(query)]

    def revoke_token(self, token_id: str, by: str, now: datetime) -> TokenRecord:
        with self._session() as session:
            row = session.get(ApiToken, token_id)
            if row is None:
                raise AccountNotFound(f"no token {token_id!r}")
            if row.revoked_at is not None:
                raise AccountConflict(f"token {token_id} was already revoked at "
                                      f"{row.revoked_at}")
            row.revoked_at, row.revoked_by = format_instant(now), by
            session.add(row)
            return _token(row)

    # ----------------------------------------------------------------- grants
    def insert_grant(self, grant: TokenGrant) -> TokenGrant:
        with self._session() as session:
            if session.get(ApiTokenGrant, grant.grant_id) is not None:
                raise AccountConflict(f"grant {grant.grant_id} already exists")
            session.add(ApiTokenGrant(
                grant_id=grant.grant_id, person=grant.person, role=grant.role,
                label=grant.label, expires_in_seconds=grant.expires_in_seconds,
                requested_by=grant.requested_by, created_at=grant.created_at,
                expires_at=grant.expires_at, state=grant.state))
        return grant

    def grant(self, grant_id: str) -> TokenGrant | None:
        with self._session() as session:
            row = session.get(ApiTokenGrant, grant_id)
            return _grant(row) if row is not None else None

    def pending_grants(self) -> list[TokenGrant]:
        query = (select(ApiTokenGrant).where(ApiTokenGrant.state == "pending")
                 .order_by(col(ApiTokenGrant.created_at), col(ApiTokenGrant.grant_id))
                 .limit(LIST_MAX))
        with self._session() as session:
            return [_grant(row) for row in session.exec(query)]

    def close_grant(self, grant_id: str, state: str, by: str, now: datetime,
                    token_id: str | None = None) -> TokenGrant:
        """Move a pending grant to `state` in one conditional UPDATE, so two admins acting
        at once cannot both close it (the loser gets a conflict)."""
        with self._session() as session:
            closed = session.exec(
                update(ApiTokenGrant).where(col(ApiTokenGrant.grant_id) == grant_id,
                                            col(ApiTokenGrant.state) == "pending")
                .values(state=state, closed_by=by, closed_at=format_instant(now),
                        token_id=token_id))
            if closed.rowcount != 1:
                raise AccountConflict(f"grant {grant_id} is no longer pending")
            row = session.get(ApiTokenGrant, grant_id)
            assert row is not None
            session.refresh(row)
            return _grant(row)
