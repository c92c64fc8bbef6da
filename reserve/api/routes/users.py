"""Users (admin only): the people tokens act for, their roles and vault memberships.

A custodian's vaults bound what they see and may act on. Disabling a user revokes all
their tokens at once. Every change is recorded in the ledger (`auth.user_changed`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from reserve.api import accounts
from reserve.api.auth import PERSON_PATTERN, VAULT_PATTERN, Principal, Role
from reserve.api.deps import Recorder, Service, get_recorder, get_service, require
from reserve.api.openapi import created, errors, link

router = APIRouter(prefix="/api/users", tags=["users"])
admins = require(Role.ADMIN)
Person = Annotated[str, Path(pattern=PERSON_PATTERN)]
VaultId = Annotated[str, Field(pattern=VAULT_PATTERN)]
Text = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


# A custodian belongs to at least one vault. The schema says so (clients and fuzzers see
# it), and the model checks it, so such a body is a 422 like any other schema violation.
CUSTODIAN_NEEDS_A_VAULT: dict[str, Any] = {
    "if": {"properties": {"roles": {"contains": {"const": Role.CUSTODIAN.value}}},
           "required": ["roles"]},
    "then": {"properties": {"vaults": {"minItems": 1}}, "required": ["vaults"]}}


class UserFields(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=CUSTODIAN_NEEDS_A_VAULT)

    name: Text = ""
    institution: Text = ""
    roles: list[Role] = Field(min_length=1, max_length=5)
    vaults: list[VaultId] = Field(default_factory=list, max_length=100,
                                  description="Vaults a custodian belongs to.")

    @model_validator(mode="after")
    def custodian_has_a_vault(self) -> UserFields:
        if Role.CUSTODIAN in self.roles and not self.vaults:
            raise ValueError("a custodian must belong to at least one vault")
        return self


class NewUser(UserFields):
    person: str = Field(pattern=PERSON_PATTERN)


@router.get("", summary="List users", responses=errors(403))
def list_users(_: Principal = Depends(admins),
               service: Service = Depends(get_service)) -> dict[str, Any]:
    return {"users": [user.to_json() for user in service.accounts.users()]}


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user",
             responses={**created("The new user.",
                                  show=link("show_user", "The user.",
                                            person="$response.body#/person"),
                                  disable=link("disable_user", "Disable them.",
                                               person="$response.body#/person")),
                        **errors(400, 403, 409)})
def create(body: NewUser, _: Principal = Depends(admins),
           record: Recorder = Depends(get_recorder),
           service: Service = Depends(get_service)) -> dict[str, Any]:
    user = accounts.create_user(service.accounts, record, person=body.person, name=body.name,
                                institution=body.institution,
                                roles=[role.value for role in body.roles], vaults=body.vaults,
                                now=service.clock())
    return user.to_json()


@router.get("/{person}", summary="One user", operation_id="show_user",
            responses=errors(403, 404))
def show(person: Person, _: Principal = Depends(admins),
         service: Service = Depends(get_service)) -> dict[str, Any]:
    return service.accounts.require_user(person).to_json()


@router.put("/{person}", summary="Replace a user's name, institution, roles and vaults "
                                 "(never the caller's own: another admin must)",
            responses=errors(400, 403, 404, 409))
def update(person: Person, body: UserFields, principal: Principal = Depends(admins),
           record: Recorder = Depends(get_recorder),
           service: Service = Depends(get_service)) -> dict[str, Any]:
    user = accounts.update_user(service.accounts, record, person=person, name=body.name,
                                institution=body.institution,
                                roles=[role.value for role in body.roles], vaults=body.vaults,
                                by=principal.person)
    return user.to_json()


@router.post("/{person}/disable", summary="Disable a user and revoke all their tokens",
             operation_id="disable_user", responses=errors(403, 404, 409))
def disable(person: Person, principal: Principal = Depends(admins),
            record: Recorder = Depends(get_recorder),
            service: Service = Depends(get_service)) -> dict[str, Any]:
    revoked = accounts.disable_user(service.accounts, record, person=person,
                                    by=principal.person, now=service.clock())
    return {"person": person, "revoked_token_ids": revoked}
