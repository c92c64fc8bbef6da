"""Issuing, revoking and checking API tokens, and managing users, with a ledger record.

Shared by the HTTP routes and the `reserve token` command. Each operation takes a
`record` callable that appends its ledger entries (the API adds its `api.request` entry
to the same batch; the CLI appends them alone). The order of the two writes is chosen so
a failure between them errs on the safe side: an issuance is recorded before the token
row exists (no token ever works without its ledger record), while a revocation takes
effect in the database before it is recorded (a revoked token never keeps working
because the ledger was unavailable). Neither the token nor its full hash enters the
ledger: only the token id and the first digits of the hash.
"""

from __future__ import annotations

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
from reserve.api.store import AccountStore, TokenRecord, User, format_instant, parse_instant
from reserve.errors import AccountConflict, AccountError, AuthError

Record = Callable[[list[tuple[str, dict[str, Any]]]], None]
EXPIRY_SECONDS_MIN = 60
EXPIRY_SECONDS_MAX = 366 * 24 * 3600
EXPIRY_SECONDS_DEFAULT = 30 * 24 * 3600


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
                institution: str, roles: Sequence[str], vaults: Sequence[str]) -> User:
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


def issue_token(store: AccountStore, record: Record, *, person: str, role: str,
                expires_in_seconds: int, label: str, issued_by: str,
                now: datetime) -> tuple[IssuedToken, TokenRecord]:
    """Mint a token for `person` acting as `role`; the token text is returned only here."""
    if not EXPIRY_SECONDS_MIN <= expires_in_seconds <= EXPIRY_SECONDS_MAX:
        raise AccountError(f"expiry must be {EXPIRY_SECONDS_MIN} to {EXPIRY_SECONDS_MAX} "
                           f"seconds, got {expires_in_seconds}")
    user = store.require_user(person)
    if user.disabled_at is not None:
        raise AccountConflict(f"user {person!r} is disabled")
    if role not in user.roles:
        raise AccountConflict(f"user {person!r} does not hold the role {role!r} "
                              f"(holds {list(user.roles)})")
    issued = mint_token()
    token = TokenRecord(token_id=issued.token_id, token_hash=issued.token_hash, person=person,
                        role=role, label=label, issued_by=issued_by,
                        created_at=format_instant(now),
                        expires_at=format_instant(now + timedelta(seconds=expires_in_seconds)))
    record([("auth.token_issued", {
        "token_id": token.token_id, "hash_prefix": issued.token_hash[:HASH_PREFIX_HEX],
        "person": person, "role": role, "vaults": list(user.vaults) if role == "custodian"
        else [], "label": label, "expires_at": token.expires_at})])
    store.insert_token(token)
    return issued, token


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
    found = store.token(token_id)
    if found is None or not token_matches(token, found.token_hash):
        raise AuthError("unknown token")
    if found.revoked_at is not None:
        raise AuthError("token revoked")
    if parse_instant(found.expires_at) <= now:
        raise AuthError("token expired")
    user = store.user(found.person)
    if user is None or user.disabled_at is not None:
        raise AuthError("user disabled")
    if found.role not in user.roles:
        raise AuthError("the token's role was withdrawn from its user")
    return Principal(person=user.person, role=Role(found.role), token_id=found.token_id,
                     vaults=frozenset(user.vaults), name=user.name,
                     institution=user.institution)
