"""The request guard: what every body must pass before any route, parser or model sees it.

FastAPI reads and parses a JSON body before it runs a route's dependencies, so without
this guard an anonymous caller could make the service parse anything. Parsing is
dangerous: `json.loads` recurses once per nesting level, and a library the chain layers
import (py_ecc) raises Python's recursion limit to 100,000 at import, so 100,000 nested
`[` overflow the C stack and the process dies with SIGSEGV. (The ledger's own parsers
were guarded by `nesting_within_limit` already; this HTTP path was not.)

For every request with a body, in this order and before anything parses it:
1. a state-changing `/api/` request must carry a valid bearer token (401/429 otherwise;
   the principal is kept for the route, which does not authenticate twice); any other
   one (the dashboard's login and logout forms) must come from a page of this very site,
   as its Origin (or, lacking one, Referer) header says (403 otherwise: no cross-site
   request forgery, no login CSRF);
2. the body may hold at most `body_bytes_max` bytes (413, read no further);
3. it may nest arrays and objects at most DEPTH_MAX deep (422);
4. a JSON body's strings must be valid Unicode: a lone surrogate such as `"\\ud800"` is
   refused (422) instead of travelling on to a handler that cannot encode it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import HTTPException
from starlette.responses import JSONResponse

from reserve.ledger.canonical import DEPTH_MAX, nesting_within_limit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def has_lone_surrogate(value: Any) -> bool:
    """True when a parsed JSON value holds a string (or key) that is not valid Unicode.

    Requires a value of at most DEPTH_MAX + 1 levels (checked before parsing).
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, list):
        return any(has_lone_surrogate(item) for item in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(key) or has_lone_surrogate(item)
                   for key, item in value.items())
    return False


def body_problem(body: bytes, content_type: str) -> str | None:
    """Why `body` must not reach the routes, or None. Pure; never recurses on raw input."""
    if not nesting_within_limit(body):
        return f"the body nests deeper than {DEPTH_MAX} levels"
    if "json" not in content_type:
        return None
    try:
        orjson.loads(body)  # strict: a string it parses is valid Unicode, so none is lone
        return None
    except orjson.JSONDecodeError:
        pass  # not strict JSON (NaN, a lone surrogate, ...): parse it as FastAPI will
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None  # malformed JSON: FastAPI answers 422 json_invalid itself
    if has_lone_surrogate(parsed):
        return "the body holds a string that is not valid Unicode (a lone surrogate)"
    return None


def cross_site(headers: dict[str, str]) -> bool:
    """True unless Origin (or, when absent, Referer) names the host the request was sent to.

    Browsers send Origin with every form POST; a missing or `null` one is refused too.
    """
    host = headers.get("host", "").strip().lower()
    source = headers.get("origin") or headers.get("referer")
    if not host or not source:
        return True
    parts = urlsplit(source.strip())
    return parts.scheme not in ("http", "https") or parts.netloc.lower() != host


def _refusal(status_code: int, detail: str, headers: dict[str, str] | None = None
             ) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def _invalid_body(problem: str) -> JSONResponse:
    """A 422 shaped like FastAPI's own validation answers (the schema documents that)."""
    return JSONResponse({"detail": [{"type": "body_refused", "loc": ["body"], "msg": problem}]},
                        status_code=422)


class RequestGuard:
    """Pure ASGI middleware applying the checks of the module docstring."""

    def __init__(self, app: ASGIApp, body_bytes_max: int) -> None:
        if body_bytes_max < 1:
            raise ValueError("body_bytes_max must be positive")
        self.app = app
        self.body_bytes_max = body_bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1")
                   for key, value in scope.get("headers", ())}
        if scope["path"].startswith("/api/"):
            refusal = await self._authenticate(scope, headers)
        elif cross_site(headers):
            refusal = _refusal(403, "cross-site form posts are refused: the Origin (or "
                                    "Referer) header must name this site")
        else:
            refusal = None
        if refusal is None:
            refusal = self._declared_size(headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        body, refusal = await self._read(receive)
        if refusal is None:
            problem = body_problem(body, headers.get("content-type", "").lower())
            refusal = None if problem is None else _invalid_body(problem)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _authenticate(self, scope: Scope, headers: dict[str, str]
                            ) -> JSONResponse | None:
        """State-changing API requests authenticate before their body is read."""
        from reserve.api.deps import authenticated, unauthorized

        header = headers.get("authorization")
        scheme, _, value = (header or "").partition(" ")
        try:
            if header is None or scheme.lower() != "bearer":
                raise unauthorized("authentication required: send Authorization: Bearer <token>")
            service = scope["app"].state.service
            client = scope.get("client")
            address = client[0] if client else "unknown"
            principal = await authenticated(service, address, value.strip())
        except HTTPException as error:
            return _refusal(error.status_code, str(error.detail), dict(error.headers or {}))
        scope.setdefault("state", {})["principal"] = principal
        return None

    def _declared_size(self, headers: dict[str, str]) -> JSONResponse | None:
        declared = headers.get("content-length", "0").strip()
        if not declared.isdigit() or len(declared) > 18:
            return _refusal(400, "Content-Length is not a number of bytes")
        if int(declared) > self.body_bytes_max:
            return _refusal(413, f"the body exceeds {self.body_bytes_max} bytes")
        return None

    async def _read(self, receive: Receive) -> tuple[bytes, JSONResponse | None]:
        """The whole body, or a 413 once it grows past the limit (read no further)."""
        chunks: list[bytes] = []
        size = 0
        while True:  # bounded: each turn adds bytes until the limit or the last chunk
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", _refusal(400, "the client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.body_bytes_max:
                return b"", _refusal(413, f"the body exceeds {self.body_bytes_max} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that hands the already-read body to the app, then the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
