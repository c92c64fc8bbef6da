"""Vaults: what each holds, under which policy, where to deposit; freezing and unfreezing.

A vault is known from the ledger (its policy versions, an EVM Safe's `vault.registered`
entry, deposits) and, for Bitcoin, from its configuration file (the descriptor, from
which the next receive address is derived locally: no node is asked). Custodians see and
act on their own vaults only. Freezing is immediate (any custodian of the vault or an
auditor named by its policy); unfreezing is a proposal under the policy's unfreeze rule.
The API person id is the member id the policy names.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from reserve import present
from reserve.api import answers
from reserve.api import reserve_views as views
from reserve.api.auth import ALL_ROLES, VAULT_PATTERN, Principal, Role
from reserve.api.deps import (
    Recorder,
    Service,
    get_recorder,
    get_service,
    require,
    require_vault,
    unknown_vault,
)
from reserve.api.openapi import created, errors, link, ok
from reserve.config import PROJECT_ROOT
from reserve.events.custody import EvmVaultRegistered, PolicyVersion
from reserve.policy import loader
from reserve.present import format_time
from reserve.transfers.service import WorkflowService

router = APIRouter(prefix="/api/vaults", tags=["vaults"])
READERS = frozenset(ALL_ROLES)
readers = require(*READERS)
# A supervisor passes this gate; the vault's policy then decides (supervision.may_freeze).
freezers = require(Role.CUSTODIAN, Role.AUDITOR, Role.SUPERVISOR)
unfreeze_proposers = require(Role.OPERATOR, Role.CUSTODIAN, Role.AUDITOR)
VaultPath = Annotated[str, Path(pattern=VAULT_PATTERN)]
FIRST = {"vault": "$response.body#/vaults/0/vault"}  # an OpenAPI link's runtime expression
Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]
Reference = Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]


class FreezeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text


class UnfreezeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Text
    reference: Reference = ""
    expires_in_seconds: int | None = Field(default=None, ge=60, le=366 * 86400)


def _bitcoin_dir(service: Service) -> FilePath:
    return _resolved_dir(getattr(service.options, "bitcoin_vaults_dir", "") or
                         views.BITCOIN_VAULTS_DIR)


@lru_cache(maxsize=64)
def _resolved_dir(configured: str | FilePath) -> FilePath:
    """The configured folder, relative to the project (pure; memoised: read on every
    `GET /api/vaults`, where building the path cost a tenth of a kept answer)."""
    chosen = FilePath(configured)
    return chosen if chosen.is_absolute() else PROJECT_ROOT / chosen


def _vault_json(service: Service, workflow: WorkflowService, vault: str,
                bitcoin: dict[str, Any], evm: dict[str, EvmVaultRegistered],
                balances: list[views.Holding], detail: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"vault": vault, "policy": None, "frozen": None, "bitcoin": None,
                            "evm": None,
                            "balances": [{k: v for k, v in h.to_json().items()
                                          if detail or k != "history"}
                                         for h in balances if h.vault == vault]}
    state = workflow.projection.vaults.get(vault)
    if state is not None:
        policy = state.policy
        data["policy"] = {"version": policy.version, "network": policy.network,
                          "chain": policy.chain, "policy_sha256": views.policy_sha256(policy),
                          "in_plain_words": list(views.policy_words(policy))}
        if state.freeze is not None:
            data["frozen"] = {"since": format_time(state.freeze.since), "by": state.freeze.by,
                              "reason": state.freeze.reason}
    if vault in bitcoin:
        chain_vault = bitcoin[vault]
        data["bitcoin"] = {"network": chain_vault.network, "threshold": chain_vault.threshold,
                           "custodians": [c.name for c in chain_vault.custodians],
                           "descriptor": views.vault_descriptor(chain_vault)}
        if detail:
            address, index = views.next_receive_address(chain_vault, service.ledger)
            data["bitcoin"]["next_receive_address"] = {"address": address, "index": index}
    if vault in evm:
        safe = evm[vault]
        data["evm"] = {"safe": safe.safe, "chain_id": safe.chain_id,
                       "threshold": safe.threshold, "owners": safe.owners,
                       "guard": safe.guard, "token": safe.token}
    return data


def _catalogue(service: Service, principal: Principal, only: str | None = None
               ) -> list[dict[str, Any]]:
    bitcoin = views.bitcoin_vaults(_bitcoin_dir(service))
    evm = views.evm_registrations(service.ledger)
    balances = views.holdings(service.ledger, principal)
    with views.workflow_access(service).reading() as workflow:
        names = set(workflow.projection.vaults) | set(bitcoin) | set(evm) | \
            {h.vault for h in balances}
        chosen = sorted(n for n in names if principal.may_see_vault(n)
                        and (only is None or n == only))
        return [_vault_json(service, workflow, name, bitcoin, evm, balances, only is not None)
                for name in chosen]


def catalogue(service: Service, principal: Principal) -> list[dict[str, Any]]:
    """The vaults `principal` may see, as `GET /api/vaults` lists them (for the pages)."""
    return _catalogue(service, principal)


def _require_policy(service: Service, vault: str) -> tuple[tuple[int, str, int], ...]:
    """The vault's policy versions; 404 when no policy was ever registered for it."""
    with views.workflow_access(service).reading() as workflow:
        state = workflow.projection.vaults.get(vault)
        if state is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=unknown_vault(vault))
        return state.policy_versions


