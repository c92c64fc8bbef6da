"""Transfers: where each approved transfer is on its way to the chain, and what to sign.

Status, transaction id and confirmations come from the ledger (the chain layers record
every step), never from a node. `GET .../order` hands a custodian's signer exactly what
was approved (the ReleaseOrder), to compare with the PSBT or Safe transaction it signs.

The steps that move a transfer on are the CLI's `reserve transfer ...`, through the same
workflow service: an operator releases it (`POST .../release`: the chain layer builds the
PSBT or Safe transaction for exactly the approved outputs), each custodian of the vault
fetches the signing package and uploads their own share (`POST .../shares`), an operator
broadcasts and asks for confirmation. Every answer carries `next`: the next step and who
must act. These steps need the service's chain connections (configured nodes); without
them they answer 503 and change nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from reserve.api import reserve_views as views
from reserve.api.auth import ALL_ROLES, VAULT_PATTERN, Principal, Role
from reserve.api.deps import Recorder, Service, get_recorder, get_service, require, require_vault
from reserve.api.openapi import errors
from reserve.api.routes.proposals import Digest, find, unknown_proposal
from reserve.errors import ConfigError
from reserve.present import format_time
from reserve.proposals.proposal import TransferBody
from reserve.proposals.state import APPROVED, BROADCAST, CONFIRMED, OPEN, RELEASABLE, SIGNING
from reserve.transfers.chain import ReleaseOrder
from reserve.transfers.next_step import next_step
from reserve.transfers.projection import ProposalStatus
from reserve.transfers.service import WorkflowService

router = APIRouter(prefix="/api/transfers", tags=["transfers"])
readers = require(*ALL_ROLES)
operators = require(Role.OPERATOR)
signers = require(Role.CUSTODIAN)
package_readers = require(Role.CUSTODIAN, Role.OPERATOR, Role.AUDITOR)
SHARE_CHARS_MAX = 60_000  # a signed PSBT of a few dozen inputs, in base64
ORDER_STATES = frozenset({APPROVED, RELEASABLE, SIGNING, BROADCAST, CONFIRMED})
STEP_FIELDS = ("txid", "tx_hash", "safe_tx_hash", "psbt_sha256", "signer", "custodian",
               "confirmations", "depth", "blockhash", "block_hash", "height", "block_number")


class ShareUpload(BaseModel):
    """A custodian's signature share: the signed PSBT (base64) or the signature JSON text
    of `reserve-sign evm-sign`."""

    model_config = ConfigDict(extra="forbid")
    share: str = Field(min_length=1, max_length=SHARE_CHARS_MAX,
                       pattern=r"^[\x20-\x7e\n\r\t]+$")


class Confirmations(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirmations_min: int = Field(default=1, ge=1, le=1000)


def next_json(workflow: WorkflowService, found: ProposalStatus,
              now: Any) -> dict[str, object]:
    policy = workflow.projection.vault(found.proposal.vault).policy
    decision = workflow.decision(found.digest, now) if found.state in OPEN else None
    return next_step(found, policy, decision, now).to_json()


def transfer_json(found: ProposalStatus, detail: bool = False) -> dict[str, Any]:
    data = {**views.proposal_summary(found), "confirmations": views.confirmations(found),
            "chain_steps": len(found.chain_steps)}
    if detail:
        data["timeline"] = [{"state": c.state, "at": format_time(c.at), "seq": c.seq,
                             "reason": c.reason} for c in found.changes]
        data["steps"] = [{"kind": step.kind,
                          **{k: step.payload[k] for k in STEP_FIELDS if k in step.payload}}
                         for step in found.chain_steps]
    return data


def _transfer(workflow: Any, digest: str, principal: Principal) -> ProposalStatus:
    found = find(workflow, digest)
    require_vault(principal, found.proposal.vault, unknown_proposal(digest))
    if not isinstance(found.proposal.body, TransferBody):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"proposal {found.digest[:16]} is a {found.proposal.action},"
                                   " not a transfer")
    return found


@router.get("", summary="Transfer proposals with state, txid and confirmations, paged",
            responses=errors(403))
def list_transfers(vault: Annotated[str | None, Query(pattern=VAULT_PATTERN)] = None,
                   after: Annotated[int | None, Query(
                       ge=0, le=2**62, description="The `next.after` of the page before.")
                   ] = None,
                   limit: Annotated[int, Query(ge=1, le=views.PAGE_MAX)] = views.PAGE_DEFAULT,
                   principal: Principal = Depends(readers),
                   service: Service = Depends(get_service)) -> dict[str, Any]:
    query = views.proposal_query(principal, vault, action="transfer", after_seq=after,
                                 limit=limit + 1)
    with views.workflow_access(service).reading() as workflow:
        shown, following = views.paged(workflow.page(query), limit)
        return {"transfers": [transfer_json(s) for s in shown], "next": following}


@router.get("/{digest}", summary="One transfer: its timeline and recorded chain steps",
            operation_id="show_transfer", responses=errors(403, 404))
def show_transfer(digest: Digest, principal: Principal = Depends(readers),
                  service: Service = Depends(get_service)) -> dict[str, Any]:
    with views.workflow_access(service).reading() as workflow:
        found = _transfer(workflow, digest, principal)
        return {**transfer_json(found, detail=True),
                "next": next_json(workflow, found, service.clock())}


@router.get("/{digest}/order", summary="What was approved, for the custodian's signer",
            operation_id="release_order", responses=errors(403, 404, 409))
def release_order(digest: Digest, principal: Principal = Depends(readers),
                  service: Service = Depends(get_service)) -> dict[str, Any]:
    with views.workflow_access(service).reading() as workflow:
        found = _transfer(workflow, digest, principal)
        if found.state not in ORDER_STATES:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                detail=f"transfer {found.digest[:16]} is {found.state}: "
                                       "there is nothing approved to sign")
        return ReleaseOrder.from_proposal(found.proposal).to_json(found.state)


# -- the steps that move a transfer on -------------------------------------------------------
def _adapter(service: Service, found: ProposalStatus) -> Any:
    if service.chains is None:
        raise ConfigError("this service runs without chain connections: transfer steps are "
                          "not available here (configure the nodes and restart)")
    return service.chains.adapter(found.proposal.vault, found.proposal.chain)


def _step(service: Service, record: Recorder, digest: str, principal: Principal,
          state: str, action: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """Run one workflow step on a transfer in `state`; answer with its state and next step.

    A transfer in another state is refused (409) before any node is asked."""
    access = views.workflow_access(service)
    with access.reading() as workflow:
        found = _transfer(workflow, digest, principal)
        if found.state != state:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=(
                f"transfer {found.digest[:16]} is {found.state}; this step needs {state}. "
                f"Next: {next_json(workflow, found, service.clock())['text']}"))
    adapter = _adapter(service, found)
    access.act(record, lambda w, prelude: action(w, found, adapter, prelude),
               summary={"digest": found.digest, "vault": found.proposal.vault, **summary})
    with access.reading() as workflow:
        current = _transfer(workflow, found.digest, principal)
        return {**transfer_json(current, detail=True),
                "next": next_json(workflow, current, service.clock())}


@router.post("/{digest}/release", summary="Release a releasable transfer to the chain (operators)",
             operation_id="release_transfer", responses=errors(403, 404, 409, 503))
def release(digest: Digest, principal: Principal = Depends(operators),
            record: Recorder = Depends(get_recorder),
            service: Service = Depends(get_service)) -> dict[str, Any]:
    return _step(service, record, digest, principal, RELEASABLE,
                 lambda w, found, adapter, prelude: w.release(
                     found.digest, adapter, principal.person, prelude=prelude),
                 {"step": "release"})


@router.get("/{digest}/signing-package", summary="What the custodians sign, while signing",
            operation_id="signing_package", responses=errors(403, 404, 409))
def signing_package(digest: Digest, principal: Principal = Depends(package_readers),
                    service: Service = Depends(get_service)) -> dict[str, Any]:
    from reserve.transfers.package import build_signing_package

    access = views.workflow_access(service)
    with access.reading() as workflow:
        found = _transfer(workflow, digest, principal)
        if found.state != SIGNING:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                detail=f"transfer {found.digest[:16]} is {found.state}: a "
                                       "signing package exists only while it is being signed")
        # Holding the workflow lock: the checkpoint it may sign is the only write.
        return build_signing_package(service.ledger, found.digest)


@router.post("/{digest}/shares", status_code=status.HTTP_201_CREATED,
             summary="Upload your own signature share (custodians of the vault)",
             operation_id="submit_share", responses=errors(400, 403, 404, 409, 503))
def submit_share(digest: Digest, body: ShareUpload, principal: Principal = Depends(signers),
                 record: Recorder = Depends(get_recorder),
                 service: Service = Depends(get_service)) -> dict[str, Any]:
    def action(w: WorkflowService, found: ProposalStatus, adapter: Any, prelude: Any) -> Any:
        # The share is checked as the uploader's own: signed by their key, or refused.
        signer, share = service.chains.share(found.proposal.vault, found.proposal.chain,
                                             principal.person, body.share.encode())
        return w.add_signature_share(found.digest, adapter, signer, share, prelude=prelude)
    return _step(service, record, digest, principal, SIGNING, action, {"step": "share"})


@router.post("/{digest}/broadcast", summary="Finalise and broadcast once enough have signed",
             operation_id="broadcast_transfer", responses=errors(400, 403, 404, 409, 503))
def broadcast(digest: Digest, principal: Principal = Depends(operators),
              record: Recorder = Depends(get_recorder),
              service: Service = Depends(get_service)) -> dict[str, Any]:
    return _step(service, record, digest, principal, SIGNING,
                 lambda w, found, adapter, prelude: w.broadcast(
                     found.digest, adapter, principal.person, prelude=prelude),
                 {"step": "broadcast"})


@router.post("/{digest}/confirm", summary="Record the confirmation once deep enough",
             operation_id="confirm_transfer", responses=errors(403, 404, 409, 503))
def confirm(digest: Digest, body: Confirmations | None = None,
            principal: Principal = Depends(operators),
            record: Recorder = Depends(get_recorder),
            service: Service = Depends(get_service)) -> dict[str, Any]:
    depth_min = body.confirmations_min if body is not None else 1
    return _step(service, record, digest, principal, BROADCAST,
                 lambda w, found, adapter, prelude: w.check_confirmation(
                     found.digest, adapter, confirmations_min=depth_min, prelude=prelude),
                 {"step": "confirm"})
