"""One readable sentence per ledger entry, for the ledger explorer.

"central-bank approved proposal 42867d…: 1.50000000 BTC to Central bank cold storage".
Pure: each family of kinds (workflow, custody, Bitcoin, EVM, records, access, supervision) has one
function from the typed event, the entry's actor and what is known about the proposals
it names (`Proposals`, a digest -> `ProposalBrief` map the caller fills from the
workflow projection) to a sentence. An entry whose kind has no sentence, or whose payload
does not decode as its kind, reads as its kind name: the raw entry is always a click away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reserve import present
from reserve.errors import EventError
from reserve.events import (
    Event,
    access,
    chain_btc,
    chain_evm,
    custody,
    records,
    supervision,
    workflow,
)
from reserve.events.registry import decode
from reserve.proposals.proposal import DestinationBody, Proposal, TransferBody

DIGEST_SHOWN = 6  # hex digits of a digest or hash kept in a sentence
NOTE_SHOWN = 200  # characters of a note's text kept in its sentence (the rest is raw)


@dataclass(frozen=True)
class ProposalBrief:
    """What a sentence says about a proposal: "1.50000000 BTC to Cold storage"."""

    digest: str
    action: str
    vault: str
    what: str


Proposals = Mapping[str, ProposalBrief]


def short(text: object) -> str:
    """A digest or hash cut to its first digits: '42867d…'."""
    value = str(text)
    value = value[2:] if value.startswith("0x") else value
    return value[:DIGEST_SHOWN] + "…" if len(value) > DIGEST_SHOWN else value


def transfer_what(asset: str, outputs: list[tuple[str, int]],
                  labels: Mapping[str, str]) -> str:
    """'1.50000000 BTC to Central bank cold storage' (labels by address, else the address)."""
    total = sum(amount for _, amount in outputs)
    places = sorted({labels.get(address, address) for address, _ in outputs})
    target = places[0] if len(places) == 1 else f"{len(places)} destinations"
    return f"{present.format_amount(total, asset)} to {target}"


def brief(proposal: Proposal, labels: Mapping[str, str]) -> ProposalBrief:
    """What a sentence says of `proposal`; `labels` names its vault's destinations."""
    body = proposal.body
    what = ""
    if isinstance(body, TransferBody):
        what = transfer_what(body.asset, [(o.destination, o.amount) for o in body.outputs],
                             labels)
    elif isinstance(body, DestinationBody):
        what = f"allowlist {body.label} ({body.asset})"
    elif proposal.action:
        what = proposal.action.replace(".", " ").replace("_", " ")
    return ProposalBrief(proposal.digest_hex, proposal.action, proposal.vault, what)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _proposal(digest: str, proposals: Proposals) -> str:
    brief = proposals.get(digest)
    if brief is None:
        return f"proposal {short(digest)}"
    return f"proposal {short(digest)}: {brief.what}" if brief.what else \
        f"{brief.action} proposal {short(digest)}"


# -- one function per family ---------------------------------------------------------------
def workflow_sentence(event: Event, actor: str, proposals: Proposals) -> str | None:
    if isinstance(event, workflow.ProposalApproved | workflow.ProposalRejected):
        verb = "approved" if isinstance(event, workflow.ProposalApproved) else "rejected"
        return f"{event.custodian} {verb} {_proposal(event.digest, proposals)}"
    if isinstance(event, workflow.PROPOSED_KINDS):
        return f"{actor} proposed on {event.vault}: {_proposal(event.digest, proposals)}"
    if isinstance(event, workflow.ProposalCancelled):
        return f"{actor} cancelled {_proposal(event.digest, proposals)} ({event.reason})"
    if isinstance(event, workflow.ProposalExpired):
        return f"{_proposal(event.digest, proposals)} expired unapproved"
    if isinstance(event, workflow.ProposalState):
        reason = f" ({event.reason})" if event.reason and event.reason != event.target else ""
        return f"{_proposal(event.digest, proposals)} is now {event.target}{reason}"
    return None