@router.get("", summary="Vaults: policy in force, chain identity and balances",
            responses={**ok("The vaults the caller may see.",
                            first=link("show_vault", "The first vault in detail.", **FIRST),
                            policies=link("vault_policies", "Its policy versions.", **FIRST)),
                       **errors()})
async def list_vaults(request: Request) -> dict[str, Any]:
    # Authenticated with the ledger's head in one hop; the list is kept by that head, what
    # the caller may see and the Bitcoin vault files as they are now.
    def build(reading: answers.Reading) -> Response:
        service, principal = reading.service, reading.principal
        folder = _bitcoin_dir(service)
        files = views.vault_files_signature(folder)
        key = ("vaults", answers.visibility(principal), files)
        return reading.encoded(key, lambda: {"vaults": _catalogue(service, principal)},
                               lambda: views.vault_files_signature(folder) == files)

    return await answers.read(request, READERS, build)  # type: ignore[no-any-return]


@router.get("/{vault}", summary="One vault, with balance history and next receive address",
            operation_id="show_vault", responses=errors(403, 404))
def show_vault(vault: VaultPath, principal: Principal = Depends(readers),
               service: Service = Depends(get_service)) -> dict[str, Any]:
    unknown = f"no vault {vault!r} is known"
    require_vault(principal, vault, unknown)
    found = _catalogue(service, principal, vault)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=unknown)
    return found[0]


@router.get("/{vault}/policies", summary="Every policy version of a vault, oldest first",
            operation_id="vault_policies", responses=errors(403, 404))
def policy_versions(vault: VaultPath, principal: Principal = Depends(readers),
                    service: Service = Depends(get_service)) -> dict[str, Any]:
    require_vault(principal, vault)
    versions = _require_policy(service, vault)
    result = []
    for version, sha256, seq in versions:
        entry = service.ledger.entry(seq)
        recorded = PolicyVersion.of(entry)
        result.append({"version": version, "policy_sha256": sha256, "seq": seq,
                       "time": entry.time, "actor": entry.actor, "reason": recorded.reason,
                       "digest": recorded.digest or None})
    return {"vault": vault, "versions": result}


@router.get("/{vault}/policies/{version}", summary="One policy version, in full and in words",
            responses=errors(403, 404))
def policy_version(vault: VaultPath, version: Annotated[int, Path(ge=1, le=1_000_000)],
                   principal: Principal = Depends(readers),
                   service: Service = Depends(get_service)) -> dict[str, Any]:
    require_vault(principal, vault)
    versions = _require_policy(service, vault)
    seqs = [seq for number, _, seq in versions if number == version]
    if not seqs:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"{vault} has no policy v{version}")
    entry = service.ledger.entry(seqs[0])
    recorded = PolicyVersion.of(entry)
    policy = loader.from_mapping(recorded.policy, source=f"ledger entry {entry.seq}")
    return {"vault": vault, "version": version, "seq": entry.seq, "time": entry.time,
            "policy_sha256": recorded.policy_sha256,
            "in_plain_words": present.policy_words(policy), "policy": recorded.policy}


@router.post("/{vault}/freeze", summary="Freeze a vault now (its custodians, auditors, supervisors the policy grants)",
             responses=errors(400, 403, 404, 409))
def freeze(vault: VaultPath, body: FreezeRequest, principal: Principal = Depends(freezers),
           record: Recorder = Depends(get_recorder),
           service: Service = Depends(get_service)) -> dict[str, Any]:
    require_vault(principal, vault)
    _require_policy(service, vault)
    access = views.workflow_access(service)
    access.act(record, lambda w, prelude: w.freeze(vault, principal.person, body.reason,
                                                   prelude=prelude),
               summary={"action": "freeze"})
    with access.reading() as workflow:
        state = workflow.projection.vault(vault)
        frozen = state.freeze
    return {"vault": vault, "frozen": {"since": format_time(frozen.since), "by": frozen.by,
                                       "reason": frozen.reason} if frozen else None}


@router.post("/{vault}/unfreeze", status_code=status.HTTP_201_CREATED,
             summary="Propose to unfreeze a vault (a quorum and a delay decide)",
             responses={**created("The unfreeze proposal.", show=link(
                 "show_proposal", "The proposal and its decision.",
                 digest="$response.body#/digest")), **errors(400, 403, 404, 409)})
def propose_unfreeze(vault: VaultPath, body: UnfreezeRequest,
                     principal: Principal = Depends(unfreeze_proposers),
                     record: Recorder = Depends(get_recorder),
                     service: Service = Depends(get_service)) -> dict[str, Any]:
    require_vault(principal, vault)
    _require_policy(service, vault)
    access = views.workflow_access(service)
    created = access.act(record, lambda w, prelude: w.propose_unfreeze(
        vault=vault, proposer=principal.person, purpose=body.purpose,
        reference=body.reference, expires_in_seconds=body.expires_in_seconds,
        prelude=prelude),
        summary={"action": "vault.unfreeze"})
    return views.proposal_summary(created)
