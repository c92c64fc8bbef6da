"""The dashboard's proposal pages: one proposal with the policy's decision explained, and
the open proposals a page at a time.

The proposal page is a view of `GET /api/proposals/{digest}` for people: same data, same
custodian scoping, rendered server-side (cookie login, GET only). The open proposals page
(`/dashboard/proposals?before=SEQ`) shows `reserve_views.PENDING_PAGE` of them, newest
first, each with its decision, and links to the next older page: its cost is the page,
not the number of open proposals. Left out of the OpenAPI schema like the other pages.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse

from reserve.api import reserve_views as views
from reserve.api.auth import Principal
from reserve.api.deps import Service, get_service, require_vault
from reserve.api.routes.dashboard import page_principal, templates
from reserve.api.routes.proposals import DIGEST_PATTERN, detail, find, unknown_proposal

router = APIRouter(include_in_schema=False)
SEQ_MAX = 2**40


def _page(request: Request, principal: Principal, service: Service, name: str,
          status_code: int = 200, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"principal": principal,
                                                      "title": service.options.title,
                                                      **context}, status_code=status_code)


@router.get("/dashboard/proposals", response_class=HTMLResponse)
def open_proposals_page(request: Request,
                        before: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
                        principal: Principal = Depends(page_principal),
                        service: Service = Depends(get_service)) -> HTMLResponse:
    with views.workflow_access(service).reading() as workflow:
        counts = views.open_counts(workflow, principal)
        shown, older = views.open_page(workflow, principal, before_seq=before,
                                       limit=views.PENDING_PAGE)
        rows = views.pending_rows(workflow, shown, service.clock())
    return _page(request, principal, service, "proposals.html", proposals=rows,
                 counts=counts, total=sum(counts.values()), before=before, older=older,
                 page_size=views.PENDING_PAGE)


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
