"""The dashboard's proposal page: one proposal with the policy's decision explained.

A view of `GET /api/proposals/{digest}` for people: same data, same custodian scoping,
rendered server-side (cookie login, GET only). Left out of the OpenAPI schema like the
other pages.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse

from reserve.api import reserve_views as views
from reserve.api.auth import Principal
from reserve.api.deps import Service, get_service, require_vault
from reserve.api.routes.dashboard import page_principal, templates
from reserve.api.routes.proposals import DIGEST_PATTERN, detail, find, unknown_proposal

router = APIRouter(include_in_schema=False)


def _page(request: Request, principal: Principal, service: Service, name: str,
          status_code: int = 200, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"principal": principal,
                                                      "title": service.options.title,
                                                      **context}, status_code=status_code)


@router.get("/dashboard/proposals/{digest}", response_class=HTMLResponse)
def proposal_page(request: Request, digest: Annotated[str, Path(pattern=DIGEST_PATTERN)],
                  principal: Principal = Depends(page_principal),
                  service: Service = Depends(get_service)) -> HTMLResponse:
    with views.workflow_access(service).reading() as workflow:
        try:
            found = find(workflow, digest)
            require_vault(principal, found.proposal.vault, unknown_proposal(digest))
        except HTTPException as error:  # unknown, or another vault's: the same 404
            return _page(request, principal, service, "error.html", 404,
                         message=str(error.detail))
        return _page(request, principal, service, "proposal.html",
                     p=detail(service, workflow, found),
                     labels=views.destination_labels(workflow, found.proposal.vault))
