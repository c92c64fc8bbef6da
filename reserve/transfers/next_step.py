"""What happens next to a proposal, and who must act: one answer for the CLI, API and dashboard.

A proposal moves proposed -> approved -> releasable -> signing -> broadcast -> confirmed
(reserve/proposals/state.py). At each state exactly one kind of person can move it on:
custodians vote, time runs out a delay, an operator releases it to the chain layer,
custodians sign from their signing package, an operator broadcasts, the chain confirms.
`next_step` reads that from the proposal's recorded status (and the policy's decision
while it is open) and names the people and the command. It is pure: no ledger, no node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reserve.policy.evaluate import Decision
from reserve.policy.model import Policy
from reserve.proposals.proposal import TransferBody
from reserve.proposals.state import (
    APPLIED,
    APPROVED,
    BROADCAST,
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    FAILED,
    PROPOSED,
    REJECTED,
    RELEASABLE,
    SIGNING,
)
from reserve.transfers.projection import ProposalStatus

SHARE_KINDS = ("btc.share_received", "evm.signature_received")
ENDED = {CONFIRMED: "confirmed on chain", APPLIED: "applied",
         REJECTED: "rejected by the custodians", EXPIRED: "expired before it was released",
         CANCELLED: "cancelled", FAILED: "failed: nothing more happens to it"}


@dataclass(frozen=True)
class NextStep:
    """`step` is one of: vote, wait, release, apply, sign, broadcast, confirm, none."""

    step: str
    who: tuple[str, ...]  # member ids, or a role in angle brackets ("<operator>")
    text: str
    command: str = ""

    def to_json(self) -> dict[str, object]:
        return {"step": self.step, "who": list(self.who), "text": self.text,
                "command": self.command or None}


def signers(status: ProposalStatus) -> tuple[str, ...]:
    """Who has handed in a signature share so far, in order (custodian id or EVM owner)."""
    found: list[str] = []
    for step in status.chain_steps:
        if step.kind in SHARE_KINDS:
            name = str(step.payload.get("custodian") or step.payload.get("signer") or "")
            if name and name not in found:
                found.append(name)
    return tuple(found)


def shares_complete(status: ProposalStatus) -> bool:
    """True when the Bitcoin layer reported enough shares to finalise (EVM: not known here)."""
    shares = [s for s in status.chain_steps if s.kind == "btc.share_received"]
    if not shares:
        return False
    last = shares[-1].payload
    return int(last.get("signers_count", 0)) >= int(last.get("threshold", 1 << 30))


def voters_left(policy: Policy, status: ProposalStatus) -> tuple[str, ...]:
    """Custodians who may still vote: not the proposer, not already voted."""
    voted = {vote.custodian for vote in status.votes}
    return tuple(c.id for c in policy.custodians
                 if c.id != status.proposal.proposer and c.id not in voted)


def next_step(status: ProposalStatus, policy: Policy, decision: Decision | None,
              now: datetime) -> NextStep:
    """The next step for `status` under `policy` (its decision given while it is open)."""
    digest = status.digest
    short = digest[:16]
    transfer = isinstance(status.proposal.body, TransferBody)
    state = status.state
    if state in ENDED:
        return NextStep("none", (), f"nothing: the proposal is {ENDED[state]}")
    if state == PROPOSED:
        if decision is not None and decision.refused:
            return NextStep("none", (), decision.explain())
        left = voters_left(policy, status)
        missing = "; ".join(decision.missing) if decision is not None else "approvals"
        return NextStep("vote", left, f"custodians vote ({missing}), each signing offline "
                        "with their own approval key",
                        f"reserve-sign approval sign PROPOSAL_FILE --digest {digest} --key KEY "
                        "--out VOTE; reserve approve VOTE")
    if state == APPROVED:
        ends = decision.delay_ends_at if decision is not None else None
        when = f" until {ends.isoformat().replace('+00:00', 'Z')}" if ends else ""
        if ends is not None and ends <= now:
            when = " (it is over: the next refresh records it)"
        return NextStep("wait", (), f"the time delay runs{when}; then it is releasable",
                        "reserve proposal refresh")
    if state == RELEASABLE and not transfer:
        return NextStep("apply", ("<operator>",), "it is applied at the next refresh",
                        "reserve proposal refresh")
    if state == RELEASABLE:
        return NextStep("release", ("<operator>",),
                        "an operator releases it: the chain layer builds what the "
                        "custodians sign, exactly the approved outputs",
                        f"reserve transfer release {short} --by OPERATOR")
    if state == SIGNING:
        done = signers(status)
        have = f"{len(done)} share(s) so far ({', '.join(done)})" if done else "no shares yet"
        if shares_complete(status):
            return NextStep("broadcast", ("<operator>",),
                            f"enough signatures ({have}): an operator broadcasts",
                            f"reserve transfer broadcast {short} --by OPERATOR")
        left = tuple(c.id for c in policy.custodians if c.id not in done)
        return NextStep("sign", left,
                        f"custodians sign offline from the signing package ({have}); "
                        "once enough have signed, an operator broadcasts",
                        f"reserve transfer signing-package {short} --out PACKAGE; "
                        f"reserve transfer submit-share {short} SHARE --by CUSTODIAN")
    if state == BROADCAST:
        return NextStep("confirm", ("<operator>",),
                        f"transaction {status.txid or '?'} is on the network; it is "
                        "confirmed once deep enough in the chain",
                        f"reserve transfer confirm {short}")
    return NextStep("none", (), f"state {state}: no step defined")
