"""The dashboard's reserve pages: vaults, transfers, checkpoints, reconciliation reports.

Views of the JSON routes for people: each page calls the very route function that serves
`/api/...` (so the data, its limits and the custodian scoping are the API's own) and
renders it server-side (cookie login, GET only). A vault, transfer or report a custodian
may not see answers the same 404 page as one that does not exist. Left out of the OpenAPI
schema like the other pages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from reserve import present
from reserve.api import reserve_views as views
from reserve.api.auth import VAULT_PATTERN, Principal
from reserve.api.deps import Service, get_service
from reserve.api.routes import ledger as ledger_routes
from reserve.api.routes import reconcile as reconcile_routes
from reserve.api.routes import transfers as transfer_routes
from reserve.api.routes import vaults as vault_routes
from reserve.api.routes.dashboard import page_principal, templates
from reserve.errors import EventError, LedgerError
from reserve.events.records import CheckpointAnchored, LedgerAnchor

router = APIRouter(include_in_schema=False)
CHECKPOINTS_PAGE = 20
REPORTS_SHOWN = 20
TRANSFERS_SHOWN = 200
HISTORY_SHOWN = 20
SEQ_MAX = 2**40


def amount_html(base: object, asset: str, tokens: object = None) -> Markup:
    """An amount in asset units, its exact base units on hover: '1.50000000 BTC'.

    `tokens` (reserve_views.token_units, in every page's context) names the vaults' tokens
    by their own symbol and decimals."""
    try:
        value = int(str(base))
    except ValueError:
        return escape(f"{base} {asset}")
    known = tokens if isinstance(tokens, Mapping) else None
    unit = present.unit_of(asset, known)
    return Markup('<span class="amount" title="{}">{}</span>').format(
        present.base_units_text(value, unit.base), present.format_amount(value, asset, known))


templates.env.globals["amount_html"] = amount_html


def _page(request: Request, principal: Principal, service: Service, name: str,
          status_code: int = 200, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"principal": principal,
                                                      "title": service.options.title,
                                                      "tokens": views.token_units(
                                                          service.ledger),
                                                      **context}, status_code=status_code)


def _not_found(request: Request, principal: Principal, service: Service,
               message: str) -> HTMLResponse:
    return _page(request, principal, service, "error.html", 404, message=message)


# -- vaults ------------------------------------------------------------------------------
@router.get("/dashboard/vaults", response_class=HTMLResponse)
def vaults_page(request: Request, principal: Principal = Depends(page_principal),
                service: Service = Depends(get_service)) -> HTMLResponse:
    found = vault_routes.catalogue(service, principal)
    return _page(request, principal, service, "vaults.html", vaults=found)


@router.get("/dashboard/vaults/{vault}", response_class=HTMLResponse)
def vault_page(request: Request, vault: str, principal: Principal = Depends(page_principal),
               service: Service = Depends(get_service)) -> HTMLResponse:
    if not re.fullmatch(VAULT_PATTERN, vault):
        return _not_found(request, principal, service, "That is not a vault name.")
    try:
        found = vault_routes.show_vault(vault, principal=principal, service=service)
    except HTTPException as error:  # unknown, or another vault's: the same 404
        return _not_found(request, principal, service, str(error.detail))
    with views.workflow_access(service).reading() as workflow:
        recent = [views.proposal_summary(s) for s in workflow.page(views.proposal_query(
            principal, vault, newest_first=True, limit=HISTORY_SHOWN))]
    for balance in found["balances"]:
        balance["history"] = list(reversed(balance.get("history", [])[-HISTORY_SHOWN:]))
    return _page(request, principal, service, "vault.html", v=found, proposals=recent)


# -- transfers ---------------------------------------------------------------------------
@router.get("/dashboard/transfers", response_class=HTMLResponse)
def transfers_page(request: Request,
                   vault: Annotated[str | None, Query(max_length=64)] = None,
                   principal: Principal = Depends(page_principal),
                   service: Service = Depends(get_service)) -> HTMLResponse:
    chosen = vault if vault and re.fullmatch(VAULT_PATTERN, vault) else None
    query = views.proposal_query(principal, chosen, action="transfer", newest_first=True,
                                 limit=TRANSFERS_SHOWN)
    with views.workflow_access(service).reading() as workflow:
        shown = [transfer_routes.transfer_json(s) for s in workflow.page(query)]
        total = workflow.count(query)
        labels = {name: views.destination_labels(workflow, name)
                  for name in {t["vault"] for t in shown}}
    for transfer in shown:  # the allowlist's names for the destinations, address on hover
        for output in transfer.get("outputs", []):
            output["label"] = labels[transfer["vault"]].get(output["destination"], "")
    return _page(request, principal, service, "transfers.html", transfers=shown,
                 total=total, vault=chosen or "")


# -- checkpoints -------------------------------------------------------------------------
def _checkpoint_anchors(ledger: Any, scan_entries: int) -> dict[int, dict[str, Any]]:
    """tree size -> the newest anchor of a checkpoint of that size, among the last
    `scan_entries` entries (the overview's own window)."""
    size = ledger.size()
    found: dict[int, dict[str, Any]] = {}
    for entry in ledger.entries(max(0, size - scan_entries), size, {"ledger.anchor"}):
        try:
            anchor = LedgerAnchor.of(entry)
        except EventError:  # a malformed anchor is simply not shown
            continue
        if isinstance(anchor, CheckpointAnchored):
            found[anchor.tree_size] = {"seq": entry.seq, "time": entry.time,
                                       "chain_id": anchor.chain_id,
                                       "block_number": anchor.block_number,
                                       "tx_hash": anchor.tx_hash,
                                       "root_hash": anchor.root_hash}
    return found


def _consistent(service: Service, principal: Principal, older: dict[str, Any],
                newer: dict[str, Any]) -> str:
    """'consistent', or why not: the ledger's proof from one signed root to the next."""
    try:
        proof = ledger_routes.consistency(older["tree_size"], newer["tree_size"],
                                          _=principal, service=service)
    except (HTTPException, LedgerError) as error:
        return f"no proof: {getattr(error, 'detail', error)}"
    if proof["old_root"] != older["root_hash"] or proof["new_root"] != newer["root_hash"]:
        return "the signed roots differ from the ledger's"
    return "consistent"


@router.get("/dashboard/checkpoints", response_class=HTMLResponse)
def checkpoints_page(request: Request,
                     start: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
                     principal: Principal = Depends(page_principal),
                     service: Service = Depends(get_service)) -> HTMLResponse:
    count = service.ledger.checkpoint_count()
    begin = max(0, count - CHECKPOINTS_PAGE) if start is None else min(start, count)
    # One more before the page, so its first checkpoint is checked against its predecessor.
    before = max(0, begin - 1)
    listed = ledger_routes.list_checkpoints(before, CHECKPOINTS_PAGE + begin - before,
                                            _=principal, service=service)
    notes = listed["checkpoints"]
    anchors = _checkpoint_anchors(service.ledger, service.options.anchor_scan_entries)
    rows = []
    for index, checkpoint in enumerate(notes):
        if before + index < begin:
            continue
        previous = notes[index - 1] if index > 0 else None
        anchor = anchors.get(checkpoint["tree_size"])
        rows.append({**checkpoint, "number": before + index,
                     "previous_size": previous["tree_size"] if previous else None,
                     "consistency": _consistent(service, principal, previous, checkpoint)
                     if previous else "the first checkpoint",
                     "anchor": anchor,
                     "anchor_matches": anchor is not None
                     and anchor["root_hash"] == checkpoint["root_hash"]})
    rows.reverse()
    return _page(request, principal, service, "checkpoints.html", rows=rows, count=count,
                 verifier_key=listed["verifier_key"],
                 older=max(0, begin - CHECKPOINTS_PAGE) if begin > 0 else None,
                 newer=begin + CHECKPOINTS_PAGE if begin + CHECKPOINTS_PAGE < count else None)


# -- reconciliation ----------------------------------------------------------------------
@router.get("/dashboard/reconciliation", response_class=HTMLResponse)
def reconciliation_page(request: Request,
                        before: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
                        principal: Principal = Depends(page_principal),
                        service: Service = Depends(get_service)) -> HTMLResponse:
    listed = reconcile_routes.list_reports(REPORTS_SHOWN, before, principal=principal,
                                           service=service)
    older = listed["next"]["before"] if listed["next"] else None
    return _page(request, principal, service, "reconciliation.html",
                 reports=listed["reports"], older=older, paged=before is not None)
