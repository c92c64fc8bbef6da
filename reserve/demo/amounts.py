"""Amounts as a stakeholder reads them, computed from integers only (never floats).

The demo narrates every movement twice, in the unit people think in (BTC, ETH, tokens) and
in the base unit the ledger stores (sats, wei): "1.50000000 BTC (150,000,000 sats)". The
decimal string is cut from the integer with divmod, so what is printed is exactly what was
recorded.
"""

from __future__ import annotations

SATS_PER_BTC = 100_000_000
WEI_PER_ETH = 10**18


def decimal_text(amount: int, decimals: int, places_min: int = 0) -> str:
    """`amount` base units as an exact decimal with `decimals` places, trailing zeros cut to
    at least `places_min` places. Requires an int (not bool) and 0 <= places_min <= decimals.
    """
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError(f"amounts are integers in base units, got {amount!r}")
    if not 0 <= places_min <= decimals:
        raise ValueError(f"places_min must be within 0..{decimals}")
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**decimals)
    digits = f"{fraction:0{decimals}d}" if decimals else ""
    cut = digits.rstrip("0")
    digits = cut + "0" * max(places_min - len(cut), 0)
    return f"{sign}{whole:,}" + (f".{digits}" if digits else "")


def btc(sats: int) -> str:
    """'1.50000000 BTC (150,000,000 sats)': all eight places, as wallets show BTC."""
    return f"{decimal_text(sats, 8, 8)} BTC ({sats:,} sats)"


def eth(wei: int) -> str:
    """'0.75 ETH (750,000,000,000,000,000 wei)'."""
    return f"{decimal_text(wei, 18, 2)} ETH ({wei:,} wei)"


def token(units: int, symbol: str, decimals: int = 18) -> str:
    """'100,000 tRGT (100,000,000,000,000,000,000,000 base units)'."""
    return f"{decimal_text(units, decimals)} {symbol} ({units:,} base units)"


def of_asset(asset: str, amount: int, token_symbol: str) -> str:
    """An amount of BTC (sats), ETH (wei) or the demo token (base units), in words."""
    if asset == "BTC":
        return btc(amount)
    if asset == "ETH":
        return eth(amount)
    return token(amount, token_symbol)
