"""Proposals: create (operators), read with the policy's decision explained, vote, cancel.

Everything goes through `reserve.transfers.service.WorkflowService` on the service's
ledger, so the API decides exactly as the CLI does and records the same entries; the
request's `api.request` entry is appended in the same batch. Votes are the custodians'
own Ed25519 signatures (made offline with `reserve-sign approval sign`): a custodian
uploads only their own vote, only for proposals of their vaults; a forged or replayed
vote is refused (400) and nothing is written. The API person id is the member id the
vault's policy names (proposer, custodian, auditor).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from reserve import present
from reserve.api import answers
from reserve.api import reserve_views as views
from reserve.api.auth import ALL_ROLES, VAULT_PATTERN, Principal, Role
from reserve.api.deps import (
    Recorder,
    Service,
    answer,
    get_recorder,
    get_service,
    require,
    require_vault,
)
from reserve.api.openapi import created, errors, link, ok
from reserve.errors import ApprovalError, WorkflowError
from reserve.policy.evaluate import Decision
from reserve.policy.model import Policy
from reserve.present import format_time
from reserve.proposals import approval as approval_module
from reserve.proposals.state import OPEN, STATES
from reserve.transfers.next_step import next_step
from reserve.transfers.projection import ProposalStatus
from reserve.transfers.service import Item, WorkflowService, decide
from wallets import addresses

router = APIRouter(prefix="/api/proposals", tags=["proposals"])
READERS = frozenset(ALL_ROLES)
readers = require(*READERS)
# What a kept proposal detail is counted as in the answer cache's byte budget.
DETAIL_BYTES = 8192
proposers = require(Role.OPERATOR)
cancellers = require(Role.OPERATOR, Role.CUSTODIAN, Role.AUDITOR)
voters = require(Role.CUSTODIAN)
DIGEST_PATTERN = r"^[0-9a-f]{8,64}$"
STATE_PATTERN = "^(" + "|".join(STATES) + ")$"
Digest = Annotated[str, Path(pattern=DIGEST_PATTERN)]
Amount = Annotated[str, Field(
    pattern=r"^[0-9]{1,78}(\.[0-9]{1,78})?( ?[A-Za-z]{1,16})?$",
    description="base units as an integer ('20000000', '20000000sat'), or asset units with "
                "a decimal point or the asset's symbol ('0.2', '0.2 BTC'); exact, as text")]
Text = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]
Short = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]
Reference = Annotated[str, Field(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]
CREATED_DIGEST = "$response.body#/digest"
# What a client (or a stateful fuzzer) can do next with the proposal it just created.
PROPOSAL_LINKS = {
    "show": link("show_proposal", "The proposal and its decision.", digest=CREATED_DIGEST),
    "vote": link("vote_on_proposal", "A custodian's signed vote on it.", digest=CREATED_DIGEST),
    "cancel": link("cancel_proposal", "Cancel it before signing.", digest=CREATED_DIGEST),
    "transfer": link("show_transfer", "Its way to the chain (transfers).",
                     digest=CREATED_DIGEST),
    "order": link("release_order", "What was approved, once it is.", digest=CREATED_DIGEST),
}


class OutputFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    destination: Short
    amount: Amount


class NewProposal(BaseModel):
    """A transfer (asset, outputs, fee_max) or a new destination (asset, address, label)."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["transfer", "destination.add"] = "transfer"
    vault: str = Field(pattern=VAULT_PATTERN)
    asset: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:-]+$")]
    outputs: list[OutputFields] = Field(default_factory=list, max_length=100)
    fee_max: Amount | None = Field(
        default=None, description="Bitcoin: required fee cap. A Safe transfer pays no fee "
                                  "from the vault: leave it out (or 0).")
    flow_class: Literal["purchase", "sale", "seizure", "donation",
                        "internal_transfer"] | None = Field(
        default=None, description="A transfer's class for the public-sector statement "
                                  "(docs/transparency.md); part of the digest when given.")
    address: Short | None = None
    label: Text | None = None
    purpose: Text
    reference: Reference = ""
    expires_in_seconds: int | None = Field(default=None, ge=60, le=366 * 86400)


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Text


