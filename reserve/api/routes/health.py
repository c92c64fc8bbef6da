"""`GET /api/health`: is the service up and its ledger readable (no authentication)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from reserve.api.deps import Service, get_service
from reserve.api.openapi import errors

router = APIRouter(prefix="/api", tags=["health"])


@router.get("/health", summary="Liveness and ledger readability",
            responses=errors(503, authenticated=False))
def health(service: Service = Depends(get_service)) -> dict[str, Any]:
    service.ledger.size()  # raises (and so answers 503) if the database is unreadable
    return {"status": "ok"}
