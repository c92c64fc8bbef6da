"""Fee arithmetic for vault transactions: sizes, rates, caps and dust, all in integers.

The fee rate comes from the node's `estimatesmartfee` but is clamped to a configured floor
and ceiling, and the resulting fee must stay under both the vault's and the approved
transfer's absolute cap: a broken estimator must not be able to drain the reserve in fees.
Sizes are upper bounds (73-byte signatures), so the real fee rate is never below target.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from reserve.errors import PSBTError

SATS_PER_BTC = 100_000_000
SIGNATURE_BYTES_MAX = 73  # DER signature (<= 72) plus the sighash byte


@dataclass(frozen=True)
class FeeRate:
    """A fee rate in millisatoshi per virtual byte (integer, so 1.5 sat/vB is 1500)."""

    msat_per_vb: int
    source: str  # "estimatesmartfee", "floor" or "ceiling"

    def fee_for(self, vsize: int) -> int:
        return -(-self.msat_per_vb * vsize // 1000)


def _compact_size(n: int) -> int:
    return 1 if n < 253 else 3 if n <= 0xFFFF else 5


def p2wsh_multisig_input_weight(threshold: int, keys: int) -> int:
    """Weight units of one P2WSH M-of-N input, fully signed (upper bound)."""
    script_bytes = 3 + 34 * keys  # OP_M <33-byte key>*N OP_N OP_CHECKMULTISIG
    witness = (1  # item count
               + 1  # the empty item CHECKMULTISIG's off-by-one consumes
               + threshold * (1 + SIGNATURE_BYTES_MAX)
               + _compact_size(script_bytes) + script_bytes)
    return (32 + 4 + 1 + 4) * 4 + witness  # outpoint, empty scriptSig, sequence


def output_weight(script_pubkey_bytes: int) -> int:
    return (8 + _compact_size(script_pubkey_bytes) + script_pubkey_bytes) * 4


def transaction_vsize(input_weights: list[int], output_script_sizes: list[int]) -> int:
    """Virtual size of a segwit transaction with these inputs and outputs."""
    overhead = (4 + 4 + _compact_size(len(input_weights))
                + _compact_size(len(output_script_sizes))) * 4 + 2  # + marker and flag
    weight = overhead + sum(input_weights) + sum(output_weight(s) for s in output_script_sizes)
    return -(-weight // 4)


def dust_threshold(script_pubkey: bytes) -> int:
    """Bitcoin Core's dust limit at the default 3 sat/vB dust relay fee, per output type."""
    if len(script_pubkey) == 22 and script_pubkey[:2] == b"\x00\x14":
        return 294  # P2WPKH
    if len(script_pubkey) == 34 and script_pubkey[0] in (0x00, 0x51) and script_pubkey[1] == 32:
        return 330  # P2WSH, P2TR
    if len(script_pubkey) == 23 and script_pubkey[0] == 0xA9:
        return 540  # P2SH
    return 546  # P2PKH and anything else


def rate_from_estimate(estimate: dict[str, Any], floor_sat_vb: int,
                       ceiling_sat_vb: int) -> FeeRate:
    """Clamp an `estimatesmartfee` answer (BTC/kvB as Decimal) to [floor, ceiling] sat/vB.

    Requires 1 <= floor_sat_vb <= ceiling_sat_vb.
    """
    if not 1 <= floor_sat_vb <= ceiling_sat_vb:
        raise PSBTError(f"fee settings: need 1 <= floor ({floor_sat_vb}) <= ceiling "
                        f"({ceiling_sat_vb}) sat/vB")
    floor, ceiling = floor_sat_vb * 1000, ceiling_sat_vb * 1000
    value = estimate.get("feerate") if isinstance(estimate, dict) else None
    if value is None or isinstance(value, float):
        return FeeRate(floor, "floor")
    # BTC per 1000 vbytes -> millisatoshi per vbyte: * 1e8 sats * 1000 msat / 1000 vB.
    msat = int((Decimal(value) * SATS_PER_BTC).to_integral_value(ROUND_CEILING))
    if msat < floor:
        return FeeRate(floor, "floor")
    if msat > ceiling:
        return FeeRate(ceiling, "ceiling")
    return FeeRate(msat, "estimatesmartfee")