class ApprovalDocument(BaseModel):
    """As written by `reserve-sign approval sign`."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["reserve-approval/1"]
    proposal_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    custodian: str = Field(min_length=1, max_length=64)
    decision: Literal["approve", "reject"]
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")


def unknown_proposal(digest: str) -> str:
    """What a digest that matches no proposal is told (the projection's own words)."""
    return f"unknown proposal {digest!r}"


def find(workflow: WorkflowService, digest: str) -> ProposalStatus:
    """The proposal named by a digest or unique prefix; 404 if none (or ambiguous)."""
    try:
        return workflow.projection.status(digest)
    except WorkflowError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None


@dataclass(frozen=True)
class DetailParts:
    """A proposal's detail but for what depends on the time: what it shows whenever it is
    asked on the same ledger, and the inputs of its decision (answers.DecisionInputs)."""

    inputs: answers.DecisionInputs
    summary: dict[str, Any]
    document: dict[str, Any]
    still_to_act: list[str]
    history: list[dict[str, Any]]

    @property
    def vault(self) -> str:
        return str(self.inputs.status.proposal.vault)

    def answer(self, now: datetime) -> dict[str, Any]:
        """The detail at `now` (not before the inputs were read): the decision taken then."""
        found, policy = self.inputs.status, self.inputs.policy
        decision = decide(policy, found, self.inputs.history_at(now), self.inputs.licences,
                          now)
        return _answer(found, policy, decision, now, self.summary, self.document,
                       self.still_to_act, self.history)


def detail_parts(workflow: WorkflowService, found: ProposalStatus, now: datetime
                 ) -> DetailParts:
    """`found`'s detail parts, its vault's velocity window read at `now` (UTC)."""
    vault = found.proposal.vault
    policy = workflow.projection.vault(vault).policy
    inputs = answers.DecisionInputs(status=found, policy=policy,
                                    history=workflow.projection.history(vault, now),
                                    licences=workflow.licences.licences, read_at=now)
    return DetailParts(inputs=inputs, summary=views.proposal_summary(found),
                       document=found.proposal.document(),
                       still_to_act=views.still_to_act(policy, found),
                       history=_history(found))


def _utc_now(service: Service) -> datetime:
    moment = service.clock()
    if moment.tzinfo is None:
        raise WorkflowError("the workflow clock must give timezone-aware times")
    return moment.astimezone(UTC)


def detail(service: Service, workflow: WorkflowService, found: ProposalStatus) -> dict[str, Any]:
    """A proposal with its decision explained, remaining delay and who still needs to act."""
    now = _utc_now(service)
    return detail_parts(workflow, found, now).answer(now)


def detail_json(found: ProposalStatus, decision: Decision, policy: Policy,
                now: datetime) -> dict[str, Any]:
    """`detail` of a proposal whose decision at `now` under `policy` (in force) is known."""
    return _answer(found, policy, decision, now, views.proposal_summary(found),
                   found.proposal.document(), views.still_to_act(policy, found),
                   _history(found))


def _history(found: ProposalStatus) -> list[dict[str, Any]]:
    return [{"state": c.state, "at": format_time(c.at), "seq": c.seq, "reason": c.reason}
            for c in found.changes]


def _answer(found: ProposalStatus, policy: Policy, decision: Decision, now: datetime,
            summary: dict[str, Any], document: dict[str, Any], still_to_act: list[str],
            history: list[dict[str, Any]]) -> dict[str, Any]:
    """The detail's one shape, for the read (DetailParts) and for a write's answer."""
    return {**summary, "document": document, "decision": views.decision_json(decision),
            "remaining_delay": present.remaining_delay(decision, now),
            "still_to_act": still_to_act,
            "next": next_step(found, policy, decision if found.state in OPEN else None,
                              now).to_json(),
            "history": history}


# A proposal as its write left it, its decision at `now` and the policy in force: taken in
# the write's own group (from the rows it wrote), answered once that group has committed.
Decided = tuple[ProposalStatus, Decision, Policy, datetime]


def decided(service: Service, workflow: WorkflowService, found: ProposalStatus,
            now: datetime | None = None) -> Decided:
    now = _utc_now(service) if now is None else now
    return (found, workflow.decision(found.digest, now),
            workflow.projection.vault(found.proposal.vault).policy, now)


@router.get("", summary="Proposals, oldest first, a page at a time (custodians: their vaults)",
            responses={**ok("The proposals the caller may see; `next` is the next page's "
                            "cursor, null on the last page.", first=link(
                "show_proposal", "The first proposal in detail.",
                digest="$response.body#/proposals/0/digest")), **errors(403)})
def list_proposals(vault: Annotated[str | None, Query(pattern=VAULT_PATTERN)] = None,
                   state: Annotated[str | None, Query(pattern=STATE_PATTERN)] = None,
                   after: Annotated[int | None, Query(
                       ge=0, le=2**62, description="The `next.after` of the page before.")
                   ] = None,
                   limit: Annotated[int, Query(ge=1, le=views.PAGE_MAX)] = views.PAGE_DEFAULT,
                   principal: Principal = Depends(readers),
                   service: Service = Depends(get_service)) -> dict[str, Any]:
    query = views.proposal_query(principal, vault, after_seq=after, limit=limit + 1,
                                 states=None if state is None else frozenset({state}))
    with views.workflow_access(service).reading() as workflow:
        shown, following = views.paged(workflow.page(query), limit)
        return {"proposals": [views.proposal_summary(s) for s in shown], "next": following}


def _create(workflow: WorkflowService, body: NewProposal, proposer: str,
            prelude: Sequence[Item], now: datetime | None = None) -> ProposalStatus:
    common = dict(vault=body.vault, proposer=proposer, asset=body.asset, purpose=body.purpose,
                  reference=body.reference, expires_in_seconds=body.expires_in_seconds,
                  prelude=prelude, now=now)
    policy = workflow.projection.vault(body.vault).policy
    if body.action == "transfer":
        if not body.outputs:
            raise WorkflowError("a transfer needs at least one output")
        outputs = [(o.destination, addresses.typed_amount(o.amount, body.asset, "output amount"))
                   for o in body.outputs]
        fee_max = addresses.fee_cap(policy.chain, body.asset, body.fee_max)
        addresses.check_transfer(policy.chain, [amount for _, amount in outputs], fee_max)
        return workflow.propose_transfer(
            **common, fee_max=fee_max, outputs=outputs,  # type: ignore[arg-type]
            flow_class=body.flow_class)
    if body.flow_class is not None:
        raise WorkflowError("only a transfer declares a flow class")
    if body.address is None or body.label is None:
        raise WorkflowError("a destination proposal needs an address and a label")
    addresses.check_destination(policy.chain, policy.network, body.asset, body.address)
    return workflow.propose_destination(**common, address=body.address,  # type: ignore[arg-type]
                                        label=body.label)


@router.post("", status_code=status.HTTP_201_CREATED,
             summary="Propose a transfer or a new destination (operators)",
             responses={**created("The proposal with the policy's decision.", **PROPOSAL_LINKS),
                        **errors(400, 403, 404, 409)})
async def create(body: NewProposal, principal: Principal = Depends(proposers),
                 record: Recorder = Depends(get_recorder),
                 service: Service = Depends(get_service)) -> dict[str, Any]:
    access = views.workflow_access(service)

    def action(workflow: WorkflowService, prelude: Sequence[Item]) -> Decided:
        # Checked in the action (in the group's transaction, under the workflow lock it
        # holds anyway), not in a read of its own before: an unknown vault appends nothing.
        if body.vault not in workflow.sync().vaults:
            raise HTTPException(status.HTTP_404_NOT_FOUND,
                                detail=f"no policy is registered for vault {body.vault!r}")
        now = service.clock()  # the proposal's time and its answer's: one decision
        return decided(service, workflow,
                       _create(workflow, body, principal.person, prelude, now), now)

    answered = await access.submit(record, action,
                                   summary={"action": body.action, "vault": body.vault})
    return answer(detail_json(*answered), status.HTTP_201_CREATED)  # type: ignore[no-any-return]


@router.get("/{digest}", summary="One proposal with the policy's decision explained",
            operation_id="show_proposal", responses=errors(403, 404))
async def show(request: Request, digest: Digest) -> dict[str, Any]:
    # Authenticated with the ledger's head in one hop; what the detail shows on that ledger
    # is kept by the head, and its decision taken afresh at each request's time.
    def build(reading: answers.Reading) -> Response:
        service = reading.service

        def read_parts(now: datetime) -> DetailParts:
            with views.workflow_access(service).reading() as workflow:
                return detail_parts(workflow, find(workflow, digest), now)

        now = _utc_now(service)
        parts: DetailParts = reading.kept(("proposal", digest),
                                          lambda: (read_parts(now), DETAIL_BYTES))
        require_vault(reading.principal, parts.vault, unknown_proposal(digest))
        if now < parts.inputs.read_at:  # the clock went back: read the window again
            if reading.on_loop:
                raise answers.NotKept
            parts = read_parts(now)
        return Response(answers.encode_json(parts.answer(now)), media_type=answers.JSON)

    return await answers.read(request, READERS, build)  # type: ignore[no-any-return]


@router.post("/{digest}/approvals", status_code=status.HTTP_201_CREATED,
             summary="Upload your signed approval or rejection (custodians of the vault)",
             operation_id="vote_on_proposal", responses=errors(400, 403, 404, 409))
async def vote(digest: Digest, body: ApprovalDocument, principal: Principal = Depends(voters),
               record: Recorder = Depends(get_recorder),
               service: Service = Depends(get_service)) -> dict[str, Any]:
    access = views.workflow_access(service)
    checked: list[ProposalStatus] = []

    def summary(workflow: WorkflowService) -> dict[str, Any]:
        # In the group, before the action: each refusal here writes nothing.
        workflow.sync()
        found = find(workflow, digest)
        require_vault(principal, found.proposal.vault, unknown_proposal(digest))
        if body.custodian != principal.person:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"you may upload only your own vote, not "
                                       f"{body.custodian}'s")
        if body.proposal_digest != found.digest:
            raise ApprovalError(f"this vote is for proposal {body.proposal_digest[:16]}, "
                                f"not {found.digest[:16]}")
        checked.append(found)
        return {"digest": found.digest, "vault": found.proposal.vault,
                "decision": body.decision}

    def action(workflow: WorkflowService, prelude: Sequence[Item]) -> Decided:
        parsed = approval_module.from_document(body.model_dump())
        now = service.clock()
        decision = workflow.vote(parsed, now=now, prelude=prelude)
        found = workflow.projection.status(checked[-1].digest)
        return found, decision, workflow.projection.vault(found.proposal.vault).policy, now

    answered = await access.submit(record, action, summary=summary)
    return answer(detail_json(*answered), status.HTTP_201_CREATED)  # type: ignore[no-any-return]


@router.post("/{digest}/cancel", summary="Cancel before signing (proposer, custodian, auditor)",
             operation_id="cancel_proposal", responses=errors(400, 403, 404, 409))
def cancel(digest: Digest, body: CancelRequest, principal: Principal = Depends(cancellers),
           record: Recorder = Depends(get_recorder),
           service: Service = Depends(get_service)) -> dict[str, Any]:
    access = views.workflow_access(service)
    with access.reading() as workflow:
        found = find(workflow, digest)
    require_vault(principal, found.proposal.vault, unknown_proposal(digest))
    access.act(record, lambda w, prelude: w.cancel(found.digest, principal.person, body.reason,
                                                   prelude=prelude),
               summary={"digest": found.digest, "vault": found.proposal.vault})
    with access.reading() as workflow:
        return detail(service, workflow, find(workflow, found.digest))
