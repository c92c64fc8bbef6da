"""Transfers: where each approved transfer is on its way to the chain, and what to sign.

Status, transaction id and confirmations come from the ledger (the chain layers record
every step), never from a node. `GET .../order` hands a custodian's signer exactly what
was approved (the ReleaseOrder), to compare with the PSBT or Safe transaction it signs.

Signature shares are not uploaded here: checking one needs the chain (the Bitcoin layer
re-reads the vault's coins from bitcoind, the EVM layer reads the Safe's owners), so
shares go through the CLI on the service host (`reserve btc submit-share`, `reserve evm
...`), which has a node.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from reserve.api import reserve_views as views
from reserve.api.auth import ALL_ROLES, VAULT_PATTERN, Principal
from reserve.api.deps import Service, get_service, require, require_vault
from reserve.api.openapi import errors
from reserve.api.routes.proposals import Digest, find, unknown_proposal
from reserve.present import format_time
from reserve.proposals.proposal import TransferBody
from reserve.proposals.state import APPROVED, BROADCAST, CONFIRMED, RELEASABLE, SIGNING
from reserve.transfers.chain import ReleaseOrder
from reserve.transfers.projection import ProposalStatus

router = APIRouter(prefix="/api/transfers", tags=["transfers"])
readers = require(*ALL_ROLES)
ORDER_STATES = frozenset({APPROVED, RELEASABLE, SIGNING, BROADCAST, CONFIRMED})
STEP_FIELDS = ("txid", "tx_hash", "safe_tx_hash", "psbt_sha256", "signer", "custodian",
               "confirmations", "depth", "blockhash", "block_hash", "height", "block_number")


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


@router.get("", summary="Transfer proposals with state, txid and confirmations",
            responses=errors(403))
def list_transfers(vault: Annotated[str | None, Query(pattern=VAULT_PATTERN)] = None,
                   principal: Principal = Depends(readers),
                   service: Service = Depends(get_service)) -> dict[str, Any]:
    # A custodian naming another vault sees what an unknown vault shows: nothing.
    with views.workflow_access(service).reading() as workflow:
        found = [s for s in workflow.proposals(vault)
                 if isinstance(s.proposal.body, TransferBody)
                 and principal.may_see_vault(s.proposal.vault)]
        return {"transfers": [transfer_json(s) for s in found]}


@router.get("/{digest}", summary="One transfer: its timeline and recorded chain steps",
            operation_id="show_transfer", responses=errors(403, 404))
def show_transfer(digest: Digest, principal: Principal = Depends(readers),
                  service: Service = Depends(get_service)) -> dict[str, Any]:
    with views.workflow_access(service).reading() as workflow:
        return transfer_json(_transfer(workflow, digest, principal), detail=True)


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
