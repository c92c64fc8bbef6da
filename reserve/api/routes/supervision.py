"""The supervisor's seat: the alert feed (JSON pages and a server-sent event stream),
acknowledgements, and the licence register.

Alerts are derived from ledger entries (reserve.supervision.alerts): `after` is a ledger
seq, each page reads only entries after it, at most `limit` alerts and a bounded number of
entries, so a page costs the same at a million entries as at a thousand. Custodians see
the alerts of their own vaults only. Acknowledging is the supervisor's one write besides a
freeze its vault's policy grants: an `alert.acknowledged` entry, with who and when.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from reserve.api import reserve_views as views
from reserve.api.auth import ALL_ROLES, Principal, Role
from reserve.api.deps import Recorder, Service, get_recorder, get_service, require
from reserve.api.openapi import created, errors
from reserve.errors import WorkflowError
from reserve.events.supervision import AlertAcknowledged
from reserve.policy.licences import LicenceState
from reserve.present import format_time
from reserve.supervision import alerts as feed

router = APIRouter(prefix="/api/supervision", tags=["supervision"])
readers = require(*ALL_ROLES)
acknowledgers = require(Role.SUPERVISOR)
SEQ_MAX = 2**40
STREAM_SECONDS_MAX = 300
STREAM_POLL_SECONDS = 1.0
Note = Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = ""


def _acknowledgements(service: Service) -> feed.Acknowledgements:
    """One incrementally caught-up index of acknowledgements per service."""
    book = getattr(service, "_alert_acknowledgements", None)
    if book is None:
        book = feed.Acknowledgements()
        setattr(service, "_alert_acknowledgements", book)  # noqa: B010 - cache on the service
    return book


def alert_page(service: Service, principal: Principal, after: int, limit: int
               ) -> dict[str, Any]:
    """One page of alerts after `after`, each with its acknowledgements."""
    with views.workflow_access(service).reading() as workflow:
        context = feed.LedgerContext(service.ledger, {
            vault: state.policy_versions for vault, state in workflow.projection.vaults.items()})
        page = feed.read_alerts(service.ledger, context, after=after, limit=limit)
        book = _acknowledgements(service)
        book.catch_up(service.ledger)
    shown = [alert for alert in page.alerts
             if all(principal.may_see_vault(v) for v in alert.vault.split(",") if v)]
    return {"after": after, "cursor": page.cursor, "complete": page.complete,
            "ledger_size": page.size,
            "alerts": [{**alert.to_json(), "acknowledged": [
                ack.to_json() for ack in book.of(alert.seq)]} for alert in shown]}


@router.get("/alerts", summary="Alerts after a cursor (a ledger seq), oldest first",
            responses=errors())
def list_alerts(after: Annotated[int, Query(ge=-1, le=SEQ_MAX)] = -1,
                limit: Annotated[int, Query(ge=1, le=feed.PAGE_LIMIT_MAX)] = 100,
                principal: Principal = Depends(readers),
                service: Service = Depends(get_service)) -> dict[str, Any]:
    return alert_page(service, principal, after, limit)


async def events(request: Request, service: Service, principal: Principal, after: int,
                 seconds: float) -> AsyncIterator[str]:
    """The feed after `after` as server-sent events, polled for `seconds`; it stops when
    the client goes away (the page reads run in the thread pool, the waits do not)."""
    deadline = time.monotonic() + seconds
    cursor = after
    yield "retry: 2000\n\n"
    while not await request.is_disconnected():
        page = await run_in_threadpool(alert_page, service, principal, cursor,
                                       feed.PAGE_LIMIT_MAX)
        for alert in page["alerts"]:
            yield f"id: {alert['seq']}\nevent: alert\ndata: {json.dumps(alert)}\n\n"
        cursor = page["cursor"]
        if not page["complete"]:
            continue
        if time.monotonic() >= deadline:
            yield f"event: end\ndata: {json.dumps({'cursor': cursor})}\n\n"
            return
        await asyncio.sleep(STREAM_POLL_SECONDS)


# Outside the OpenAPI schema: a stream has no finite body to describe or fuzz (its roles
# are tested in tests/nodes/test_supervision_api.py); docs/supervision.md documents it.
@router.get("/alerts/stream", include_in_schema=False)
def stream_alerts(request: Request, after: Annotated[int, Query(ge=-1, le=SEQ_MAX)] = -1,
                  seconds: Annotated[int, Query(ge=0, le=STREAM_SECONDS_MAX)] = 60,
                  last_event_id: Annotated[str | None, Header()] = None,
                  principal: Principal = Depends(readers),
                  service: Service = Depends(get_service)) -> StreamingResponse:
    """Sends the alerts after `after` (or the browser's Last-Event-ID), then new ones as
    they are recorded, for `seconds`; the browser's EventSource reconnects and resumes."""
    start = after
    if last_event_id and last_event_id.isdigit() and int(last_event_id) <= SEQ_MAX:
        start = int(last_event_id)
    return StreamingResponse(events(request, service, principal, start, seconds),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store"})


@router.post("/alerts/{seq}/acknowledge", status_code=status.HTTP_201_CREATED,
             summary="Acknowledge an alert (supervisors): who and when go in the ledger",
             responses={**created("The acknowledgement entry."), **errors(400, 403, 404, 409)})
def acknowledge(seq: Annotated[int, Path(ge=0, le=SEQ_MAX)], body: AcknowledgeRequest,
                principal: Principal = Depends(acknowledgers),
                record: Recorder = Depends(get_recorder),
                service: Service = Depends(get_service)) -> dict[str, Any]:
    ledger = service.ledger
    if seq >= ledger.size():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no ledger entry {seq}")
    with views.workflow_access(service).reading() as workflow:
        context = feed.LedgerContext(ledger, {
            vault: state.policy_versions for vault, state in workflow.projection.vaults.items()})
        alert = feed.alert_of(ledger.entry(seq), context)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"entry {seq} is not an alert")
    book = _acknowledgements(service)

    def check(_size: int) -> None:
        book.catch_up(ledger)
        if any(ack.by == principal.person for ack in book.of(seq)):
            raise WorkflowError(f"{principal.person} already acknowledged alert {seq}")
    event = AlertAcknowledged(alert_seq=seq, alert_kind=alert.kind, note=body.note)
    entry = views.workflow_access(service).act(
        record, lambda w, prelude: w.record_event(event, principal.person, prelude=prelude,
                                                  check=check),
        summary={"action": "alert.acknowledge", "alert": seq})
    return {"seq": entry.seq, "alert": alert.to_json(), "by": entry.actor,
            "time": entry.time, "note": body.note}


def licence_json(state: LicenceState, now: Any) -> dict[str, Any]:
    latest = state.latest
    return {"licence_id": state.licence_id, "entity": latest.entity, "scope": latest.scope,
            "status": state.status_at(now), "latest_status": latest.status,
            "effective_at": format_time(latest.effective_at), "changes": len(state.changes),
            "regulator_key": state.regulator_key, "seqs": list(state.seqs)}


@router.get("/licences", summary="The licence register: every counterparty licence, now",
            responses=errors())
def list_licences(principal: Principal = Depends(readers),
                  service: Service = Depends(get_service)) -> dict[str, Any]:
    with views.workflow_access(service).reading() as workflow:
        register = dict(workflow.licences.licences)
    now = service.clock()
    return {"licences": [licence_json(state, now) for _, state in sorted(register.items())]}
