"""The public portal: `/public` pages and `/public/api/...` JSON, with no login.

No route here depends on `current_principal` or `page_principal`, so none asks for a
token (and a token or cookie sent along is ignored); every other router keeps its own
`Depends(require(...))`, so nothing else becomes anonymous. What is shown is decided by
the `[public]` table (reserve.config.PublicSettings) and built by reserve.api.public_views;
with `enabled = false` every route here answers 404. Each answer is rate limited per
client address (429 with Retry-After) and carries a strong ETag and a short
Cache-Control (304 on a matching If-None-Match): reserve.api.public_cache.

`/public/log/` (the tile log) belongs to another module. Left out of the OpenAPI schema:
the portal's contract is docs/public-portal.md.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, Response

from reserve import present
from reserve.api import public_views as views
from reserve.api.deps import Service, client_address, get_service
from reserve.api.panels import Chart
from reserve.api.public_cache import matches, strong_etag
from reserve.api.reserve_views import token_units
from reserve.api.routes.dashboard import templates
from reserve.config import PublicSettings


def public_gate(request: Request, service: Service = Depends(get_service)) -> Service:
    """404 while the portal is off; 429 once the caller's address has spent its bucket."""
    settings: PublicSettings | None = service.public
    if settings is None or not settings.enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="the public portal is off")
    verdict = service.public_limiter.take(client_address(request), service.monotonic())
    if not verdict.allowed:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            detail="too many requests from this address; retry later",
                            headers={"Retry-After": str(verdict.retry_after_seconds),
                                     "Cache-Control": "no-store"})
    return service


router = APIRouter(include_in_schema=False)
Gate = Depends(public_gate)
PAGES = (("/public", "Holdings"), ("/public/flows", "Flows"),
         ("/public/statements", "Statements"), ("/public/energy", "Energy"),
         ("/public/checkpoint", "Checkpoint"),
         ("/public/wallets", "Wallets"), ("/public/verify", "Verify it yourself"))


def _cached(request: Request, service: Service, body: bytes, media_type: str,
            status_code: int = 200) -> Response:
    """The answer with its strong ETag and Cache-Control, or 304 when the caller has it."""
    etag = strong_etag(body)
    headers = {"ETag": etag,
               "Cache-Control": f"public, max-age={service.public.max_age_seconds}"}
    if status_code == 200 and matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, status_code=status_code, media_type=media_type, headers=headers)


def _json(request: Request, service: Service, data: Any) -> Response:
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _cached(request, service, body.encode("utf-8"), "application/json")


def _page(request: Request, service: Service, name: str, status_code: int = 200,
          **context: Any) -> Response:
    rendered = templates.get_template(name).render(
        request=request, title=service.options.title, pages=PAGES, here=request.url.path,
        settings=service.public, **context)
    return _cached(request, service, rendered.encode("utf-8"), "text/html; charset=utf-8",
                   status_code)


def _not_found(request: Request, service: Service, message: str) -> Response:
    return _page(request, service, "public/error.html", 404, message=message)


def _charts(listed: list[dict[str, Any]]) -> list[Chart]:
    series = views.flow_series(listed)
    return [Chart(f"{name} (consolidated, per statement)", "sat", tuple(points), asset="BTC")
            for name, points in series.items()]


# -- pages ---------------------------------------------------------------------------------
@router.get("/public", response_class=HTMLResponse)
def holdings_page(request: Request, service: Service = Gate) -> Response:
    found = views.holdings(service.ledger, service.public)
    return _page(request, service, "public/holdings.html", h=found,
                 tokens=token_units(service.ledger))


@router.get("/public/flows", response_class=HTMLResponse)
def flows_page(request: Request, service: Service = Gate) -> Response:
    listed = views.statements(service.ledger, service.public)
    return _page(request, service, "public/flows.html", statements=listed,
                 charts=_charts(listed))


@router.get("/public/statements", response_class=HTMLResponse)
def statements_page(request: Request, service: Service = Gate) -> Response:
    listed = list(reversed(views.statements(service.ledger, service.public)))
    return _page(request, service, "public/statements.html", statements=listed)


def _find(service: Service, sha256: str) -> dict[str, Any] | None:
    if not views.SHA256_HEX.match(sha256):
        return None
    found = [s for s in views.statements(service.ledger, service.public)
             if s["statement_sha256"] == sha256]
    return found[-1] if found else None


@router.get("/public/statements/{sha256}", response_class=HTMLResponse)
def statement_page(request: Request, sha256: str, service: Service = Gate) -> Response:
    found = _find(service, sha256)
    if found is None:
        return _not_found(request, service, "No published statement has that hash.")
    document = views.statement_document(service.public, sha256) is not None
    return _page(request, service, "public/statement.html", s=found, document=document)


