"""The ledger explorer's sentences: one per entry, from the typed event and the proposal.

Checked on hand-made entries of each family, and on every entry of the two fixture ledgers
(which together hold every kind): each kind reads as a sentence, and a payload that does
not fit its kind, or an unknown kind, falls back to the kind name instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reserve.api import entry_words
from reserve.api.entry_words import ProposalBrief, sentence
from reserve.ledger.entry import decode_body
from reserve.ledger.verify import read_export
from reserve.transfers.projection import Projection
from reserve.transfers.service import WorkflowService
from tests.support.workflow import COLD, vote

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DIGEST = "42867d" + "0" * 58
BRIEFS = {DIGEST: ProposalBrief(DIGEST, "transfer", "national-btc",
                                "1.50000000 BTC to Central bank cold storage")}


def test_a_vote_names_the_custodian_the_proposal_amount_and_destination() -> None:
    payload = {"vault": "national-btc", "digest": DIGEST, "custodian": "central-bank",
               "decision": "approve", "signature": "ab" * 64}
    assert sentence("proposal.approved", "api", payload, BRIEFS) == (
        "central-bank approved proposal 42867d…: 1.50000000 BTC to Central bank cold storage")
    # A proposal the caller knows nothing of is named by its digest alone.
    assert sentence("proposal.approved", "api", payload, {}) == \
        "central-bank approved proposal 42867d…"


def test_a_transfer_proposed_through_the_workflow_reads_in_asset_units(
        service: WorkflowService) -> None:
    created = service.propose_transfer(vault="national-btc", proposer="treasury-ops",
                                       asset="BTC", outputs=[(COLD, 150_000_000)],
                                       fee_max=20_000, purpose="cold storage")
    service.vote(vote(created.proposal, "central-bank"))
    labels = {d.address: d.label for d in service.policy("national-btc").destinations}
    briefs = {created.digest: entry_words.brief(created.proposal, labels)}
    words = [sentence(e.kind, e.actor, e.payload, briefs)
             for e in service.ledger.entries(kinds=("proposal.created", "proposal.approved"))]
    assert words == [
        f"treasury-ops proposed on national-btc: proposal {created.digest[:6]}…: "
        "1.50000000 BTC to Central bank cold storage (TEST)",
        f"central-bank approved proposal {created.digest[:6]}…: "
        "1.50000000 BTC to Central bank cold storage (TEST)"]


def test_chain_and_record_entries_read_in_asset_units() -> None:
    deposit = {"vault_id": "national-btc", "txid": "11" * 32, "blockhash": "22" * 32,
               "height": 101, "confirmations": 1, "delta_sats": 250_000_000,
               "amount_sats": 250_000_000, "outputs": []}
    assert sentence("btc.deposit", "btc-watcher", deposit, {}) == \
        "2.50000000 BTC deposited to national-btc (tx 111111…, block 101)"
    assert sentence("ledger.note", "olga", {"text": "hello"}, {}) == "olga noted: hello"
    assert sentence("ledger.note", "olga", {"memo": 1}, {}) == "olga added a note"
    long = sentence("ledger.note", "olga", {"text": "x" * 5000}, {})
    assert len(long) == len("olga noted: ") + entry_words.NOTE_SHOWN and long.endswith("…")


def test_unknown_kinds_and_ill_fitting_payloads_fall_back_to_the_kind_name() -> None:
    assert sentence("no.such.kind", "x", {}, {}) == "no.such.kind"
    assert sentence("btc.deposit", "x", {"vault_id": 1}, {}) == "btc.deposit"
    assert sentence("proposal.approved", "x", [], {}) == "proposal.approved"


def test_digest_named_finds_the_workflow_and_chain_spellings() -> None:
    assert entry_words.digests_named("proposal.approved", {"digest": DIGEST}) == DIGEST
    assert entry_words.digests_named("btc.broadcast", {"proposal_digest": DIGEST}) == DIGEST
    assert entry_words.digests_named("ledger.note", {"text": "x"}) is None
    assert entry_words.digests_named("ledger.note", None) is None


def _entries(name: str) -> list[Any]:
    _, rows, _, _ = read_export(FIXTURES / name / "ledger.jsonl")
    return [decode_body(body, entry_hash) for _, body, entry_hash in rows]


@pytest.mark.parametrize("name", ["demo_ledger", "workflow_ledger"])
def test_every_fixture_entry_reads_as_a_sentence(name: str) -> None:
    entries = _entries(name)
    projection = Projection()
    projection.apply_all(entries)
    briefs = {digest: entry_words.brief(status.proposal, {})
              for digest, status in projection.proposals.items()}
    for entry in entries:
        words = sentence(entry.kind, entry.actor, entry.payload, briefs)
        assert words and words != entry.kind, f"entry {entry.seq} ({entry.kind})"
        assert "ABSENT" not in words and "None" not in words, (entry.seq, words)


def test_supervision_entries_read_as_sentences() -> None:
    from datetime import UTC, datetime

    from reserve.events.supervision import AlertAcknowledged, ReportAttested
    from reserve.transfers.licences import event_of
    from tests.support.supervision import change

    licence = event_of(change("suspended", 2, datetime(2026, 1, 5, 9, 0, tzinfo=UTC)))
    assert entry_words.sentence(licence.KIND, "regulator", licence.to_payload(), {}) == (
        "the regulator's signed change 2 of licence L-042 (Example Exchange Ltd): suspended "
        "from 2026-01-05T09:00:00Z")
    ack = AlertAcknowledged(alert_seq=7, alert_kind="vault.frozen", note="")
    assert entry_words.sentence(ack.KIND, "sara", ack.to_payload(), {}) == \
        "sara acknowledged alert 7 (vault.frozen)"
    attested = ReportAttested(report_seq=9, report_sha256="ab" * 32, supervisor_key="k",
                              signature="s", statement="checked")
    assert entry_words.sentence(attested.KIND, "sara", attested.to_payload(), {}) == \
        "sara countersigned the reconciliation report of entry 9"
