"""API tokens (admin only): issue, list, show, revoke, and grants awaiting a second admin.

The token text is in the response to its issuance and nowhere else, ever; listings show
its id and the first digits of its hash. Issuing and revoking are recorded in the ledger.

Separation of duties: an admin's token for themselves, or a viewer token for anyone, is
issued at once (201). A token of any other role for someone else is not: the answer is
202 with a pending grant (`auth.token_requested`), which a different admin approves
(`POST /api/tokens/grants/{grant_id}/approve`, 201 with the token; its `auth.token_issued`
entry names `requested_by` and `approved_by`) or either rejects, within 24 hours.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from reserve.api import accounts
from reserve.api.auth import PERSON_PATTERN, Principal, Role
from reserve.api.deps import Recorder, Service, get_recorder, get_service, require
from reserve.api.openapi import accepted, created, errors, link
from reserve.errors import AccountNotFound

router = APIRouter(prefix="/api/tokens", tags=["tokens"])
admins = require(Role.ADMIN)
TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
GrantId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
ISSUED = {"token_id": "$response.body#/token_id"}  # an OpenAPI link's runtime expression
REQUESTED = {"grant_id": "$response.body#/grant_id"}


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
             summary="Issue a token (201, its text shown in this response only), or ask a "
                     "second admin to approve one for someone else (202)",
             responses={**created("The token, its text shown this once.",
                                  show=link("show_token", "The token's record.", **ISSUED),
                                  revoke=link("revoke_token", "Revoke it.", **ISSUED)),
                        **accepted("Nothing issued yet: a pending grant that a different "
                                   "admin must approve.",
                                   approve=link("approve_grant", "Approve it.", **REQUESTED),
                                   reject=link("reject_grant", "Reject it.", **REQUESTED)),
                        **errors(400, 403, 404, 409)})
def issue(body: TokenRequest, principal: Principal = Depends(admins),
          record: Recorder = Depends(get_recorder),
          service: Service = Depends(get_service)) -> Any:
    now = service.clock()
    if accounts.needs_approval(person=body.person, role=body.role.value,
                               by=principal.person):
        grant = accounts.request_token(
            service.accounts, record, person=body.person, role=body.role.value,
            expires_in_seconds=body.expires_in_seconds, label=body.label,
            requested_by=principal.person, now=now)
        return JSONResponse(grant.to_json(now), status_code=status.HTTP_202_ACCEPTED)
    issued, token = accounts.issue_token(
        service.accounts, record, person=body.person, role=body.role.value,
        expires_in_seconds=body.expires_in_seconds, label=body.label,
        issued_by=principal.person, now=now)
    return {"token": issued.token, **token.to_json(now)}


@router.get("/grants", summary="Grants awaiting a second admin", responses=errors(403))
def list_grants(_: Principal = Depends(admins),
                service: Service = Depends(get_service)) -> dict[str, Any]:
    now = service.clock()
    return {"grants": [grant.to_json(now) for grant in service.accounts.pending_grants()]}


@router.post("/grants/{grant_id}/approve", status_code=status.HTTP_201_CREATED,
             summary="Approve another admin's grant: issues the token, its text shown in "
                     "this response only",
             operation_id="approve_grant",
             responses={**created("The token, its text shown this once.",
                                  show=link("show_token", "The token's record.", **ISSUED),
                                  revoke=link("revoke_token", "Revoke it.", **ISSUED)),
                        **errors(403, 404, 409)})
def approve(grant_id: GrantId, principal: Principal = Depends(admins),
            record: Recorder = Depends(get_recorder),
            service: Service = Depends(get_service)) -> dict[str, Any]:
    now = service.clock()
    issued, token = accounts.approve_grant(service.accounts, record, grant_id=grant_id,
                                           by=principal.person, now=now)
    return {"token": issued.token, "grant_id": grant_id, **token.to_json(now)}


@router.post("/grants/{grant_id}/reject", summary="Reject a pending grant",
             operation_id="reject_grant", responses=errors(403, 404, 409))
def reject(grant_id: GrantId, principal: Principal = Depends(admins),
           record: Recorder = Depends(get_recorder),
           service: Service = Depends(get_service)) -> dict[str, Any]:
    now = service.clock()
    return accounts.reject_grant(service.accounts, record, grant_id=grant_id,
                                 by=principal.person, now=now).to_json(now)


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
