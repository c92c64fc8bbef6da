"""Transfer and vault state derived from ledger entries; reorgs compensate, never edit."""

from __future__ import annotations

from reserve.events.chain_btc import BtcPsbtCreated, BtcShareReceived
from reserve.ledger import Ledger
from wallets.bitcoin import records


def _chain(vault: str, txid: str, delta: int, **more: object) -> dict[str, object]:
    return {"vault_id": vault, "txid": txid, "blockhash": "aa" * 32, "height": 10,
            "confirmations": 1, "outputs": [], "delta_sats": delta, "amount_sats": abs(delta),
            **more}


def _ledger() -> Ledger:
    ledger = Ledger.open("sqlite:///:memory:")
    psbt = BtcPsbtCreated(
        vault="v", network="regtest", digest="dd", policy_version=1, txid="02" * 32,
        psbt_sha256="11" * 32, psbt_base64="cHNidP8=",
        inputs=[{"txid": "01" * 32, "vout": 0, "amount_sats": 500}],
        outputs=[{"address": "bcrt1q", "amount_sats": 400, "change": False}], amount_sats=400,
        input_sats=500, change_sats=0, fee_sats=100, fee_rate_msat_vb=1000,
        fee_rate_source="test")
    share = BtcShareReceived(vault="v", digest="dd", txid="02" * 32, custodian="a",
                             institution="A", fingerprint="00" * 4, share_sha256="22" * 32,
                             signatures=[], signers_count=1, threshold=2)
    ledger.append_many([
        ("btc.deposit", "w", _chain("v", "01" * 32, 500)),
        (psbt.KIND, "s", psbt.to_payload()),
        (share.KIND, "s", share.to_payload()),
        ("btc.deposit", "w", _chain("other", "03" * 32, 7)),
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
    ledger.append("btc.confirmed", "w", _chain("v", "02" * 32, -500, fee_sats=-100,
                                               proposal_digest="dd"))
    assert records.pending_outpoints(list(ledger.entries()), "v") == set()


def test_reorg_reverses_an_entry_by_sequence_number() -> None:
    ledger = _ledger()
    assert records.chain_state(list(ledger.entries()), "v").balance_sats == 500
    ledger.append("btc.reorg", "w", {"vault_id": "v", "txid": "01" * 32, "reverses_seq": 0,
                                     "reverses_kind": "btc.deposit", "delta_sats": -500,
                                     "blockhash": "aa" * 32, "height": 10,
                                     "reason": "block no longer on the best chain"})
    state = records.chain_state(list(ledger.entries()), "v")
    assert state.balance_sats == 0 and state.live == () and state.reversed_seqs == {0}
    assert ledger.entry(0).kind == "btc.deposit"  # still there, unedited
    assert records.chain_state(list(ledger.entries()), "other").balance_sats == 7
