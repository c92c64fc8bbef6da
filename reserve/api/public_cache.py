"""The public portal's caching and rate limit, as small pure pieces.

Every public answer carries a strong ETag, the SHA-256 of its body, and a short
`Cache-Control: public, max-age=N`; a request whose `If-None-Match` names the current
ETag gets `304 Not Modified` with no body. Each client address draws from a token
bucket: `burst` requests at once, refilled at `rate_per_minute`; an empty bucket answers
`429` with `Retry-After` (whole seconds until the next token). Memory is bounded: past
`clients_max` addresses the least recently seen one is forgotten.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict

from reserve.api.auth import Verdict


def strong_etag(body: bytes) -> str:
    """The quoted SHA-256 of the body: equal bodies, equal tags (RFC 9110 §8.8.3)."""
    return '"' + hashlib.sha256(body).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """True when an If-None-Match header names `etag` (or is `*`); weak tags compare weakly,
    as RFC 9110 §13.1.2 asks for If-None-Match."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


class RequestLimiter:
    """A token bucket per client address. Thread-safe; `now` is monotonic seconds given by
    the caller, so tests drive the clock."""

    def __init__(self, rate_per_minute: int, burst: int, clients_max: int = 10_000) -> None:
        if rate_per_minute < 1 or burst < 1 or clients_max < 1:
            raise ValueError("limiter bounds must be positive")
        self.rate = rate_per_minute / 60.0  # tokens per second
        self.burst = burst
        self.clients_max = clients_max
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # (tokens, at)
        self._lock = threading.Lock()

    def take(self, address: str, now: float) -> Verdict:
        """Spend one token of `address`'s bucket, or say how long until there is one."""
        with self._lock:
            tokens, at = self._buckets.pop(address, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[address] = (tokens - 1.0, now)
                verdict = Verdict(True)
            else:
                self._buckets[address] = (tokens, now)
                verdict = Verdict(False, max(1, math.ceil((1.0 - tokens) / self.rate)))
            while len(self._buckets) > self.clients_max:
                self._buckets.popitem(last=False)
            return verdict

    def tracked(self) -> int:
        with self._lock:
            return len(self._buckets)