def custody_sentence(event: Event, actor: str, proposals: Proposals) -> str | None:
    if isinstance(event, custody.PolicyVersion):
        return f"{actor} put policy v{event.version} in force for {event.vault}" + \
            (f" ({event.reason})" if event.reason else "")
    if isinstance(event, custody.PolicyChangeApplied):
        return f"policy v{event.version} of {event.vault} applied by " \
               f"{_proposal(event.digest, proposals)}"
    if isinstance(event, custody.DestinationAdded):
        return f"{event.label} ({event.asset}, {event.address}) allowlisted for " \
               f"{event.vault}, usable from {present.format_time(event.usable_from)}"
    if isinstance(event, custody.BitcoinVaultRegistered):
        return f"{actor} registered Bitcoin vault {event.vault} on {event.network} " \
               f"({event.threshold} of {len(event.custodians)} signatures)"
    if isinstance(event, custody.EvmVaultRegistered):
        return f"{actor} registered EVM vault {event.vault}: Safe {event.safe} on chain " \
               f"{event.chain_id} ({event.threshold} of {len(event.owners)} owners)"
    if isinstance(event, custody.VaultFrozen):
        return f"{actor} froze {event.vault}: {event.reason}"
    if isinstance(event, custody.VaultUnfrozen):
        return f"{event.vault} unfrozen by {_proposal(event.digest, proposals)}"
    return None


def bitcoin_sentence(event: Event, actor: str, proposals: Proposals) -> str | None:
    btc = present.format_amount
    if isinstance(event, chain_btc.BtcPsbtCreated):
        return f"PSBT {short(event.txid)} built for {_proposal(event.digest, proposals)} " \
               f"(fee {btc(event.fee_sats, 'BTC')})"
    if isinstance(event, chain_btc.BtcShareReceived):
        return f"{event.custodian} signed {_proposal(event.digest, proposals)} " \
               f"({event.signers_count} of {event.threshold} signatures)"
    if isinstance(event, chain_btc.BtcFinalized):
        return f"{_proposal(event.digest, proposals)} finalised, signed by " \
               f"{', '.join(str(s) for s in event.signers)}"
    if isinstance(event, chain_btc.BtcBroadcast):
        return f"{_proposal(event.digest, proposals)} broadcast as {short(event.txid)}"
    if isinstance(event, chain_btc.BtcDeposit):
        return f"{btc(event.delta_sats, 'BTC')} deposited to {event.vault} " \
               f"(tx {short(event.txid)}, block {event.height})"
    if isinstance(event, chain_btc.BtcConfirmed):
        named = _proposal(event.digest, proposals) if event.digest else "a spend"
        moved = "spent" if event.delta_sats < 0 else "received"
        return f"{named} confirmed in block {event.height} " \
               f"({_plural(event.confirmations, 'confirmation')}): {event.vault} {moved} " \
               f"{btc(abs(event.delta_sats), 'BTC')}, fee included"
    if isinstance(event, chain_btc.BtcReorg):
        return f"block {event.height} left the chain: entry {event.reverses_seq} " \
               f"({event.reverses_kind}) of {event.vault} reversed"
    return None


def evm_sentence(event: Event, actor: str, proposals: Proposals) -> str | None:
    if isinstance(event, chain_evm.EvmSafeTxCreated):
        return f"Safe transaction {short(event.safe_tx_hash)} prepared for " \
               f"{_proposal(event.digest, proposals)}"
    if isinstance(event, chain_evm.EvmSignatureReceived):
        return f"owner {event.signer} signed {_proposal(event.digest, proposals)}"
    if isinstance(event, chain_evm.EvmExecuted):
        outcome = "executed" if event.success else "failed on chain"
        what = "" if event.digest in proposals else \
            f": {present.format_amount(event.amount_wei, event.asset)} to {event.to}"
        return f"{_proposal(event.digest, proposals)} {outcome} in block " \
               f"{event.block_number}{what}"
    if isinstance(event, chain_evm.EvmConfirmed):
        named = _proposal(event.digest, proposals) if isinstance(event.digest, str) \
            else f"transaction {short(event.tx_hash)}"
        return f"{named} confirmed ({_plural(event.confirmations, 'confirmation')})"
    if isinstance(event, chain_evm.EvmDeposit):
        return f"{present.format_amount(event.amount_wei, event.asset)} deposited to " \
               f"{event.vault} from {event.sender} (block {event.block_number})"
    if isinstance(event, chain_evm.EvmReorg):
        return f"block {event.block_number} left the chain: entry {event.reverses_seq} " \
               f"({event.reverses_kind}) of {event.vault} reversed"
    return None


