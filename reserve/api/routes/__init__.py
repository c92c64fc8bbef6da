"""The service's routers, one module per resource, each exporting `router`.

Core routers always load. Optional routers (`proposals`, `vaults`, `reconcile`) are
included when their module exists, so wiring a new resource is one new file
`reserve/api/routes/<name>.py` exporting `router = APIRouter(prefix="/api/<name>", ...)`;
its routes use `Depends(require(...))` for roles, `require_vault` for custodian scoping
and `Depends(get_recorder)` to record state changes.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI

CORE_ROUTERS = ("health", "me", "ledger", "tokens", "users", "dashboard")
OPTIONAL_ROUTERS = ("vaults", "proposals", "transfers", "reconcile",
                    "proposal_pages")


def include_routers(app: FastAPI) -> list[str]:
    """Include every core router and each optional one that exists; returns their names."""
    included = []
    for name in CORE_ROUTERS + OPTIONAL_ROUTERS:
        module_name = f"{__name__}.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if name in OPTIONAL_ROUTERS and error.name == module_name:
                continue
            raise
        app.include_router(module.router)
        included.append(name)
    app.state.routers = tuple(included)
    return included
