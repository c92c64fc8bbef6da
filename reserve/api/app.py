"""Builds the FastAPI application: state, error mapping, routers, dashboard, recording net.

`create_app(source)` accepts a loaded `Settings` (the ledger opens with its checkpoint
key, as the CLI does), a database URL, or an open `Ledger`. Users and tokens live in
their own tables of the same database. HTTP status codes are decided here and in the
routes only; domain code raises `ReserveError` subclasses, mapped below.

Safety net: a state-changing `/api/` request that succeeded without calling its
`Recorder` still gets an `api.request` entry, so a new route cannot silently skip the
ledger (the entry says the middleware wrote it, which tests flag).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from reserve.api import collector, docs_pages, openapi
from reserve.api.auth import FailureLimiter, Principal
from reserve.api.deps import SAFE_METHODS, ApiOptions, Service, new_request_id, utc_now
from reserve.api.guard import RequestGuard
from reserve.api.methods import MethodAnswers
from reserve.api.panels import Panel, PanelRegistry
from reserve.api.routes import include_routers
from reserve.api.store import AccountStore
from reserve.errors import (
    AccountConflict,
    AccountError,
    AccountNotFound,
    ApprovalError,
    AuthError,
    ConfigError,
    EntryRejected,
    FreezeMirrorFailed,
    LedgerConflict,
    LedgerError,
    MiningError,
    MiningNotFound,
    NodeUnavailable,
    PolicyError,
    ProofError,
    ReserveError,
    WorkflowError,
)
from reserve.events.access import ApiRequest

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent

# Most specific first: the first class an error is an instance of decides its status.
# 422 stays FastAPI's own (schema validation, with its documented list-shaped detail);
# input that is well-formed but refused by the domain is a 400 with a sentence.
ERROR_STATUS: tuple[tuple[type[ReserveError], int], ...] = (
    (AuthError, 401),
    (MiningNotFound, 404),
    (MiningError, 400),
    (AccountNotFound, 404),
    (AccountConflict, 409),
    (AccountError, 400),
    (ProofError, 400),
    (EntryRejected, 400),
    (LedgerConflict, 409),
    (PolicyError, 400),
    (ApprovalError, 400),  # a forged, replayed or misplaced vote: refused input
    (FreezeMirrorFailed, 502),  # recorded in the ledger; the chain did not follow (yet)
    (WorkflowError, 409),
    (NodeUnavailable, 503),
    (ConfigError, 503),
    (LedgerError, 503),
)


def status_for(error: ReserveError) -> int:
    for kind, code in ERROR_STATUS:
        if isinstance(error, kind):
            return code
    return 400


def _open_sources(source: Any) -> tuple[Any, str, bool]:
    """(ledger, database URL, whether the app owns the ledger and must close it), with the
    read models attached: every append the service makes keeps them in step."""
    from reserve.config import Settings
    from reserve.ledger.store import Ledger
    from reserve.transfers import readmodel

    if isinstance(source, Settings):
        from reserve.ledger.configured import open_ledger

        ledger = open_ledger(source)
        url, owned = source.ledger.database_url, True
    elif isinstance(source, str):
        ledger, url, owned = Ledger.open(source), source, True
    else:
        ledger, url, owned = source, str(source.url), False
    readmodel.attach(ledger)
    return ledger, url, owned


def _is_settings(source: Any) -> bool:
    from reserve.config import Settings

    return isinstance(source, Settings)


def _configured_chains(settings: Any, ledger: Any, clock: Callable[[], datetime]) -> Any:
    from wallets.chains import ConfiguredChains

    return ConfiguredChains(settings, ledger, clock=clock)


def create_app(source: Any, *, accounts: AccountStore | None = None,
               options: ApiOptions | None = None, panels: tuple[Panel, ...] = (),
               clock: Callable[[], datetime] | None = None,
               monotonic: Callable[[], float] = time.monotonic,
               chains: Any = None, public_log_dir: Path | None = None,
               public: Any = None) -> FastAPI:
    """The service on `source` (Settings, database URL or Ledger); see the module doc.

    `chains` (wallets.chains.ConfiguredChains) connects transfers to their nodes; started
    from Settings, the service builds it from the configuration. `clock` defaults to the
    configuration's (`Settings.clock`, which a regtest config may set ahead) or UTC time.
    `public` (reserve.config.PublicSettings) says what the anonymous portal at /public
    shows; default: the configuration's `[public]` table, else the portal is off.
    """
    from reserve.api.public_cache import RequestLimiter
    from reserve.config import PublicSettings

    chosen = options or ApiOptions()
    if clock is None:
        clock = source.clock() if _is_settings(source) else utc_now
    ledger, url, owns_ledger = _open_sources(source)
    if chains is None and _is_settings(source):
        chains = _configured_chains(source, ledger, clock)
    owns_accounts = accounts is None
    store = accounts or AccountStore.open(url)
    registry = PanelRegistry()
    for panel in panels:
        registry.register(panel)
    registry.attach_default_providers()
    service = Service(ledger=ledger, accounts=store, options=chosen, panels=registry,
                      limiter=FailureLimiter(chosen.auth_failures_max,
                                             chosen.auth_failure_window_seconds,
                                             chosen.auth_clients_max),
                      clock=clock, monotonic=monotonic, chains=chains)
    if public is None:
        public = source.public if _is_settings(source) else PublicSettings()
    service.public = public
    service.public_limiter = RequestLimiter(public.rate_per_minute, public.burst,
                                            public.clients_max)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The sync routes' thread pool (see ApiOptions.threads), set in the worker's loop.
        anyio.to_thread.current_default_thread_limiter().total_tokens = chosen.threads
        with collector.serving():  # after start-up: see reserve.api.collector
            yield
        access = getattr(service, "_workflow_access", None)  # reserve_views.workflow_access
        if access is not None:
            access.close()  # its group-commit thread ends once the queue is empty
        if owns_accounts:
            store.close()
        if owns_ledger:
            ledger.close()

    # /docs and /redoc are docs_pages' (local assets), not FastAPI's (a CDN).
    app = FastAPI(title=chosen.title, version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  description="Custody, ledger and proofs of the sovereign reserve. "
                              "Authenticate with `Authorization: Bearer <token>`.")
    app.state.service = service
    if public_log_dir is None and _is_settings(source):
        from reserve.transparency.settings import from_config

        public_log_dir = from_config(source.raw, source.root).directory
    app.state.public_log_dir = public_log_dir  # what `reserve publish` wrote, served as is
    _install_error_handlers(app)
    # Added first, so both run inside the recording net: refusals get the request id and
    # security headers too. MethodAnswers is outside the guard: a method the path does not
    # serve is 405 before any token or body is looked at.
    app.add_middleware(RequestGuard, body_bytes_max=chosen.body_bytes_max)
    app.add_middleware(MethodAnswers)
    _install_recording_net(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    include_routers(app)
    openapi.install(app)
    docs_pages.install(app)
    return app


def encodable(value: Any) -> Any:
    """`value` with every string made encodable as UTF-8 (lone surrogates escaped).

    Error answers echo what the caller sent; input that is not valid Unicode must come
    back as text, not crash the encoder with a 500.
    """
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list | tuple):
        return [encodable(item) for item in value]
    if isinstance(value, dict):
        return {encodable(key): encodable(item) for key, item in value.items()}
    return value


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ReserveError)
    async def reserve_error(_: Request, error: ReserveError) -> JSONResponse:
        code = status_for(error)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse({"detail": encodable(str(error))}, status_code=code,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": encodable(jsonable_encoder(error.errors()))},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Response:
        if error.status_code in (204, 304) or error.status_code < 200:
            return Response(status_code=error.status_code, headers=error.headers)
        return JSONResponse({"detail": encodable(error.detail)},
                            status_code=error.status_code, headers=error.headers)


def _install_recording_net(app: FastAPI) -> None:
    app.add_middleware(RecordingNet)


class RecordingNet:
    """Pure ASGI middleware: each request's id, the security headers, and the recording
    net of the module doc (an unrecorded successful state-changing `/api/` request is
    appended before its answer starts, so nothing is acknowledged unrecorded).

    Not `@app.middleware("http")` (Starlette's BaseHTTPMiddleware): that one runs every
    request through a task group and memory streams, which cost more than a small read.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = state["request_id"] = new_request_id()
        state["recorded"] = False
        checked = scope["method"] not in SAFE_METHODS and scope["path"].startswith("/api/")

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                if checked and message["status"] < 400 and not state.get("recorded"):
                    await run_in_threadpool(_record_unrecorded, scope, message["status"])
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                _security_headers(headers)
            await send(message)

        await self.app(scope, receive, sending)


def _record_unrecorded(scope: Any, status_code: int) -> None:
    request = Request(scope)
    principal: Principal | None = scope["state"].get("principal")
    service: Service = request.app.state.service
    actor = principal.person if principal else "anonymous"
    log.error("state-changing request %s %s was not recorded by its route",
              request.method, request.url.path)
    event = ApiRequest(method=request.method, path=request.url.path, status=status_code,
                       request_id=scope["state"]["request_id"], recorded_by="middleware")
    service.ledger.append(event.KIND, actor, event.to_payload(), now=service.clock())


CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                           "form-action 'self'; base-uri 'none'")


def _security_headers(headers: MutableHeaders) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` with
    # a form post, and the guard could not tell the login form from a cross-site one.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    # The /docs and /redoc pages set their own, a little wider one (see docs_pages).
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
