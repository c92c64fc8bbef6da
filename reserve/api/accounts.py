"""Issuing, revoking and checking API tokens, and managing users, with a ledger record.

Shared by the HTTP routes and the `reserve token` command. Each operation takes a
`record` callable that appends its ledger entries (the API adds its `api.request` entry
to the same batch; the CLI appends them alone). The order of the two writes is chosen so
a failure between them errs on the safe side: an issuance is recorded before the token
row exists (no token ever works without its ledger record), while a revocation takes
effect in the database before it is recorded (a revoked token never keeps working
because the ledger was unavailable). Neither the token nor its full hash enters the
ledger: only the token id and the first digits of the hash.

Separation of duties: a token for someone other than the admin who asks, for any role but
viewer (which reads only what every admin may read anyway), is not issued at once through
the API. `request_token` keeps a pending grant; a different admin's `approve_grant` issues
it, and its `auth.token_issued` entry names both admins. The local `reserve token issue`
command (database access, bootstrapping the first admin) still calls `issue_token` alone.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from reserve.api.auth import (
    HASH_PREFIX_HEX,
    IssuedToken,
    Principal,
    Role,
    mint_token,
    parse_token,
    token_matches,
)
from reserve.api.store import (
    AccountStore,
    TokenGrant,
    TokenRecord,
    User,
    format_instant,
    parse_instant,
)
from reserve.errors import AccountConflict, AccountError, AccountNotFound, AuthError
from reserve.events.access import TokenIssued, TokenRequested, TokenRequestRejected

Record = Callable[[list[tuple[str, dict[str, Any]]]], None]
EXPIRY_SECONDS_MIN = 60
EXPIRY_SECONDS_MAX = 366 * 24 * 3600
EXPIRY_SECONDS_DEFAULT = 30 * 24 * 3600
GRANT_SECONDS = 24 * 3600  # a pending grant not approved within this is void
SINGLE_STEP_ROLES = frozenset({Role.VIEWER.value})  # issued for anyone by one admin


def _check_roles(roles: Sequence[str], vaults: Sequence[str]) -> tuple[tuple[str, ...],
                                                                        tuple[str, ...]]:
    known = {role.value for role in Role}
    unknown = [role for role in roles if role not in known]
    if unknown or not roles:
        raise AccountError(f"roles must be a non-empty subset of {sorted(known)}, "
                           f"got {list(roles)}")
    if Role.CUSTODIAN.value in roles and not vaults:
        raise AccountError("a custodian must belong to at least one vault")
    return tuple(sorted(set(roles))), tuple(sorted(set(vaults)))


def create_user(store: AccountStore, record: Record, *, person: str, name: str,
                institution: str, roles: Sequence[str], vaults: Sequence[str],
                now: datetime) -> User:
    clean_roles, clean_vaults = _check_roles(roles, vaults)
    user = User(person=person, name=name, institution=institution, roles=clean_roles,
                vaults=clean_vaults, created_at=format_instant(now))
    if store.user(person) is not None:
        raise AccountConflict(f"user {person!r} already exists")
    record([("auth.user_changed", {"change": "created", "user": user.to_json()})])
    return store.create_user(user)


def update_user(store: AccountStore, record: Record, *, person: str, name: str,
                institution: str, roles: Sequence[str], vaults: Sequence[str],
                by: str | None = None) -> User:
    """Replace a user's fields. `by` (the admin asking, through the API) may not change
    their own user: another admin must grant or withdraw an admin's roles."""
    if by is not None and person == by:
        raise AccountConflict("an admin cannot change their own user; another admin must")
    current = store.require_user(person)
    if current.disabled_at is not None:
        raise AccountConflict(f"user {person!r} is disabled")
    clean_roles, clean_vaults = _check_roles(roles, vaults)
    changed = User(person=person, name=name, institution=institution, roles=clean_roles,
                   vaults=clean_vaults, created_at=current.created_at)
    # A narrowing change (fewer roles or vaults) must not wait on the ledger; record after.
    updated = store.update_user(changed)
    record([("auth.user_changed", {"change": "updated", "user": updated.to_json()})])
    return updated


def disable_user(store: AccountStore, record: Record, *, person: str, by: str,
                 now: datetime) -> list[str]:
    if person == by:
        raise AccountConflict("an admin cannot disable their own user")
    revoked = store.disable_user(person, by, now)
    record([("auth.user_changed", {"change": "disabled", "person": person,
                                   "revoked_token_ids": revoked})])
    return revoked


