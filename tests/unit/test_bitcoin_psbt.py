"""PSBT building, checking and share verification (pure, no node).

Every refusal is a PSBTError with a message that says what differed.
"""

from __future__ import annotations

import hashlib

import pytest
from embit.psbt import PSBT
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.errors import PSBTError
from wallets.bitcoin import shares
from wallets.bitcoin.coins import InsufficientFunds, Utxo, select_coins
from wallets.bitcoin.fees import FeeRate
from wallets.bitcoin.psbt_build import (
    SUBTYPE_POLICY_VERSION,
    DustOutput,
    FeeAboveCap,
    build_psbt,
    proprietary_key,
)
from wallets.bitcoin.psbt_check import check_against_transfer, describe, parse_psbt
from wallets.bitcoin.testkeys import demo_custodian_keys, demo_vault
from wallets.bitcoin.transfer import ApprovedTransfer, TransferOutput
from wallets.bitcoin.vault import RECEIVE, Vault

VAULT = demo_vault(2, 3, vault_id="unit-2of3")
ROOTS = [k.root for k in demo_custodian_keys(3)]
DEST = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
RATE = FeeRate(2000, "floor")


def _transfer(outputs=((DEST, 150_000_000),), vault: Vault = VAULT,  # type: ignore[no-untyped-def]
              fee_sats_max: int = 100_000, version: int = 1) -> ApprovedTransfer:
    return ApprovedTransfer(hashlib.sha256(repr(outputs).encode()).digest(), version,
                            vault.vault_id, vault.network,
                            tuple(TransferOutput(a, s) for a, s in outputs), fee_sats_max)


def _utxos(amounts: list[int]) -> list[Utxo]:
    return [Utxo(f"{i + 1:064x}", i % 3, amount, RECEIVE, i, 6)
            for i, amount in enumerate(amounts)]


def _build(transfer: ApprovedTransfer | None = None, vault: Vault = VAULT) -> PSBT:
    transfer = transfer or _transfer(vault=vault)
    selection = select_coins(_utxos([100_000_000, 100_000_000]), transfer.amount_sats, [22],
                             RATE, vault.threshold, len(vault.custodians))
    return build_psbt(vault, transfer, selection, change_index=3)


def test_built_psbt_describes_and_matches_its_transfer() -> None:
    transfer = _transfer()
    psbt = _build(transfer)
    summary = describe(parse_psbt(psbt.serialize()), VAULT)
    check_against_transfer(summary, VAULT, transfer)
    assert [(o.address, o.amount_sats) for o in summary.payments] == [(DEST, 150_000_000)]
    assert summary.outputs[-1].change_index == 3
    assert summary.input_sats == 150_000_000 + summary.change_sats + summary.fee_sats
    assert summary.metadata.proposal_digest == transfer.proposal_digest
    assert all(i.sequence == 0xFFFFFFFD for i in psbt.tx.vin)
    for form in (psbt.serialize(), psbt.to_base64(), psbt.to_base64().encode(),
                 psbt.serialize().hex()):
        assert parse_psbt(form).serialize() == psbt.serialize()


@pytest.mark.parametrize("mangle", [
    lambda raw: raw[:-1], lambda raw: raw[: len(raw) // 2], lambda raw: b"psbt\xff",
    lambda raw: b"xsbt" + raw[4:], lambda raw: raw + b"\x00", lambda raw: b"",
    lambda raw: raw[:5] + b"\xff" + raw[6:],
])
def test_malformed_or_truncated_psbt_is_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PSBTError):
        describe(parse_psbt(mangle(_build().serialize())), VAULT)


def test_garbage_text_is_refused() -> None:
    for text in ["", "not base64 !!!", "cHNidP8=", "00" * 10]:
        with pytest.raises(PSBTError):
            parse_psbt(text)


