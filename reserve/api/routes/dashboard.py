"""The stakeholder dashboard: server-rendered pages, a login form and the ledger explorer.

Logging in stores the token in an HttpOnly, SameSite=Strict cookie, Secure unless the
`[api] cookie_secure = false` opt-out is set for a plain-http demo on localhost; the cookie
is only honoured on GET requests, so the pages read but never change state. The login and
logout forms are refused unless their Origin (or Referer) is this site (reserve.api.guard). Pages are left out
of the OpenAPI schema: the JSON API under /api is the contract, these are views of it.
The "verify this entry" button runs entirely in the browser (static/verify.js).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from reserve.api import entry_words, ledger_views, reserve_views
from reserve.api.auth import TOKEN_LENGTH_MAX, Principal
from reserve.api.deps import COOKIE_NAME, Service, check_token, client_address, get_service
from reserve.api.panels import PanelContext, chart_svg_points
from reserve.api.store import parse_instant
from reserve.ledger.kinds import KINDS

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=FilePath(__file__).resolve().parent.parent / "templates")
templates.env.globals["chart_svg_points"] = chart_svg_points
EXPLORER_PAGE = 50
SEQ_MAX = 2**40


def page_principal(request: Request, service: Service = Depends(get_service)) -> Principal:
    token = request.cookies.get(COOKIE_NAME)
    if not token:
        raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": "/login"})
    try:
        principal = check_token(service, client_address(request), token)
    except HTTPException as error:
        if error.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
            raise
        raise HTTPException(status.HTTP_303_SEE_OTHER,
                            headers={"Location": "/login?expired=1",
                                     "Set-Cookie": f"{COOKIE_NAME}=; Max-Age=0; Path=/"}) from None
    request.state.principal = principal
    return principal


def _render(request: Request, name: str, principal: Principal | None, service: Service,
            status_code: int = 200, headers: Mapping[str, str] | None = None,
            **context: Any) -> HTMLResponse:
    base = {"principal": principal, "title": service.options.title}
    return templates.TemplateResponse(request, name, {**base, **context},
                                      status_code=status_code,
                                      headers=dict(headers) if headers else None)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, expired: int = 0,
               service: Service = Depends(get_service)) -> HTMLResponse:
    message = "Your session ended; log in again." if expired else ""
    return _render(request, "login.html", None, service, message=message)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, token: Annotated[str, Form(max_length=TOKEN_LENGTH_MAX)] = "",
          service: Service = Depends(get_service)) -> Response:
    try:
        principal = check_token(service, client_address(request), token.strip())
    except HTTPException as error:
        return _render(request, "login.html", None, service, status_code=error.status_code,
                       message=f"Login refused: {error.detail}", headers=error.headers)
    record = service.accounts.token(principal.token_id)
    seconds = 3600
    if record is not None:
        seconds = int((parse_instant(record.expires_at) - service.clock()).total_seconds())
    response = RedirectResponse("/dashboard", status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(COOKIE_NAME, token.strip(), max_age=max(1, min(seconds, 86400 * 30)),
                        httponly=True, samesite="strict", secure=service.options.cookie_secure,
                        path="/")
    return response


@router.post("/logout")
def logout(service: Service = Depends(get_service)) -> RedirectResponse:
    response = RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict",
                           secure=service.options.cookie_secure)
    return response


@router.get("/dashboard", response_class=HTMLResponse)
def overview(request: Request, principal: Principal = Depends(page_principal),
             service: Service = Depends(get_service)) -> HTMLResponse:
    ledger = service.ledger
    checkpoint = ledger_views.latest_checkpoint(ledger)
    anchor = ledger_views.latest_anchor(ledger, service.options.anchor_scan_entries)
    panels = service.panels.render(PanelContext(ledger=ledger, principal=principal,
                                                now=service.clock(), service=service))
    return _render(request, "overview.html", principal, service, size=ledger.size(),
                   checkpoint=checkpoint, anchor=anchor, panels=panels,
                   anchor_json=json.dumps(anchor["payload"], indent=1) if anchor else "")


@router.get("/dashboard/ledger", response_class=HTMLResponse)
def explorer(request: Request, start: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
             kind: Annotated[str | None, Query(max_length=64)] = None,
             principal: Principal = Depends(page_principal),
             service: Service = Depends(get_service)) -> HTMLResponse:
    size = service.ledger.size()
    begin = max(0, size - EXPLORER_PAGE) if start is None else min(start, size)
    kinds = frozenset({kind}) if kind in KINDS else None
    page = ledger_views.page(service.ledger, principal, begin, EXPLORER_PAGE, kinds)
    words = _sentences(service, principal, page.entries)
    rows = [{**entry, "payload_text": json.dumps(entry["payload"], indent=1,
                                                 ensure_ascii=False, sort_keys=True),
             "sentence": words[index]}
            for index, entry in reversed(list(enumerate(page.entries)))]
    return _render(request, "ledger.html", principal, service, page=page, rows=rows,
                   kind=kind if kinds else "", kinds=sorted(KINDS),
                   newer=page.stop if page.stop < size else None,
                   older=max(0, begin - EXPLORER_PAGE) if begin > 0 else None)


@router.get("/dashboard/ledger/{seq}", response_class=HTMLResponse)
def entry_page(request: Request, seq: Annotated[int, Path(ge=0, le=SEQ_MAX)],
               principal: Principal = Depends(page_principal),
               service: Service = Depends(get_service)) -> HTMLResponse:
    size = service.ledger.size()
    if seq >= size:
        return _render(request, "error.html", principal, service, status_code=404,
                       message=f"No entry {seq}: the ledger holds {size} entries.")
    entry = service.ledger.entry(seq)
    if not ledger_views.may_see(principal, entry):
        return _render(request, "error.html", principal, service, status_code=404,
                       message=f"No entry {seq} among the entries you may see.")
    data = ledger_views.entry_json(entry)
    return _render(request, "entry.html", principal, service, entry=data,
                   sentence=_sentences(service, principal, [data])[0],
                   payload_text=json.dumps(entry.payload, indent=2, ensure_ascii=False,
                                           sort_keys=True))


def _sentences(service: Service, principal: Principal,
               entries: list[dict[str, Any]]) -> list[str]:
    """Each entry as a sentence, with the proposals they name looked up once."""
    digests = {d for e in entries if (d := entry_words.digests_named(e["kind"], e["payload"]))}
    briefs: dict[str, entry_words.ProposalBrief] = {}
    if digests:
        with reserve_views.workflow_access(service).reading() as workflow:
            briefs = reserve_views.proposal_briefs(workflow, principal, digests)
    return [entry_words.sentence(e["kind"], e["actor"], e["payload"], briefs)
            for e in entries]
