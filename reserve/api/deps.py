"""What every route depends on: the service state, the caller, role checks and recording.

Routes declare who may call them with `Depends(require(Role.X, ...))`; nothing else
grants access. Credentials come from `Authorization: Bearer <token>`; the dashboard's
cookie is accepted only on safe methods (GET, HEAD), so a cookie can never authorise a
state change (no cross-site request forgery). Failed authentications are counted per
client address and answered with 429 once over the limit.

A route that changes state calls the `Recorder` it depends on; the recorder appends one
`api.request` entry naming the actor together with the route's own domain entries, in a
single ledger batch.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from fastapi import HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from reserve.api.accounts import authenticate, authenticate_at_head, authenticate_at_head_async
from reserve.api.auth import FailureLimiter, Principal, Role
from reserve.api.panels import PanelRegistry
from reserve.api.store import AccountStore
from reserve.errors import AuthError, ConfigError
from reserve.events import ABSENT
from reserve.events.access import ApiRequest

T = TypeVar("T")
COOKIE_NAME = "srl_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ApiOptions:
    """Tunable limits of the service; defaults suit a single-host deployment."""

    auth_failures_max: int = 10
    auth_failure_window_seconds: int = 60
    auth_clients_max: int = 10_000
    page_entries_max: int = 500
    anchor_scan_entries: int = 5_000
    # Bodies larger than this are refused (413) before anything reads them further.
    body_bytes_max: int = 65_536
    # The session cookie is sent over HTTPS only; set false only for a plain-http demo
    # on localhost (`[api] cookie_secure = false`).
    cookie_secure: bool = True
    # Bitcoin vault configurations (descriptors) shown by /api/vaults; relative to the project.
    bitcoin_vaults_dir: str = "config/vaults"
    # Threads of a worker running the sync routes (anyio's default is 40). Request work is
    # CPU under one GIL: fewer threads queue on fewer locks (the ledger's, the workflow's)
    # and hand the GIL over less; 8 still gives a group commit several writes to share.
    threads: int = 8
    title: str = "Sovereign Reserve Ledger"

    def __post_init__(self) -> None:
        if not 1 <= self.threads <= 1024:
            raise ConfigError(f"config.api.threads: expected 1..1024, got {self.threads}")


@dataclass
class Service:
    """Everything a request needs, built once by create_app."""

    ledger: Any
    accounts: AccountStore
    limiter: FailureLimiter
    options: ApiOptions
    panels: PanelRegistry
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = field(default=lambda: 0.0)
    # The chain connections (wallets.chains.ConfiguredChains: `adapter(vault, chain)` and
    # `share(vault, chain, custodian, data)`); None when the service was started without
    # them (transfer steps then answer 503).
    chains: Any = None
    # The public portal's settings (reserve.config.PublicSettings) and its per-address
    # request limiter (reserve.api.public_cache.RequestLimiter); set by create_app.
    public: Any = None
    public_limiter: Any = None


# The dependencies below are `async def` on purpose: FastAPI runs every sync dependency in
# the thread pool, one hand-off each (four or five a request, each dearer than the whole
# check). They do no I/O, except current_principal's token lookup, which goes to the
# pool itself (once, and only when the guard has not authenticated the request already).
async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _credentials(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else ""
    if request.method in SAFE_METHODS:
        return request.cookies.get(COOKIE_NAME)
    return None


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


def check_token(service: Service, address: str, token: str) -> Principal:
    """Authenticate `token` for a client at `address`, counting failures; raises HTTP errors."""
    return _checked(service, address, lambda: authenticate(service.accounts, token,
                                                            service.clock()))


def check_token_at_head(service: Service, address: str, token: str
                        ) -> tuple[Principal, tuple[int, bytes]]:
    """`check_token`, and the ledger's head read in the same statement (an account store
    on the ledger's own database)."""
    return _checked(service, address, lambda: authenticate_at_head(service.accounts, token,
                                                                    service.clock()))


async def check_token_at_head_async(service: Service, address: str, token: str
                                    ) -> tuple[Principal, tuple[int, bytes]]:
    """`check_token_at_head` on the event loop, no thread (a PostgreSQL account store with
    its own connections: `AccountStore.reads_on_loop`)."""
    _admitted(service, address)
    try:
        return await authenticate_at_head_async(service.accounts, token, service.clock)
    except AuthError as error:
        service.limiter.fail(address, service.monotonic())
        raise unauthorized(str(error)) from None


def _admitted(service: Service, address: str) -> None:
    verdict = service.limiter.check(address, service.monotonic())
    if not verdict.allowed:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            detail="too many failed authentications from this address",
                            headers={"Retry-After": str(verdict.retry_after_seconds)})


def _checked(service: Service, address: str, authenticate: Callable[[], T]) -> T:
    _admitted(service, address)
    try:
        return authenticate()
    except AuthError as error:
        service.limiter.fail(address, service.monotonic())
        raise unauthorized(str(error)) from None


