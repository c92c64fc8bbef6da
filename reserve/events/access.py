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
    """A token minted. One issued for someone other than the requesting admin names both
    admins (`requested_by`, `approved_by`); one issued at once names neither."""

    KIND = "auth.token_issued"
    token_id: str
    hash_prefix: Hex
    person: str
    role: str
    vaults: Json  # [vault name], for a custodian's token
    label: str
    expires_at: Time
    requested_by: str = ABSENT
    approved_by: str = ABSENT
    grant_id: str = ABSENT


@dataclass(frozen=True)
class TokenRequested(Event):
    """An admin asked for a token for someone else: nothing is issued until a second admin
    approves grant `grant_id` (before `grant_expires_at`)."""

    KIND = "auth.token_requested"
    grant_id: str
    person: str
    role: str
    label: str
    expires_in_seconds: int
    requested_by: str
    grant_expires_at: Time


@dataclass(frozen=True)
class TokenRequestRejected(Event):
    """A pending grant closed without issuing a token (by the entry's actor)."""

    KIND = "auth.token_request_rejected"
    grant_id: str
    person: str
    role: str
    requested_by: str


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

EVENTS: tuple[type[Event], ...] = (ApiRequest, TokenIssued, TokenRequested,
                                   TokenRequestRejected, TokenRevoked, UserChanged)
