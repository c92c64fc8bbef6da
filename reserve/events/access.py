"""Events of access: the record of each state-changing API request, users and tokens."""

from __future__ import annotations

from dataclasses import dataclass

from reserve.events.base import ABSENT, Event, Hex, Json, Time


@dataclass(frozen=True)
class ApiRequest(Event):
    """A state-changing request, recorded by its route in the same batch as its effect
    (`role`, `token_id`, the vault it names, a summary), or by the middleware as a
    fallback when a route did not (`status`, `recorded_by`)."""

    KIND = "api.request"
    method: str
    path: str
    request_id: str
    role: str = ABSENT
    token_id: str | None = ABSENT
    vault: str = ABSENT
    summary: Json = ABSENT
    status: int = ABSENT
    recorded_by: str = ABSENT


@dataclass(frozen=True)
class TokenIssued(Event):
    KIND = "auth.token_issued"
    token_id: str
    hash_prefix: Hex
    person: str
    role: str
    vaults: Json  # [vault name], for a custodian's token
    label: str
    expires_at: Time


@dataclass(frozen=True)
class TokenRevoked(Event):
    KIND = "auth.token_revoked"
    token_id: str
    hash_prefix: Hex
    person: str
    role: str


@dataclass(frozen=True)
class UserChanged(Event):
    """A user created, updated (the user as it now is) or disabled (its tokens revoked)."""

    KIND = "auth.user_changed"
    BY = "change"


@dataclass(frozen=True)
class UserWritten(UserChanged):
    change: str
    user: Json  # reserve.api.store.User.to_json()


@dataclass(frozen=True)
class UserDisabled(UserChanged):
    change: str
    person: str
    revoked_token_ids: Json  # [token id]


UserChanged.VARIANTS = {"created": UserWritten, "updated": UserWritten,
                        "disabled": UserDisabled}

EVENTS: tuple[type[Event], ...] = (ApiRequest, TokenIssued, TokenRevoked, UserChanged)