def test_psbt_for_another_vault_or_network_is_refused() -> None:
    other = demo_vault(2, 3, account=5, vault_id="other")
    with pytest.raises(PSBTError, match="not 'unit-2of3'"):
        describe(_build(vault=other), VAULT)
    # Same vault id but the PSBT's inputs are another vault's scripts.
    twin = demo_vault(2, 3, account=5, vault_id="unit-2of3")
    with pytest.raises(PSBTError, match="does not spend from vault"):
        describe(_build(vault=twin), VAULT)
    signet = demo_vault(2, 3, network="signet", vault_id="unit-2of3")
    with pytest.raises(PSBTError, match="on 'regtest'"):
        describe(_build(_transfer(((
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", 150_000_000),), vault=signet),
            vault=signet), VAULT)


@pytest.mark.parametrize("approved", [
    ((DEST, 150_000_001),),
    (("bcrt1qtux6rzqme7283q8y5kyfv3p2t4w90408s4qxatan9d6sn29d3u3sxnjjmv", 150_000_000),),
    ((DEST, 100_000_000), (DEST, 50_000_000)),
])
def test_outputs_or_amounts_differing_from_the_approval_are_refused(approved) -> None:  # type: ignore[no-untyped-def]
    summary = describe(_build(), VAULT)
    transfer = _transfer(approved)
    transfer = ApprovedTransfer(summary.metadata.proposal_digest, 1, VAULT.vault_id,
                                "regtest", transfer.outputs, 100_000)
    with pytest.raises(PSBTError, match="outputs differ"):
        check_against_transfer(summary, VAULT, transfer)


def test_digest_policy_version_and_fee_cap_are_checked() -> None:
    transfer = _transfer()
    summary = describe(_build(transfer), VAULT)
    with pytest.raises(PSBTError, match="digest mismatch"):
        check_against_transfer(summary, VAULT, _transfer(((DEST, 150_000_000),), version=1)
                               .__class__(b"\x00" * 32, 1, VAULT.vault_id, "regtest",
                                          transfer.outputs, 100_000))
    with pytest.raises(PSBTError, match="policy version mismatch"):
        check_against_transfer(summary, VAULT, _transfer(version=2))
    with pytest.raises(FeeAboveCap):
        check_against_transfer(summary, VAULT, _transfer(fee_sats_max=10))
    edited = _build(transfer)
    edited.unknown[proprietary_key(SUBTYPE_POLICY_VERSION)] = (7).to_bytes(4, "little")
    with pytest.raises(PSBTError, match="policy version mismatch"):
        check_against_transfer(describe(edited, VAULT), VAULT, transfer)


def test_dust_insufficient_funds_and_fee_cap_when_building() -> None:
    with pytest.raises(DustOutput):
        _build(_transfer(((DEST, 293),)))
    with pytest.raises(InsufficientFunds, match="insufficient funds"):
        _build(_transfer(((DEST, 200_000_000),)))
    with pytest.raises(FeeAboveCap):
        _build(_transfer(fee_sats_max=100))


def _share(psbt: PSBT, root_index: int) -> PSBT:
    share = parse_psbt(psbt.serialize())
    assert share.sign_with(ROOTS[root_index]) == len(share.inputs)
    return share


def test_quorum_of_shares_finalises() -> None:
    base = _build()
    summary = describe(base, VAULT)
    verified = [shares.verify_share(base, summary, VAULT, _share(base, i)) for i in (0, 2)]
    assert [s.custodian.name for s in verified] == ["finance-ministry", "vasp-regulator"]
    with pytest.raises(shares.QuorumNotMet):
        shares.finalize(shares.combine(base, verified[:1]), VAULT, verified[:1])
    tx = shares.finalize(shares.combine(base, verified), VAULT, verified)
    assert tx.txid().hex() == summary.txid


def test_bad_shares_are_refused() -> None:
    base = _build()
    summary = describe(base, VAULT)
    stranger = demo_custodian_keys(4)[3].root  # not a custodian of this vault
    foreign = parse_psbt(base.serialize())
    key = stranger.derive([2**31 + 48, 2**31 + 1, 2**31, 2**31 + 2, 0, 0])
    foreign.inputs[0].partial_sigs[key.get_public_key()] = \
        key.key.sign(foreign.sighash(0)).serialize() + b"\x01"
    with pytest.raises(shares.NotACustodian):
        shares.verify_share(base, summary, VAULT, foreign)
    with pytest.raises(PSBTError, match="no signatures"):
        shares.verify_share(base, summary, VAULT, base)
    changed = _share(base, 0)
    changed.outputs[0].value -= 1
    with pytest.raises(PSBTError, match="changes the unsigned transaction"):
        shares.verify_share(base, summary, VAULT, changed)
    forged = _share(base, 0)
    public_key, signature = next(iter(forged.inputs[0].partial_sigs.items()))
    forged.inputs[0].partial_sigs[public_key] = signature[:10] + bytes([signature[10] ^ 1]) \
        + signature[11:]
    with pytest.raises(PSBTError):
        shares.verify_share(base, summary, VAULT, forged)
    two = _share(_share(base, 0), 1)
    with pytest.raises(PSBTError, match="one custodian"):
        shares.verify_share(base, summary, VAULT, two)
    other_base = _build(_transfer(((DEST, 120_000_000),)))
    with pytest.raises(PSBTError, match="changes the unsigned transaction"):
        shares.verify_share(base, summary, VAULT, _share(other_base, 0))


@settings(max_examples=60, deadline=None)
@given(amounts=st.lists(st.integers(1_000, 10**9), min_size=1, max_size=30),
       pay=st.integers(1_000, 2 * 10**9), rate=st.integers(1000, 50_000))
def test_selection_balances_and_pays_at_least_the_rate(amounts: list[int], pay: int,
                                                       rate: int) -> None:
    fee_rate = FeeRate(rate, "estimatesmartfee")
    try:
        selection = select_coins(_utxos(amounts), pay, [22], fee_rate, 2, 3)
    except InsufficientFunds:
        assert sum(amounts) < pay + fee_rate.fee_for(100 + 104 * len(amounts))
        return
    assert selection.input_sats == pay + selection.change_sats + selection.fee_sats
    assert selection.fee_sats >= fee_rate.fee_for(selection.vsize)
    assert selection.change_sats == 0 or selection.change_sats >= 330
    assert len(set(selection.inputs)) == len(selection.inputs)
