"""API tokens (admin only): issue, list, show, revoke.

The token text is in the response to its issuance and nowhere else, ever; listings show
its id and the first digits of its hash. Issuing and revoking are recorded in the ledger.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from reserve.api import accounts
from reserve.api.auth import PERSON_PATTERN, Principal, Role
from reserve.api.deps import Recorder, Service, get_recorder, get_service, require
from reserve.api.openapi import created, errors, link
from reserve.errors import AccountNotFound

router = APIRouter(prefix="/api/tokens", tags=["tokens"])
admins = require(Role.ADMIN)
TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
ISSUED = {"token_id": "$response.body#/token_id"}  # an OpenAPI link's runtime expression


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: str = Field(pattern=PERSON_PATTERN, description="The user the token acts for.")
    role: Role = Field(description="One of the roles the user holds.")
    expires_in_seconds: int = Field(default=accounts.EXPIRY_SECONDS_DEFAULT,
                                    ge=accounts.EXPIRY_SECONDS_MIN,
                                    le=accounts.EXPIRY_SECONDS_MAX)
    label: str = Field(default="", max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")


@router.get("", summary="List tokens (never their text or full hash)",
            responses=errors(403))
def list_tokens(person: Annotated[str | None, Query(pattern=PERSON_PATTERN)] = None,
                _: Principal = Depends(admins),
                service: Service = Depends(get_service)) -> dict[str, Any]:
    now = service.clock()
    return {"tokens": [token.to_json(now) for token in service.accounts.tokens(person)]}


@router.post("", status_code=status.HTTP_201_CREATED,
             summary="Issue a token; its text is shown in this response only",
             responses={**created("The token, its text shown this once.",
                                  show=link("show_token", "The token's record.", **ISSUED),
                                  revoke=link("revoke_token", "Revoke it.", **ISSUED)),
                        **errors(400, 403, 404, 409)})
def issue(body: TokenRequest, principal: Principal = Depends(admins),
          record: Recorder = Depends(get_recorder),
          service: Service = Depends(get_service)) -> dict[str, Any]:
    now = service.clock()
    issued, token = accounts.issue_token(
        service.accounts, record, person=body.person, role=body.role.value,
        expires_in_seconds=body.expires_in_seconds, label=body.label,
        issued_by=principal.person, now=now)
    return {"token": issued.token, **token.to_json(now)}


@router.get("/{token_id}", summary="One token's record", operation_id="show_token",
            responses=errors(403, 404))
def show(token_id: TokenId, _: Principal = Depends(admins),
         service: Service = Depends(get_service)) -> dict[str, Any]:
    found = service.accounts.token(token_id)
    if found is None:
        raise AccountNotFound(f"no token {token_id}")
    return found.to_json(service.clock())


@router.post("/{token_id}/revoke", summary="Revoke a token (takes effect at once)",
             operation_id="revoke_token", responses=errors(403, 404, 409))
def revoke(token_id: TokenId, principal: Principal = Depends(admins),
           record: Recorder = Depends(get_recorder),
           service: Service = Depends(get_service)) -> dict[str, Any]:
    now = service.clock()
    revoked = accounts.revoke_token(service.accounts, record, token_id=token_id,
                                    by=principal.person, now=now)
    return revoked.to_json(now)