def records_sentence(event: Event, actor: str, proposals: Proposals) -> str | None:
    if isinstance(event, records.LedgerNote):
        text = event.content.get("text") if isinstance(event.content, dict) else None
        if not isinstance(text, str):
            return f"{actor} added a note"
        return f"{actor} noted: " + (text if len(text) <= NOTE_SHOWN
                                     else text[:NOTE_SHOWN - 1] + "…")
    if isinstance(event, records.CheckpointAnchored):
        return f"checkpoint of {event.tree_size} entries anchored on chain {event.chain_id} " \
               f"(block {event.block_number})"
    if isinstance(event, records.ReportAnchored):
        return f"reconciliation report {short(event.report_sha256)} anchored on chain " \
               f"{event.chain_id} (block {event.block_number})"
    if isinstance(event, records.ReconcileReport):
        counts = event.findings_by_severity if isinstance(event.findings_by_severity, dict) \
            else {}
        findings = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no findings"
        return f"{actor} checked in reconciliation report {short(event.report_sha256)} " \
               f"at ledger size {event.ledger_tree_size}: {findings}"
    return None


def access_sentence(event: Event, actor: str, proposals: Proposals) -> str | None:
    if isinstance(event, access.ApiRequest):
        return f"{actor} requested {event.method} {event.path}"
    if isinstance(event, access.TokenIssued):
        return f"{event.role} token {event.token_id} issued to {event.person}"
    if isinstance(event, access.TokenRequested):
        return f"{event.requested_by} asked for a {event.role} token for {event.person}"
    if isinstance(event, access.TokenRequestRejected):
        return f"{actor} rejected the {event.role} token request for {event.person}"
    if isinstance(event, access.TokenRevoked):
        return f"{actor} revoked {event.person}'s {event.role} token {event.token_id}"
    if isinstance(event, access.UserWritten):
        person = event.user.get("person") if isinstance(event.user, dict) else None
        return f"{actor} {event.change} user {person}"
    if isinstance(event, access.UserDisabled):
        return f"{actor} disabled user {event.person}"
    return None


def supervision_sentence(event: Event, actor: str, proposals: Proposals) -> str | None:
    if isinstance(event, supervision.LicenceChanged):
        return (f"the regulator's signed change {event.number} of licence {event.licence_id} "
                f"({event.entity}): {event.status} from "
                f"{present.format_time(event.effective_at)}")
    if isinstance(event, supervision.AlertAcknowledged):
        return f"{actor} acknowledged alert {event.alert_seq} ({event.alert_kind})"
    if isinstance(event, supervision.ReportAttested):
        return f"{actor} countersigned the reconciliation report of entry {event.report_seq}"
    return None


FAMILIES: tuple[Callable[[Event, str, Proposals], str | None], ...] = (
    workflow_sentence, custody_sentence, bitcoin_sentence, evm_sentence, records_sentence,
    access_sentence, supervision_sentence)


def sentence(kind: str, actor: str, payload: Any, proposals: Proposals) -> str:
    """The entry as a sentence; its kind name when no family words it."""
    try:
        event = decode(kind, payload)
    except EventError:
        return kind
    for family in FAMILIES:
        try:
            words = family(event, actor, proposals)
        except (TypeError, ValueError, AttributeError):
            return kind  # a payload of an odd shape within its kind: no sentence
        if words is not None:
            return words
    return kind


def digests_named(kind: str, payload: Any) -> str | None:
    """The proposal digest an entry names, if any (to look its proposal up)."""
    if not isinstance(payload, dict):
        return None
    for key in ("digest", "proposal_digest"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value
    return None