@router.get("/public/energy", response_class=HTMLResponse)
def energy_page(request: Request, service: Service = Gate) -> Response:
    listed = views.energy_reports(service.ledger, service.public)
    documents = {r["report_sha256"]: views.energy_report_exported(
        service.public, r["report_sha256"]) for r in listed}
    return _page(request, service, "public/energy.html", reports=listed,
                 documents=documents, money=money)


def money(minor: Any, currency: str) -> str:
    from reserve.mining.export import money as text  # the report's own formatting

    return "-" if minor is None else text(int(minor), currency)


@router.get("/public/checkpoint", response_class=HTMLResponse)
def checkpoint_page(request: Request, service: Service = Gate) -> Response:
    found = views.checkpoint(service.ledger, service.options.anchor_scan_entries)
    return _page(request, service, "public/checkpoint.html", c=found)


@router.get("/public/wallets", response_class=HTMLResponse)
def wallets_page(request: Request, service: Service = Gate) -> Response:
    return _page(request, service, "public/wallets.html",
                 w=views.wallets(service.ledger, service.public))


@router.get("/public/verify", response_class=HTMLResponse)
def verify_page(request: Request, service: Service = Gate) -> Response:
    listed = views.statements(service.ledger, service.public)
    found = views.checkpoint(service.ledger, service.options.anchor_scan_entries)
    return _page(request, service, "public/verify.html",
                 latest=listed[-1] if listed else None, c=found,
                 base=str(request.base_url).rstrip("/"))


# -- JSON ----------------------------------------------------------------------------------
@router.get("/public/api/holdings")
def holdings_json(request: Request, service: Service = Gate) -> Response:
    return _json(request, service, views.holdings(service.ledger, service.public))


@router.get("/public/api/statements")
def statements_json(request: Request, service: Service = Gate) -> Response:
    listed = views.statements(service.ledger, service.public)
    return _json(request, service, {"count": len(listed), "statements": listed})


@router.get("/public/api/statements/{sha256}")
def statement_json(request: Request, sha256: str, service: Service = Gate) -> Response:
    found = _find(service, sha256)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail="no published statement has that hash")
    return _json(request, service, found)


@router.get("/public/api/statements/{sha256}/document")
def statement_document(request: Request, sha256: str, service: Service = Gate) -> Response:
    """The signed document itself, byte for byte, for `reserve statement verify`."""
    data = views.statement_document(service.public, sha256) if _find(service, sha256) \
        else None
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail="the signed document of that statement is not published here")
    return _cached(request, service, data, "application/json")


@router.get("/public/api/energy")
def energy_json(request: Request, service: Service = Gate) -> Response:
    listed = views.energy_reports(service.ledger, service.public)
    return _json(request, service, {"count": len(listed), "reports": listed})


@router.get("/public/api/energy/{sha256}/document")
def energy_document(request: Request, sha256: str, service: Service = Gate) -> Response:
    """The signed energy report itself, byte for byte, for `reserve mining verify`."""
    published = any(r["report_sha256"] == sha256
                    for r in views.energy_reports(service.ledger, service.public))
    data = views.energy_report_document(service.public, sha256) if published else None
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail="the signed document of that energy report is not "
                                   "published here")
    return _cached(request, service, data, "application/json")


@router.get("/public/api/wallets")
def wallets_json(request: Request, service: Service = Gate) -> Response:
    return _json(request, service, views.wallets(service.ledger, service.public))


@router.get("/public/api/checkpoint")
def checkpoint_json(request: Request, service: Service = Gate) -> Response:
    return _json(request, service,
                 views.checkpoint(service.ledger, service.options.anchor_scan_entries))


@router.get("/public/api/checkpoint/note")
def checkpoint_note(request: Request, service: Service = Gate) -> Response:
    """The latest checkpoint's signed note as plain text: `--trusted FILE` for verify."""
    found = views.checkpoint(service.ledger, service.options.anchor_scan_entries)
    if found["checkpoint"] is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no checkpoint has been signed yet")
    return _cached(request, service, found["checkpoint"]["note"].encode("utf-8"),
                   "text/plain; charset=utf-8")


def amount_text(amount: dict[str, Any]) -> str:
    """'1.50000000 BTC', or 'withheld' when the configuration keeps amounts private."""
    if amount.get("units") is None:
        return "withheld"
    return f"{amount['units']} {amount['symbol']}"


templates.env.globals["public_amount"] = amount_text
templates.env.globals["format_amount"] = present.format_amount