def _check_token_for(store: AccountStore, *, person: str, role: str,
                     expires_in_seconds: int) -> User:
    if not EXPIRY_SECONDS_MIN <= expires_in_seconds <= EXPIRY_SECONDS_MAX:
        raise AccountError(f"expiry must be {EXPIRY_SECONDS_MIN} to {EXPIRY_SECONDS_MAX} "
                           f"seconds, got {expires_in_seconds}")
    user = store.require_user(person)
    if user.disabled_at is not None:
        raise AccountConflict(f"user {person!r} is disabled")
    if role not in user.roles:
        raise AccountConflict(f"user {person!r} does not hold the role {role!r} "
                              f"(holds {list(user.roles)})")
    return user


def issue_token(store: AccountStore, record: Record, *, person: str, role: str,
                expires_in_seconds: int, label: str, issued_by: str,
                now: datetime, grant: TokenGrant | None = None,
                minted: IssuedToken | None = None) -> tuple[IssuedToken, TokenRecord]:
    """Mint a token for `person` acting as `role`; the token text is returned only here.
    With `grant` (already closed as approved by `issued_by`), the entry names both admins."""
    user = _check_token_for(store, person=person, role=role,
                            expires_in_seconds=expires_in_seconds)
    issued = minted or mint_token()
    token = TokenRecord(token_id=issued.token_id, token_hash=issued.token_hash, person=person,
                        role=role, label=label, issued_by=issued_by,
                        created_at=format_instant(now),
                        expires_at=format_instant(now + timedelta(seconds=expires_in_seconds)))
    event = TokenIssued(
        token_id=token.token_id, hash_prefix=issued.token_hash[:HASH_PREFIX_HEX],
        person=person, role=role, vaults=list(user.vaults) if role == "custodian" else [],
        label=label, expires_at=parse_instant(token.expires_at))
    if grant is not None:
        event = dataclasses.replace(event, requested_by=grant.requested_by,
                                    approved_by=issued_by, grant_id=grant.grant_id)
    record([(TokenIssued.KIND, event.to_payload())])
    store.insert_token(token)
    return issued, token


def needs_approval(*, person: str, role: str, by: str) -> bool:
    """Whether admin `by` asking for a `role` token for `person` needs a second admin."""
    return person != by and role not in SINGLE_STEP_ROLES


def request_token(store: AccountStore, record: Record, *, person: str, role: str,
                  expires_in_seconds: int, label: str, requested_by: str,
                  now: datetime) -> TokenGrant:
    """Keep a pending grant for a token another admin must approve; nothing is issued."""
    _check_token_for(store, person=person, role=role, expires_in_seconds=expires_in_seconds)
    grant = TokenGrant(grant_id=secrets.token_hex(8), person=person, role=role, label=label,
                       expires_in_seconds=expires_in_seconds, requested_by=requested_by,
                       created_at=format_instant(now),
                       expires_at=format_instant(now + timedelta(seconds=GRANT_SECONDS)))
    record([(TokenRequested.KIND, TokenRequested(
        grant_id=grant.grant_id, person=person, role=role, label=label,
        expires_in_seconds=expires_in_seconds, requested_by=requested_by,
        grant_expires_at=parse_instant(grant.expires_at)).to_payload())])
    return store.insert_grant(grant)


def _pending(store: AccountStore, grant_id: str, now: datetime) -> TokenGrant:
    grant = store.grant(grant_id)
    if grant is None:
        raise AccountNotFound(f"no grant {grant_id}")
    if grant.state != "pending":
        raise AccountConflict(f"grant {grant_id} was already {grant.state}")
    return grant


def approve_grant(store: AccountStore, record: Record, *, grant_id: str, by: str,
                  now: datetime) -> tuple[IssuedToken, TokenRecord]:
    """Issue the token of a pending grant, as a second admin `by`. The grant is closed
    before the token exists: a failure between leaves a closed grant and no token (ask
    again), never a grant that could be approved twice."""
    grant = _pending(store, grant_id, now)
    if grant.requested_by == by:
        raise AccountConflict(f"grant {grant_id} was requested by {by!r}: another admin "
                              "must approve it")
    if parse_instant(grant.expires_at) <= now:
        raise AccountConflict(f"grant {grant_id} expired at {grant.expires_at}; ask again")
    _check_token_for(store, person=grant.person, role=grant.role,
                     expires_in_seconds=grant.expires_in_seconds)
    minted = mint_token()
    closed = store.close_grant(grant_id, "approved", by, now, token_id=minted.token_id)
    issued, token = issue_token(store, record, person=grant.person, role=grant.role,
                                expires_in_seconds=grant.expires_in_seconds,
                                label=grant.label, issued_by=by, now=now, grant=closed,
                                minted=minted)
    return issued, token


