"""Roles, API tokens and the authentication-failure limiter, as pure logic.

A token is `srl_<id>_<secret>`: the id (16 hex digits) names the token in listings, in
the ledger and on revocation; the secret is 32 random bytes. Only SHA-256 of the whole
token is stored, so a database leak gives no usable token. Each token belongs to one
person and carries one role; custodians are further scoped to the vaults they belong to.

The limiter counts failed authentications per client address in a fixed window and
refuses further attempts from that address until the window ends. Its memory is bounded:
past `clients_max` addresses the least recently seen one is forgotten.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

from reserve.errors import AuthError

TOKEN_PREFIX = "srl_"  # noqa: S105 - a format marker, not a secret
TOKEN_ID_HEX = 16
TOKEN_SECRET_BYTES = 32
TOKEN_LENGTH_MAX = 128
HASH_PREFIX_HEX = 12
PERSON_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
VAULT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_TOKEN_RE = re.compile(r"^srl_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


class Role(StrEnum):
    """What a person may do. Roles are not ranked: each endpoint lists the roles it admits."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    CUSTODIAN = "custodian"
    AUDITOR = "auditor"
    ADMIN = "admin"
    # The regulator's seat: reads everything, moves nothing; may freeze where a vault's
    # policy grants it and acknowledges alerts (docs/supervision.md).
    SUPERVISOR = "supervisor"


ALL_ROLES: frozenset[Role] = frozenset(Role)
# Who may read the whole ledger; custodians read it too, but only entries of their vaults.
LEDGER_READERS: frozenset[Role] = ALL_ROLES


@dataclass(frozen=True)
class IssuedToken:
    """A freshly minted token: `token` is shown once and never stored."""

    token_id: str
    token: str
    token_hash: str

    @property
    def hash_prefix(self) -> str:
        return self.token_hash[:HASH_PREFIX_HEX]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a person acting in one role through one token."""

    person: str
    role: Role
    token_id: str
    vaults: frozenset[str]
    name: str = ""
    institution: str = ""

    def may_see_vault(self, vault: str) -> bool:
        """Custodians see only their vaults; every other role sees all of them."""
        return self.role is not Role.CUSTODIAN or vault in self.vaults


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint_token() -> IssuedToken:
    token_id = secrets.token_hex(TOKEN_ID_HEX // 2)
    token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(TOKEN_SECRET_BYTES)}"
    if _TOKEN_RE.match(token) is None:  # token_urlsafe(32) is always 43 characters
        raise AssertionError("minted token does not match its own format")
    return IssuedToken(token_id=token_id, token=token, token_hash=hash_token(token))


def parse_token(token: str) -> str:
    """The token's id, or AuthError if the text cannot be a token at all."""
    if len(token) > TOKEN_LENGTH_MAX:
        raise AuthError("malformed token")
    match = _TOKEN_RE.match(token)
    if match is None:
        raise AuthError("malformed token")
    return match.group(1)


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_seconds: int = 0


class FailureLimiter:
    """Refuses authentication from an address after too many failures in a window.

    Thread-safe; `now` is a monotonic time in seconds passed in by the caller, so tests
    drive the clock. Memory holds at most `clients_max` addresses.
    """

    def __init__(self, failures_max: int = 10, window_seconds: int = 60,
                 clients_max: int = 10_000) -> None:
        if failures_max < 1 or window_seconds < 1 or clients_max < 1:
            raise ValueError("limiter bounds must be positive")
        self.failures_max = failures_max
        self.window_seconds = window_seconds
        self.clients_max = clients_max
        # address -> (window start, failures in that window)
        self._clients: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, address: str, now: float) -> Verdict:
        with self._lock:
            record = self._clients.get(address)
            if record is None:
                return Verdict(True)
            start, failures = record
            if now - start >= self.window_seconds:
                del self._clients[address]
                return Verdict(True)
            if failures >= self.failures_max:
                remaining = self.window_seconds - (now - start)
                return Verdict(False, max(1, int(remaining + 0.999)))
            return Verdict(True)

    def fail(self, address: str, now: float) -> None:
        with self._lock:
            start, failures = self._clients.pop(address, (now, 0))
            if now - start >= self.window_seconds:
                start, failures = now, 0
            self._clients[address] = (start, failures + 1)  # re-inserted: most recent last
            while len(self._clients) > self.clients_max:
                self._clients.popitem(last=False)

    def tracked(self) -> int:
        with self._lock:
            return len(self._clients)
