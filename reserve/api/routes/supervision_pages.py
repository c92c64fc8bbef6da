"""The dashboard's supervision page: the alert feed, live, and the licence register.

Like the other pages it calls the JSON route functions (same data, same custodian scoping)
and renders them server-side behind the cookie login. The live part is a server-sent
event stream of the same feed (`/dashboard/supervision/stream`, cookie login, GET only):
the browser's EventSource resumes from the last alert id it saw.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from reserve.api.auth import Principal
from reserve.api.deps import Service, get_service
from reserve.api.routes import supervision as supervision_routes
from reserve.api.routes.dashboard import page_principal
from reserve.api.routes.reserve_pages import _page
from reserve.supervision.alerts import SCAN_MAX_DEFAULT

router = APIRouter(include_in_schema=False)
ALERTS_SHOWN = 200
STREAM_SECONDS = 55  # then the browser reconnects with Last-Event-ID


@router.get("/dashboard/supervision", response_class=HTMLResponse)
def supervision_page(request: Request,
                     after: Annotated[int | None, Query(ge=-1,
                                                        le=supervision_routes.SEQ_MAX)] = None,
                     principal: Principal = Depends(page_principal),
                     service: Service = Depends(get_service)) -> HTMLResponse:
    """Without `after`: the alerts among the latest entries (one bounded scan's worth)."""
    if after is None:
        after = max(-1, service.ledger.size() - 1 - SCAN_MAX_DEFAULT)
    page = supervision_routes.alert_page(service, principal, after, ALERTS_SHOWN)
    licences = supervision_routes.list_licences(principal=principal, service=service)
    return _page(request, principal, service, "supervision.html", page=page,
                 alerts=list(reversed(page["alerts"])), licences=licences["licences"])


@router.get("/dashboard/supervision/stream")
def supervision_stream(request: Request,
                       after: Annotated[int, Query(ge=-1,
                                                   le=supervision_routes.SEQ_MAX)] = -1,
                       seconds: Annotated[int, Query(ge=0, le=STREAM_SECONDS)] = STREAM_SECONDS,
                       principal: Principal = Depends(page_principal),
                       service: Service = Depends(get_service)) -> StreamingResponse:
    last = request.headers.get("last-event-id", "")
    start = int(last) if last.isdigit() and int(last) <= supervision_routes.SEQ_MAX else after
    return StreamingResponse(supervision_routes.events(request, service, principal, start,
                                                        seconds),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})
