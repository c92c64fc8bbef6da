"""Answers about methods for every known path: OPTIONS lists them, others get 405 with Allow.

Starlette answers a method a path does not support with the `Allow` header of the first
route that matched the path, so a path served by two routes (GET and POST
`/api/proposals`) advertised only one of them, and OPTIONS got 405. Here the methods of
every route matching the path are collected: OPTIONS gets 204 with `Allow`, and an
unsupported method gets 405 with the same `Allow` (RFC 9110 section 15.5.6), before any
authentication or body parsing (a GET or HEAD, which nothing checks before the router,
is routed first and its 405 rewritten, so it pays for one match, not two). Unknown paths and mounted apps are left to the router.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBED = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
# Methods nothing checks before the router (the request guard looks at requests with a
# body only): they go straight to the router, whose 405 is then answered here, so the
# common case matches the routes once, not twice. A body method is probed first, as its
# 405 must come before the guard authenticates or reads anything.
ANSWERED_AFTER = frozenset({"GET", "HEAD"})


def _routed(routes: Sequence[BaseRoute], scope: Scope, method: str) -> bool:
    probe = {**scope, "method": method}
    return any(route.matches(probe)[0] is Match.FULL for route in routes)


# A path segment that is a 64-hex-digit digest with at least one letter: such a segment
# matches exactly the route templates any other one does (a `{param}`, never a literal
# segment or an `:int`/`:float` convertor), so its paths share one remembered answer.
_DIGEST_SEGMENT = re.compile(r"(?<=/)(?=[0-9]{0,63}[a-f])[0-9a-f]{64}(?=/|$)")
ROUTED_MAX = 1024  # remembered (routes, method, path shape) answers


class _RoutedMemo:
    """`_routed` remembered per (routes, method, path shape), for the body methods that
    must be probed before the guard: matching every route costs a few tenths of a ms."""

    def __init__(self) -> None:
        self._answers: OrderedDict[tuple[int, str, str], bool] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, routes: Sequence[BaseRoute], scope: Scope, method: str) -> bool:
        shape = _DIGEST_SEGMENT.sub("a" * 64, scope["path"])
        key = (len(routes), method, shape)  # routes only grow (include_router)
        with self._lock:
            known = self._answers.get(key)
            if known is not None:
                self._answers.move_to_end(key)
                return known
        answer = _routed(routes, {**scope, "path": shape}, method)
        with self._lock:
            self._answers[key] = answer
            if len(self._answers) > ROUTED_MAX:
                self._answers.popitem(last=False)
        return answer


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str] | None:
    """The methods some route serves at `scope`'s path; None if the router decides alone.

    Only the public `BaseRoute.matches` is asked (so routers included in routers count);
    a path every method reaches (a mounted app) or none reaches is left to the router.
    """
    methods = [method for method in PROBED if _routed(routes, scope, method)]
    if not methods or len(methods) == len(PROBED):
        return None
    return methods


class MethodAnswers:
    """ASGI middleware: OPTIONS and unsupported methods on known paths, per the module doc."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routed = _RoutedMemo()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "app" not in scope:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        routes = scope["app"].router.routes
        if method in ANSWERED_AFTER:
            await self.app(scope, receive, _on_refusal(scope, routes, send))
            return
        if method != "OPTIONS" and self._routed(routes, scope, method):
            await self.app(scope, receive, send)  # the common case: one pass, like the router
            return
        methods = allowed_methods(routes, scope)
        if methods is None:
            await self.app(scope, receive, send)
            return
        allow = ", ".join([*methods, "OPTIONS"])
        if method == "OPTIONS":
            await _answer(send, 204, allow, b"")
            return
        await _answer(send, 405, allow, _refusal_body(method, allow))


def _refusal_body(method: str, allow: str) -> bytes:
    return json.dumps({"detail": f"method {method[:16]!r} is not allowed here; "
                                 f"allowed: {allow}"}).encode("ascii")


def _on_refusal(scope: Scope, routes: Sequence[BaseRoute], send: Send) -> Send:
    """`send`, except that the router's own 405 becomes this module's answer (every
    method of the path in `Allow`); any other answer passes through untouched."""
    replaced: bool | None = None  # undecided until the answer starts

    async def sending(message: Message) -> None:
        nonlocal replaced
        if replaced is None and message["type"] == "http.response.start":
            methods = allowed_methods(routes, scope) if message["status"] == 405 else None
            replaced = methods is not None
            if methods is not None:
                allow = ", ".join([*methods, "OPTIONS"])
                await _answer(send, 405, allow, _refusal_body(scope["method"], allow))
                return
        if not replaced:
            await send(message)

    return sending


async def _answer(send: Send, status: int, allow: str, body: bytes) -> None:
    headers = [(b"allow", allow.encode("ascii"))]
    if body:
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
