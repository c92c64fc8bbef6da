"""Transfer and vault state derived from ledger entries; reorgs compensate, never edit."""

from __future__ import annotations

from reserve.events.chain_btc import (
    BtcConfirmed,
    BtcDeposit,
    BtcPsbtCreated,
    BtcReorg,
    BtcShareReceived,
)
from reserve.ledger import Ledger
from wallets.bitcoin import records

DIGEST = "dd" * 32


def _deposit(vault: str, txid: str, sats: int) -> BtcDeposit:
    return BtcDeposit(vault=vault, txid=txid, blockhash="aa" * 32, height=10, confirmations=1,
                      delta_sats=sats, outputs=[], amount_sats=sats)


def _ledger() -> Ledger:
    ledger = Ledger.open("sqlite:///:memory:")
    created = BtcPsbtCreated(
        vault="v", network="regtest", digest=DIGEST, policy_version=1, txid="02" * 32,
        psbt_sha256="ee" * 32, psbt_base64="cHNidP8=",
        inputs=[{"txid": "01" * 32, "vout": 0, "amount_sats": 500}],
        outputs=[{"address": "bcrt1qexample", "amount_sats": 300, "change": False}],
        amount_sats=300, input_sats=500, change_sats=0, fee_sats=200, fee_rate_msat_vb=1000,
        fee_rate_source="estimatesmartfee")
    share = BtcShareReceived(
        vault="v", digest=DIGEST, txid="02" * 32, custodian="a", institution="A",
        fingerprint="0a0b0c0d", share_sha256="ff" * 32, signatures=[], signers_count=1,
        threshold=2)
    ledger.append_many([(event.KIND, "w", event.to_payload()) for event in (
        _deposit("v", "01" * 32, 500), created, share, _deposit("other", "03" * 32, 7))])
    return ledger


def test_transfer_record_and_pending_outpoints() -> None:
    ledger = _ledger()
    entries = list(ledger.entries())
    record = records.transfer_record(entries, "v", DIGEST)
    assert record is not None and record.signers == ["a"] and record.txid == "02" * 32
    assert records.transfer_record(entries, "v", "ee" * 32) is None
    assert records.transfer_record(entries, "other", DIGEST) is None
    assert records.pending_outpoints(entries, "v") == {("01" * 32, 0)}
    confirmed = BtcConfirmed(vault="v", txid="02" * 32, blockhash="bb" * 32, height=11,
                             confirmations=1, delta_sats=-500, outputs=[], amount_sats=300,
                             fee_sats=200, digest=DIGEST)
    ledger.append(confirmed.KIND, "w", confirmed.to_payload())
    assert records.pending_outpoints(list(ledger.entries()), "v") == set()
    assert records.chain_state(list(ledger.entries()), "v").balance_sats == 0


def test_reorg_reverses_an_entry_by_sequence_number() -> None:
    ledger = _ledger()
    assert records.chain_state(list(ledger.entries()), "v").balance_sats == 500
    reorg = BtcReorg(vault="v", txid="01" * 32, blockhash="aa" * 32, height=10,
                     reverses_seq=0, reverses_kind="btc.deposit", delta_sats=-500,
                     reason="block no longer on the best chain")
    ledger.append(reorg.KIND, "w", reorg.to_payload())
    state = records.chain_state(list(ledger.entries()), "v")
    assert state.balance_sats == 0 and state.live == () and state.reversed_seqs == {0}
    assert state.events == ()
    assert ledger.entry(0).kind == "btc.deposit"  # still there, unedited
    other = records.chain_state(list(ledger.entries()), "other")
    assert other.balance_sats == 7 and other.live_txids() == {"03" * 32}