def head_on_loop(service: Service) -> bool:
    """Whether the token and the ledger head are read from the event loop in one
    non-blocking round trip (PostgreSQL, an account store on the ledger's database with
    connections of its own), so a kept answer is served with no hop to the thread pool."""
    accounts = service.accounts
    reads_on_loop = getattr(accounts, "reads_on_loop", None)
    return reads_on_loop is not None and reads_on_loop() and \
        accounts.shares_database(str(getattr(service.ledger, "url", "")))


async def authenticated(service: Service, address: str, token: str) -> Principal:
    """`check_token` without a hop to a thread where it can: with accounts on SQLite it is
    one indexed read of local pages, run on the loop as is; on PostgreSQL the statement of
    `head_on_loop` is awaited (its head unused); elsewhere it runs in the thread pool."""
    if getattr(service.accounts, "dialect", "") == "sqlite":
        return check_token(service, address, token)
    if head_on_loop(service):
        principal, _ = await check_token_at_head_async(service, address, token)
        return principal
    return await run_in_threadpool(check_token, service, address, token)


async def _principal_of(request: Request) -> Principal:
    # A state-changing request was authenticated by the guard before its body was read.
    checked: Principal | None = getattr(request.state, "principal", None)
    if checked is not None:
        return checked
    token = _credentials(request)
    if token is None:
        raise unauthorized("authentication required: send Authorization: Bearer <token>")
    service: Service = request.app.state.service
    principal = await authenticated(service, client_address(request), token)
    request.state.principal = principal
    return principal


async def current_principal(request: Request) -> Principal:
    """The authenticated caller (401 without a valid token)."""
    return await _principal_of(request)


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only callers in `roles` (403 for the others)."""
    allowed = frozenset(roles)
    if not allowed:
        raise ValueError("require() needs at least one role")

    # One dependency, not a chain of three (FastAPI's resolution costs per level).
    async def dependency(request: Request) -> Principal:
        principal = await _principal_of(request)
        if principal.role not in allowed:
            names = ", ".join(sorted(role.value for role in allowed))
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"role {principal.role.value} may not do this "
                                       f"(allowed: {names})")
        return principal

    return dependency


def unknown_vault(vault: str) -> str:
    return f"no policy is registered for vault {vault!r}"


def require_vault(principal: Principal, vault: str, detail: str | None = None) -> None:
    """For vault-scoped routes: a custodian of other vaults gets the very 404 that a vault
    (or object, `detail`) that does not exist gets, so not even its existence leaks."""
    if not principal.may_see_vault(vault):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=detail or unknown_vault(vault))


class Recorder:
    """Appends a state-changing request's ledger entries, with its actor, in one batch."""

    def __init__(self, request: Request, service: Service, principal: Principal) -> None:
        self.request = request
        self.service = service
        self.principal = principal

    def request_payload(self, summary: dict[str, Any] | None = None) -> dict[str, Any]:
        # A vault-scoped route names its vault, so custodians of other vaults never see
        # the request (reserve.api.visibility hides entries naming a foreign vault).
        vault = ABSENT
        for key in ("vault", "vault_id"):
            if isinstance(self.request.path_params.get(key), str):
                vault = self.request.path_params[key]
        return ApiRequest(method=self.request.method, path=self.request.url.path,
                          role=self.principal.role.value, token_id=self.principal.token_id,
                          request_id=self.request.state.request_id, vault=vault,
                          summary=summary or ABSENT).to_payload()

    def entry(self, summary: dict[str, Any] | None = None) -> tuple[str, str, dict[str, Any]]:
        """The request's own `api.request` entry (kind, actor, payload), not yet written."""
        return ("api.request", self.principal.person, self.request_payload(summary))

    def __call__(self, entries: list[tuple[str, dict[str, Any]]],
                 summary: dict[str, Any] | None = None) -> None:
        actor = self.principal.person
        batch = [self.entry(summary)]
        batch += [(kind, actor, payload) for kind, payload in entries]
        self.service.ledger.append_many(batch, now=self.service.clock())
        self.request.state.recorded = True


async def get_recorder(request: Request) -> Recorder:
    return Recorder(request, request.app.state.service, await _principal_of(request))


def new_request_id() -> str:
    return secrets.token_hex(8)


_PLAIN_JSON = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | \
    orjson.OPT_PASSTHROUGH_SUBCLASS


def answer(data: dict[str, Any], status_code: int = status.HTTP_200_OK) -> Any:
    """`data` as a JSON response encoded by orjson, for the busiest routes: FastAPI's own
    path (validating the dict against the route's `dict[str, Any]` model, then pydantic's
    encoder) cost a tenth of a small read. Only plain JSON values are encoded here (no
    datetimes, dataclasses or subclasses such as enums, no integers past 64 bits); for
    anything else `data` itself is returned, and FastAPI encodes it as before."""
    try:
        body = orjson.dumps(data, option=_PLAIN_JSON)
    except (TypeError, orjson.JSONEncodeError):
        return data
    return Response(body, status_code=status_code, media_type="application/json")
