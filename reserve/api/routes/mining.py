"""The electricity allocation over HTTP: an operator submits a meter operator's signed
energy reading (docs/mining.md).

The reading is checked on fresh state inside the workflow's commit (`record_event`'s
check): the site must be registered (404 otherwise), the signature must verify with the
site's registered meter key, the period must be new, not overlap another of the site's,
end after it starts, and fit the site's capacity; any refusal is a 400 and writes nothing.
The request and the `energy.reading` entry are one batch.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from reserve.api import reserve_views as views
from reserve.api.auth import Principal, Role
from reserve.api.deps import Recorder, Service, get_recorder, get_service, require
from reserve.api.openapi import created, errors

router = APIRouter(prefix="/api/mining", tags=["mining"])
submitters = require(Role.OPERATOR)
Text = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class ReadingDocument(BaseModel):
    """A signed reading, as `reserve mining reading sign` writes it."""

    model_config = ConfigDict(extra="forbid")
    format: Annotated[str, Field(max_length=64)]
    site: Text
    meter: Text
    period_start: Annotated[str, Field(max_length=32)]
    period_end: Annotated[str, Field(max_length=32)]
    energy_kwh: Annotated[int, Field(ge=0, le=10**15)]
    meter_key: Annotated[str, Field(max_length=300)]
    signature: Annotated[str, Field(max_length=200)]


@router.post("/readings", status_code=status.HTTP_201_CREATED,
             summary="Record a meter operator's signed energy reading (operators)",
             responses={**created("The energy.reading entry."), **errors(400, 403, 404, 409)})
def submit_reading(body: ReadingDocument, principal: Principal = Depends(submitters),
                   record: Recorder = Depends(get_recorder),
                   service: Service = Depends(get_service)) -> dict[str, Any]:
    from reserve.mining.readings import reading_from_document
    from reserve.mining.record import check_reading, relevant

    reading = reading_from_document(body.model_dump())
    ledger = service.ledger

    def check(_size: int) -> None:
        check_reading(relevant(ledger), reading)
    event = reading.event()
    entry = views.workflow_access(service).act(
        record, lambda w, prelude: w.record_event(event, principal.person, prelude=prelude,
                                                  check=check),
        summary={"action": "energy.reading", "site": reading.site})
    return {"seq": entry.seq, "by": entry.actor, "time": entry.time, **entry.payload}
