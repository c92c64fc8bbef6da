"""The service's routers, one module per resource, each exporting `router`.

Every router is imported here by name and included in this order, so a missing or broken
module fails the service at start-up instead of silently leaving its routes out. Wiring a
new resource is one new file `reserve/api/routes/<name>.py` exporting
`router = APIRouter(prefix="/api/<name>", ...)` and one line in `ROUTERS`; its routes use
`Depends(require(...))` for roles, `require_vault` for custodian scoping and
`Depends(get_recorder)` to record state changes.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from reserve.api.routes import (
    dashboard,
    health,
    ledger,
    me,
    mining,
    proposal_pages,
    proposals,
    public,
    public_log,
    reconcile,
    reserve_pages,
    supervision,
    supervision_pages,
    tokens,
    transfers,
    users,
    vaults,
)

# The busiest read routes' routers first: FastAPI matches a request against every route
# of the routers before the one that serves it (a regular expression each), and no two
# routers here serve the same path, so the order decides only that cost (and the order of
# the paths in the schema).
ROUTERS: tuple[tuple[str, APIRouter], ...] = (
    ("vaults", vaults.router),
    ("proposals", proposals.router),
    ("ledger", ledger.router),
    ("health", health.router),
    ("me", me.router),
    ("tokens", tokens.router),
    ("users", users.router),
    ("dashboard", dashboard.router),
    ("transfers", transfers.router),
    ("reconcile", reconcile.router),
    ("supervision", supervision.router),
    ("mining", mining.router),
    ("proposal_pages", proposal_pages.router),
    ("reserve_pages", reserve_pages.router),
    ("supervision_pages", supervision_pages.router),
    ("public_log", public_log.router),
    ("public", public.router),  # anonymous: no route of it depends on a principal
)


def include_routers(app: FastAPI) -> list[str]:
    """Include every router in `ROUTERS`, in order; returns their names."""
    for _, router in ROUTERS:
        app.include_router(router)
    included = [name for name, _ in ROUTERS]
    app.state.routers = tuple(included)
    return included
