"""Transfer and vault state derived from ledger entries; reorgs compensate, never edit."""

from __future__ import annotations

from reserve.ledger import Ledger
from wallets.bitcoin import records


def _ledger() -> Ledger:
    ledger = Ledger.open("sqlite:///:memory:")
    chain = {"vault_id": "v", "blockhash": "aa" * 32, "height": 10, "confirmations": 1,
             "outputs": []}
    ledger.append_many([
        ("btc.deposit", "w", {**chain, "txid": "01" * 32, "delta_sats": 500, "amount_sats": 500}),
        ("btc.psbt_created", "s", {"vault_id": "v", "proposal_digest": "dd", "txid": "02" * 32,
                                   "inputs": [{"txid": "01" * 32, "vout": 0,
                                               "amount_sats": 500}]}),
        ("btc.share_received", "s", {"vault_id": "v", "proposal_digest": "dd",
                                     "txid": "02" * 32, "custodian": "a"}),
        ("btc.deposit", "w", {**chain, "vault_id": "other", "txid": "03" * 32,
                              "delta_sats": 7, "amount_sats": 7}),
    ])
    return ledger


def test_transfer_record_and_pending_outpoints() -> None:
    ledger = _ledger()
    entries = list(ledger.entries())
    record = records.transfer_record(entries, "v", "dd")
    assert record is not None and record.signers == ["a"] and record.txid == "02" * 32
    assert records.transfer_record(entries, "v", "ee") is None
    assert records.transfer_record(entries, "other", "dd") is None
    assert records.pending_outpoints(entries, "v") == {("01" * 32, 0)}
    ledger.append("btc.confirmed", "w", {"vault_id": "v", "txid": "02" * 32, "delta_sats": -400,
                                         "blockhash": "bb" * 32, "height": 11})
    assert records.pending_outpoints(list(ledger.entries()), "v") == set()


def test_reorg_reverses_an_entry_by_sequence_number() -> None:
    ledger = _ledger()
    assert records.chain_state(list(ledger.entries()), "v").balance_sats == 500
    ledger.append("btc.reorg", "w", {"vault_id": "v", "txid": "01" * 32, "reverses_seq": 0,
                                     "delta_sats": -500})
    state = records.chain_state(list(ledger.entries()), "v")
    assert state.balance_sats == 0 and state.live == () and state.reversed_seqs == {0}
    assert ledger.entry(0).kind == "btc.deposit"  # still there, unedited
    assert records.chain_state(list(ledger.entries()), "other").balance_sats == 7
