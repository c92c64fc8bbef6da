"""The ledger over HTTP: entries, inclusion and consistency proofs, checkpoints, export.

Every role reads; custodians see only entries that concern their own vaults (see
`reserve.api.visibility`) and may not export, since an export is the whole ledger. Proofs
and checkpoints carry only hashes and so are open to every role.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from fastapi.responses import StreamingResponse
from pydantic import Field

from reserve.api import ledger_views
from reserve.api.auth import ALL_ROLES, Principal, Role
from reserve.api.deps import Recorder, Service, answer, get_recorder, get_service, require
from reserve.api.openapi import created, errors, link
from reserve.errors import LedgerError, ProofError
from reserve.ledger import merkle
from reserve.ledger.kinds import KINDS
from reserve.ledger.verify import export_lines

router = APIRouter(prefix="/api/ledger", tags=["ledger"])
SEQ_MAX = 2**40  # the store's node key space; larger numbers can never name an entry
readers = require(*ALL_ROLES)
exporters = require(Role.VIEWER, Role.OPERATOR, Role.AUDITOR, Role.ADMIN, Role.SUPERVISOR)
checkpoint_signers = require(Role.AUDITOR, Role.ADMIN)

SeqQuery = Annotated[int, Query(ge=0, le=SEQ_MAX)]
# The schema lists the known kinds, so an unknown one is a validation error (422), not a 400.
KindName = Annotated[str, Field(pattern="^(" + "|".join(re.escape(k) for k in sorted(KINDS)) + ")$",
                                description="An entry kind (reserve.ledger.kinds).")]


@router.get("/entries", summary="A page of entries (a range of sequence numbers)",
            responses=errors())
def list_entries(start: SeqQuery = 0,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 kind: Annotated[list[KindName] | None, Query(max_length=64)] = None,
                 principal: Principal = Depends(readers),
                 service: Service = Depends(get_service)) -> dict[str, Any]:
    kinds = frozenset(kind) if kind else None  # each one a known kind: the schema says so
    limit = min(limit, service.options.page_entries_max)
    return answer(  # type: ignore[no-any-return]
        ledger_views.page(service.ledger, principal, start, limit, kinds).to_json())


@router.get("/entries/{seq}", summary="One entry with its inclusion proof",
            responses=errors(403, 404))
def get_entry(seq: Annotated[int, Path(ge=0, le=SEQ_MAX)],
              tree_size: Annotated[int | None, Query(ge=1, le=SEQ_MAX)] = None,
              principal: Principal = Depends(readers),
              service: Service = Depends(get_service)) -> dict[str, Any]:
    size = service.ledger.size()
    if seq >= size:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"no entry {seq}: the ledger holds {size} entries")
    entry = service.ledger.entry(seq)
    if not ledger_views.may_see(principal, entry):  # a 404 like any missing object
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"no entry {seq} among the entries you may see")
    try:
        inclusion = ledger_views.inclusion(service.ledger, seq, tree_size)
    except ProofError as error:  # a tree size the ledger has not reached: no such proof
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None
    return {"entry": ledger_views.entry_json(entry), "inclusion": inclusion}


@router.get("/checkpoints", summary="Signed checkpoints (C2SP signed notes), oldest first",
            responses=errors())
def list_checkpoints(start: Annotated[int, Query(ge=0, le=SEQ_MAX)] = 0,
                     limit: Annotated[int, Query(ge=1, le=500)] = 100,
                     _: Principal = Depends(readers),
                     service: Service = Depends(get_service)) -> dict[str, Any]:
    chosen = service.ledger.checkpoints(start, limit)
    key = ledger_views.verifier_text(service.ledger)
    return {"count": service.ledger.checkpoint_count(), "start": start, "verifier_key": key,
            "checkpoints": [ledger_views.checkpoint_json(note, key) for note in chosen]}


@router.get("/checkpoints/latest", summary="The latest signed checkpoint and its anchor",
            responses=errors(404))
def latest_checkpoint(_: Principal = Depends(readers),
                      service: Service = Depends(get_service)) -> dict[str, Any]:
    latest = ledger_views.latest_checkpoint(service.ledger)
    if latest is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no checkpoint has been signed yet")
    latest["anchor"] = ledger_views.latest_anchor(service.ledger,
                                                  service.options.anchor_scan_entries)
    latest["ledger_size"] = service.ledger.size()
    return latest


@router.post("/checkpoints", status_code=status.HTTP_201_CREATED,
             summary="Sign a checkpoint at the current size (auditor, admin)",
             responses={**created("The signed checkpoint.", consistency=link(
                 "ledger_consistency", "How the ledger grew since this checkpoint.",
                 old_size="$response.body#/tree_size")), **errors(403, 409)})
def sign_checkpoint(principal: Principal = Depends(checkpoint_signers),
                    record: Recorder = Depends(get_recorder),
                    service: Service = Depends(get_service)) -> dict[str, Any]:
    if service.ledger.signer is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="this service has no checkpoint key configured")
    note = service.ledger.checkpoint(now=service.clock())
    checkpoint = ledger_views.checkpoint_json(note, ledger_views.verifier_text(service.ledger))
    record([], summary={"checkpoint_tree_size": checkpoint["tree_size"]})
    return checkpoint


@router.get("/consistency", summary="Consistency proof between two tree sizes",
            operation_id="ledger_consistency", responses=errors(404))
def consistency(old_size: Annotated[int, Query(ge=0, le=SEQ_MAX)],
                new_size: Annotated[int | None, Query(ge=0, le=SEQ_MAX)] = None,
                _: Principal = Depends(readers),
                service: Service = Depends(get_service)) -> dict[str, Any]:
    size = service.ledger.size()
    target = size if new_size is None else new_size
    if not old_size <= target <= size:  # schema-valid, but there is no such pair of trees
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"no consistency proof from {old_size} to {target}: need "
                                   f"0 <= old_size <= new_size <= {size}")
    proof = service.ledger.consistency_proof(old_size, target)
    old_root, new_root = service.ledger.root_at(old_size), service.ledger.root_at(target)
    if not merkle.verify_consistency(old_size, target, old_root, new_root, proof):
        raise LedgerError("the ledger produced a consistency proof that does not verify")
    return {"old_size": old_size, "new_size": target, "old_root": old_root.hex(),
            "new_root": new_root.hex(), "proof": [item.hex() for item in proof]}


@router.get("/export", summary="The whole ledger as JSON lines (offline verifiable)",
            response_class=StreamingResponse, responses=errors(403))
def export(_: Principal = Depends(exporters),
           service: Service = Depends(get_service)) -> StreamingResponse:
    def lines() -> Iterator[bytes]:
        for line in export_lines(service.ledger):
            yield (line + "\n").encode("utf-8")

    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition":
                                      'attachment; filename="ledger-export.jsonl"'})
