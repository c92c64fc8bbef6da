"""`GET /api/me`: who the presented token says the caller is."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from reserve.api.auth import ALL_ROLES, Principal
from reserve.api.deps import require
from reserve.api.openapi import errors

router = APIRouter(prefix="/api", tags=["auth"])


@router.get("/me", summary="The caller's person, role, vaults and token id",
            responses=errors())
def me(principal: Principal = Depends(require(*ALL_ROLES))) -> dict[str, Any]:
    return {"person": principal.person, "name": principal.name,
            "institution": principal.institution, "role": principal.role.value,
            "vaults": sorted(principal.vaults), "token_id": principal.token_id}
