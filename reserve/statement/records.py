"""What the ledger tells the statement: the registered wallets, the class each transfer
proposal declared, and the attributions operators proposed and auditors confirmed; and the
writers of those entries, which refuse (nothing written) whatever does not hold.

Who may do what comes from the custody policies in force (`policy.version`): an operator
(a policy's `[[operators]]`) proposes an attribution, an auditor (a policy's
`roles.auditors`) other than the proposer confirms it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from reserve.errors import PolicyError, StatementError
from reserve.events.chain_btc import BtcBroadcast, BtcPsbtCreated
from reserve.events.custody import PolicyVersion
from reserve.events.mining import SiteChanged, SiteRegistered
from reserve.events.transparency import (
    FlowAttributionConfirmed,
    FlowAttributionProposed,
    WalletRegistered,
)
from reserve.events.workflow import ProposalCreated
from reserve.flow_classes import ATTRIBUTABLE
from reserve.ledger.entry import Entry
from reserve.ledger.store import Ledger
from reserve.policy import loader
from reserve.policy.model import Policy
from reserve.statement.flows import Decided
from reserve.statement.wallets import PublicWallet, registered

TXID = re.compile(r"^[0-9a-f]{64}$")
NOTE_MAX = 500
Attributions = dict[str, dict[str, Decided]]  # txid -> wallet -> class


def declared_classes(entries: Iterable[Entry]) -> dict[str, Decided]:
    """txid -> the class its transfer proposal declared (proposals without one are left
    out); the txid is the one the Bitcoin layer built and broadcast for the proposal."""
    declared: dict[str, Decided] = {}
    by_digest: dict[str, str] = {}
    for entry in entries:
        if entry.kind == ProposalCreated.KIND:
            created = ProposalCreated.of(entry)
            flow_class = created.proposal.get("flow_class")
            if isinstance(flow_class, str):
                by_digest[created.digest] = flow_class
        elif entry.kind in (BtcPsbtCreated.KIND, BtcBroadcast.KIND):
            event = (BtcPsbtCreated if entry.kind == BtcPsbtCreated.KIND else BtcBroadcast).of(
                entry)
            if event.digest in by_digest:
                declared[event.txid] = Decided(by_digest[event.digest],
                                               f"proposal {event.digest}")
    return declared


def attributions(entries: Iterable[Entry]) -> Attributions:
    """The confirmed attributions: txid -> wallet -> class (with the two entries' seqs)."""
    found: Attributions = {}
    for entry in entries:
        if entry.kind == FlowAttributionConfirmed.KIND:
            confirmed = FlowAttributionConfirmed.of(entry)
            found.setdefault(confirmed.txid, {})[confirmed.wallet] = Decided(
                confirmed.flow_class,
                f"attribution {confirmed.proposed_seq} confirmed {entry.seq}")
    return found


def mining_sites(entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """The mining sites' payout wallets and pool payer addresses (`mining.site_registered`),
    in registration order: a coinbase output or a pool payout into one is that site's."""
    found: list[dict[str, Any]] = []
    for entry in entries:
        if entry.kind == SiteRegistered.KIND:
            site = SiteRegistered.of(entry)
            if site.site_kind == "mining":
                found.append({"site": site.site, "payout_wallets": list(site.payout_wallets),
                              "pool_payers": list(site.pool_payers)})
        elif entry.kind == SiteChanged.KIND:  # a retired site keeps its wallets
            change = SiteChanged.of(entry)
            for item in found:
                if item["site"] == change.site:
                    item.update({k: list(change.changes[k]) for k in
                                 ("payout_wallets", "pool_payers") if k in change.changes})
    return found


def policies(entries: Iterable[Entry]) -> list[Policy]:
    """The policy in force for each vault (its latest `policy.version`)."""
    latest: dict[str, Any] = {}
    for entry in entries:
        if entry.kind == PolicyVersion.KIND:
            event = PolicyVersion.of(entry)
            latest[event.vault] = event.policy
    try:
        return [loader.from_mapping(document, source=f"policy of {vault}")
                for vault, document in latest.items()]
    except PolicyError as error:
        raise StatementError(f"a policy in the ledger does not load: {error}") from None


def _is_operator(found: Sequence[Policy], member: str) -> bool:
    return any(o.id == member for p in found for o in p.operators)


def _is_auditor(found: Sequence[Policy], member: str) -> bool:
    return any(member in p.auditors for p in found)


def _wallet(wallets: Sequence[PublicWallet], name: str) -> PublicWallet:
    for wallet in wallets:
        if wallet.name == name:
            return wallet
    raise StatementError(f"no registered wallet {name!r}")


# What an attribution's checks read: the registry, the custody policies (their roles) and
# the attributions so far, through the kind index (not the whole ledger).
ATTRIBUTION_READS = (WalletRegistered.KIND, PolicyVersion.KIND, FlowAttributionProposed.KIND,
                     FlowAttributionConfirmed.KIND)


def propose_attribution(ledger: Ledger, *, txid: str, wallet: str, flow_class: str,
                        note: str, by: str) -> Entry:
    """Append `flow.attribution_proposed` after every check (nothing written on refusal)."""
    if not TXID.match(txid):
        raise StatementError(f"txid must be 64 lowercase hex digits, got {txid[:70]!r}")
    if flow_class not in ATTRIBUTABLE:
        raise StatementError(f"a flow can be attributed to {', '.join(ATTRIBUTABLE)}, not "
                             f"{flow_class!r} (mining is read from the coinbase, "
                             "internal transfers and fees from the chain)")
    if not 1 <= len(note) <= NOTE_MAX:
        raise StatementError(f"the note (why this class) must be 1..{NOTE_MAX} characters")
    entries = list(ledger.entries(kinds=ATTRIBUTION_READS))
    _wallet(registered(entries), wallet)
    if not _is_operator(policies(entries), by):
        raise StatementError(f"{by!r} is not an operator of any custody policy: only an "
                             "operator proposes an attribution")
    if wallet in attributions(entries).get(txid, {}):
        raise StatementError(f"the flow of {txid} for wallet {wallet!r} is attributed already")
    event = FlowAttributionProposed(txid=txid, wallet=wallet, flow_class=flow_class,
                                    note=note, proposer=by)
    return ledger.append(event.KIND, f"operator:{by}", event.to_payload())


def confirm_attribution(ledger: Ledger, *, proposed_seq: int, by: str) -> Entry:
    """Append `flow.attribution_confirmed` for entry `proposed_seq` (nothing written on
    refusal): `by` must be an auditor and not the proposer; once per flow."""
    size = ledger.size()
    if not 0 <= proposed_seq < size:
        raise StatementError(f"no ledger entry {proposed_seq}")
    proposed_entry = ledger.entry(proposed_seq)
    if proposed_entry.kind != FlowAttributionProposed.KIND:
        raise StatementError(f"entry {proposed_seq} is a {proposed_entry.kind}, not an "
                             "attribution proposal")
    proposed = FlowAttributionProposed.of(proposed_entry)
    entries = list(ledger.entries(kinds=ATTRIBUTION_READS))
    if not _is_auditor(policies(entries), by):
        raise StatementError(f"{by!r} is not an auditor of any custody policy: only an "
                             "auditor confirms an attribution")
    if by == proposed.proposer:
        raise StatementError(f"{by!r} proposed this attribution: another person, an "
                             "auditor, must confirm it")
    if proposed.wallet in attributions(entries).get(proposed.txid, {}):
        raise StatementError(f"the flow of {proposed.txid} for wallet {proposed.wallet!r} "
                             "is attributed already")
    event = FlowAttributionConfirmed(proposed_seq=proposed_seq, txid=proposed.txid,
                                     wallet=proposed.wallet, flow_class=proposed.flow_class,
                                     auditor=by)
    return ledger.append(event.KIND, f"auditor:{by}", event.to_payload())
