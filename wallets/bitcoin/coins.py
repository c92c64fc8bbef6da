"""Coin selection over a vault's confirmed UTXOs (pure).

Largest-first: deterministic, uses few inputs (each P2WSH multisig input is expensive), and
easy to explain to an auditor. Change goes back to the vault's internal chain unless it
would be dust, in which case it is left to the fee (and the fee cap still applies).
"""

from __future__ import annotations

from dataclasses import dataclass

from reserve.errors import PSBTError
from wallets.bitcoin.fees import FeeRate, p2wsh_multisig_input_weight, transaction_vsize

INPUTS_MAX = 100  # keeps the recorded PSBT under the ledger's 64 KiB payload limit
P2WSH_SCRIPT_BYTES = 34
P2WSH_DUST = 330


class InsufficientFunds(PSBTError):
    """The vault's confirmed coins cannot pay the outputs plus the fee."""


@dataclass(frozen=True)
class Utxo:
    txid: str
    vout: int
    amount_sats: int
    branch: int
    index: int
    confirmations: int


@dataclass(frozen=True)
class Selection:
    inputs: tuple[Utxo, ...]
    change_sats: int  # 0 when there is no change output
    fee_sats: int
    vsize: int

    @property
    def input_sats(self) -> int:
        return sum(u.amount_sats for u in self.inputs)


def select_coins(utxos: list[Utxo], amount_sats: int, output_script_sizes: list[int],
                 rate: FeeRate, threshold: int, keys: int,
                 confirmations_min: int = 1) -> Selection:
    """Choose inputs paying `amount_sats` to outputs of the given scriptPubKey sizes.

    Requires amount_sats > 0. Raises InsufficientFunds with what was needed and available.
    """
    if amount_sats <= 0:
        raise PSBTError("nothing to pay")
    spendable = sorted((u for u in utxos if u.confirmations >= confirmations_min),
                       key=lambda u: (-u.amount_sats, u.txid, u.vout))[:INPUTS_MAX]
    input_weight = p2wsh_multisig_input_weight(threshold, keys)
    chosen: list[Utxo] = []
    total = 0
    for utxo in spendable:
        chosen.append(utxo)
        total += utxo.amount_sats
        weights = [input_weight] * len(chosen)
        with_change = transaction_vsize(weights, [*output_script_sizes, P2WSH_SCRIPT_BYTES])
        fee_with_change = rate.fee_for(with_change)
        change = total - amount_sats - fee_with_change
        if change >= P2WSH_DUST:
            return Selection(tuple(chosen), change, fee_with_change, with_change)
        without_change = transaction_vsize(weights, output_script_sizes)
        if total - amount_sats >= rate.fee_for(without_change):
            return Selection(tuple(chosen), 0, total - amount_sats, without_change)
    available = sum(u.amount_sats for u in spendable)
    raise InsufficientFunds(
        f"insufficient funds: need {amount_sats} sats plus fee, the vault has {available} "
        f"sats in {len(spendable)} coins with >= {confirmations_min} confirmations")
