"""Workflow fixtures for the API tests: a policy whose members are the API test people.

The API person id is the policy's member id, so the test policy names `cora-custodian`
(custodian of vault-a, with a TEST approval key), `olga-operator` (proposer) and
`aldo-auditor` (auditor) next to the national-btc custodians, and `sara-supervisor`
supervises it (may freeze).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from reserve.api import accounts
from reserve.events.records import ReconcileReport
from reserve.policy import loader
from reserve.policy.model import Policy
from reserve.policy.testkeys import private_key_of, public_key_hex_of
from reserve.proposals.approval import sign
from reserve.transfers.projection import ProposalStatus
from reserve.transfers.service import WorkflowService
from tests.support.api_server import RunningServer
from tests.support.workflow import COLD, btc_document, workflow_service

CUSTODIAN = "cora-custodian"
OPERATOR = "olga-operator"
AUDITOR = "aldo-auditor"
SUPERVISOR = "sara-supervisor"


def api_policy(vault: str, custodian: str = CUSTODIAN) -> Policy:
    """national-btc's rules for `vault`; its first custodian is replaced by `custodian`."""
    document: dict[str, Any] = btc_document(vault)
    first = document["custodians"][0]
    first.update({"id": custodian, "approval_public_key": public_key_hex_of(custodian)})
    document["operators"] += [{"id": OPERATOR, "name": "Olga", "institution": "Treasury"},
                              {"id": AUDITOR, "name": "Aldo", "institution": "Audit office"}]
    document["roles"]["proposers"] = [*document["roles"]["proposers"], OPERATOR]
    document["roles"]["auditors"] = [*document["roles"]["auditors"], AUDITOR]
    # The regulator's seat: sara-supervisor reads everything and may freeze (issue 18).
    document["supervision"] = {"supervisors": [SUPERVISOR], "may_freeze": True}
    return loader.from_mapping(document, source="api test policy")


def workflow(server: RunningServer) -> WorkflowService:
    return WorkflowService(server.ledger, clock=server.clock.wall)


def register(server: RunningServer, vault: str, custodian: str = CUSTODIAN) -> None:
    workflow_service(server.ledger, api_policy(vault, custodian), clock=server.clock.wall,
                     actor="test-bootstrap")


def propose(server: RunningServer, vault: str = "vault-a", amount: int = 5_000_000,
            purpose: str = "test transfer") -> ProposalStatus:
    return workflow(server).propose_transfer(
        vault=vault, proposer=OPERATOR, asset="BTC", outputs=[(COLD, amount)], fee_max=20_000,
        purpose=purpose, reference="API-1", expires_in_seconds=int(timedelta(days=7).total_seconds()))


def vote_document(digest: str, custodian: str, decision: str = "approve") -> dict[str, Any]:
    return sign(private_key_of(custodian), bytes.fromhex(digest), decision,
                custodian).document()


# -- for the role matrix (tests/nodes/test_api_roles.py) ------------------------------------
def seed_matrix(server: RunningServer) -> dict[str, str]:
    """vault-a's policy, an open and an approved transfer, a reconciliation entry."""
    register(server, "vault-a")
    open_one = propose(server, purpose="open")
    approved = propose(server, purpose="approved", amount=4_000_000)
    service = workflow(server)
    for who in (CUSTODIAN, "central-bank"):
        service.vote(sign(private_key_of(who), approved.proposal.digest, "approve", who))
    # The entry a checked-in report leaves (its signature is not checked by these routes).
    size = server.ledger.size()
    report = server.ledger.append("reconcile.report", "auditor-general", ReconcileReport(
        report_sha256="cd" * 32, auditor_key="auditor.test+00000000+AAAA", signature="AAAA",
        ledger_tree_size=size, ledger_root_hash="ef" * 32,
        block={"height": 101, "hash": "ab" * 32},
        summary=[{"vault_id": "vault-a", "asset": "BTC", "status": "ok", "difference": 0}],
        findings_by_severity={}).to_payload(), now=server.clock.wall())
    return {"open": open_one.digest, "approved": approved.digest, "report": str(report.seq)}


def fresh_vault(server: RunningServer, frozen: bool = False) -> str:
    """A new vault with the test policy, which cora-custodian is made a member of."""
    vault = f"matrix-{secrets.token_hex(4)}"
    register(server, vault)
    user = server.store.require_user(CUSTODIAN)
    accounts.update_user(server.store, server.record, person=CUSTODIAN, name=user.name,
                         institution=user.institution, roles=list(user.roles),
                         vaults=[*user.vaults, vault])
    if frozen:
        workflow(server).freeze(vault, AUDITOR, "matrix")
    return vault


def fresh_proposal(server: RunningServer) -> str:
    return propose(server, purpose=f"matrix {secrets.token_hex(4)}", amount=1000).digest


def proposal_body() -> dict[str, Any]:
    return {"vault": "vault-a", "asset": "BTC", "purpose": "matrix", "fee_max": "1000",
            "reference": secrets.token_hex(4),
            "outputs": [{"destination": COLD, "amount": "1000"}]}