def reject_grant(store: AccountStore, record: Record, *, grant_id: str, by: str,
                 now: datetime) -> TokenGrant:
    """Close a pending grant without a token (any admin, its requester included)."""
    _pending(store, grant_id, now)
    closed = store.close_grant(grant_id, "rejected", by, now)
    record([(TokenRequestRejected.KIND, TokenRequestRejected(
        grant_id=grant_id, person=closed.person, role=closed.role,
        requested_by=closed.requested_by).to_payload())])
    return closed


def revoke_token(store: AccountStore, record: Record, *, token_id: str, by: str,
                 now: datetime) -> TokenRecord:
    revoked = store.revoke_token(token_id, by, now)
    record([("auth.token_revoked", {"token_id": token_id,
                                    "hash_prefix": revoked.token_hash[:HASH_PREFIX_HEX],
                                    "person": revoked.person, "role": revoked.role})])
    return revoked


def authenticate(store: AccountStore, token: str, now: datetime) -> Principal:
    """The principal behind `token`, or AuthError saying why it is refused."""
    token_id = parse_token(token)
    return _principal(token, store.credentials(token_id), now)  # one query


def authenticate_at_head(store: AccountStore, token: str, now: datetime
                         ) -> tuple[Principal, tuple[int, bytes]]:
    """`authenticate`, and the ledger's head read in the same statement (a store on the
    ledger's database: `AccountStore.shares_database`)."""
    token_id = parse_token(token)
    credentials, head = store.credentials_and_head(token_id)
    principal = _principal(token, credentials, now)
    if head is None:
        raise AuthError("unknown token")
    return principal, head


async def authenticate_at_head_async(store: AccountStore, token: str,
                                     now: Callable[[], datetime]
                                     ) -> tuple[Principal, tuple[int, bytes]]:
    """`authenticate_at_head` on the event loop (`AccountStore.reads_on_loop`); `now` is
    read once the row has come back."""
    token_id = parse_token(token)
    credentials, head = await store.credentials_and_head_async(token_id)
    principal = _principal(token, credentials, now())
    if head is None:
        raise AuthError("unknown token")
    return principal, head


# Tokens found valid, by (token, id of the credentials it was checked against): the store
# hands out the same credentials objects for an unchanged row, so a hit means the same token
# text against the same row values (held here, so their ids are not reused); only expiry,
# a function of the time, is checked again.
_VALID: dict[tuple[str, int], tuple[tuple[TokenRecord, User | None], Principal, datetime]] = {}
VALID_MAX = 1024


def _principal(token: str, credentials: tuple[TokenRecord, User | None] | None,
               now: datetime) -> Principal:
    if credentials is not None:
        kept = _VALID.get((token, id(credentials)))
        if kept is not None and kept[0] is credentials:
            if kept[2] <= now:
                raise AuthError("token expired")
            return kept[1]
    principal, expires = _checked_principal(token, credentials, now)
    if credentials is not None:
        if len(_VALID) >= VALID_MAX:
            _VALID.clear()
        _VALID[(token, id(credentials))] = (credentials, principal, expires)
    return principal


def _checked_principal(token: str, credentials: tuple[TokenRecord, User | None] | None,
                       now: datetime) -> tuple[Principal, datetime]:
    """The principal and the token's expiry, or AuthError saying why it is refused."""
    if credentials is None or not token_matches(token, credentials[0].token_hash):
        raise AuthError("unknown token")
    found, user = credentials
    if found.revoked_at is not None:
        raise AuthError("token revoked")
    expires = parse_instant(found.expires_at)
    if expires <= now:
        raise AuthError("token expired")
    if user is None or user.disabled_at is not None:
        raise AuthError("user disabled")
    if found.role not in user.roles:
        raise AuthError("the token's role was withdrawn from its user")
    return Principal(person=user.person, role=Role(found.role), token_id=found.token_id,
                     vaults=frozenset(user.vaults), name=user.name,
                     institution=user.institution), expires
