"""What the OpenAPI schema promises beyond FastAPI's defaults: error answers, auth, links.

Every route lists the error statuses it can answer with `responses=errors(...)`, each with
the one error body the service renders (`{"detail": "<sentence>"}`, see
`reserve.api.app`); 422 stays FastAPI's own list-shaped validation error. A route that
documents 401 needs a bearer token, and `install` marks it so in the schema. Links say
which operation reads what another created (the proposal digest a `POST /api/proposals`
answers with names the proposal in `GET /api/proposals/{digest}`), so clients and
stateful fuzzers can follow them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

BEARER = "bearer"
ERROR_MEANINGS: dict[int, str] = {
    400: "Well-formed but refused: the body is not JSON, or the vault's policy, a signature "
         "check or an account rule refuses it; nothing was written.",
    401: "No token, or the token is malformed, unknown, expired or revoked.",
    403: "The caller's role may not do this, or a custodian acts outside their vaults.",
    404: "No such object (or, for a custodian, none in their vaults).",
    409: "The object's current state does not allow this (for example a vote on a closed "
         "proposal).",
    413: "The request body is larger than the service accepts (`[api] body_bytes_max`); "
         "nothing was read past the limit.",
    429: "Too many failed authentications from this address; retry after `Retry-After`.",
    503: "The ledger database or a required key or node is not available.",
}
# Every authenticated route can answer these: missing or bad token, rate-limited failures.
AUTHENTICATED = (401, 429)


class ErrorBody(BaseModel):
    """The body of every error the service itself decides: one sentence for a person."""

    detail: str


def errors(*codes: int, authenticated: bool = True) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route decorator: the given statuses, plus 401/429 if authenticated,
    plus 413 wherever a body is taken (the routes that document 400)."""
    bodies = {413} if 400 in codes else set()
    chosen = sorted(set(codes) | bodies | (set(AUTHENTICATED) if authenticated else set()))
    unknown = [code for code in chosen if code not in ERROR_MEANINGS]
    if unknown:
        raise ValueError(f"no documented meaning for status {unknown}")
    return {code: {"model": ErrorBody, "description": ERROR_MEANINGS[code]} for code in chosen}


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link object: `parameters` map the target's names to runtime expressions."""
    return {"operationId": operation_id, "description": description, "parameters": parameters}


def created(description: str, **links: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry for a 201 answer with links to the operations that read it."""
    return {201: {"description": description, "links": links}}


def accepted(description: str, **links: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry for a 202 answer: the request is kept, not yet carried out."""
    return {202: {"description": description, "links": links,
                  "content": {"application/json": {"schema": {"type": "object"}}}}}


def ok(description: str, **links: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """`responses=` entry for a 200 answer with links."""
    return {200: {"description": description, "links": links}}


def install(app: FastAPI) -> None:
    """Generate the schema once, with the bearer scheme on every route that documents 401."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        components = document.setdefault("components", {})
        components.setdefault("securitySchemes", {})[BEARER] = {
            "type": "http", "scheme": "bearer",
            "description": "An API token `srl_<id>_<secret>` issued by an admin."}
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                if "401" in operation.get("responses", {}):
                    operation["security"] = [{BEARER: []}]
        app.openapi_schema = document
        return document

    app.openapi = schema  # type: ignore[method-assign]
