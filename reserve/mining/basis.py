"""What an energy report is told rather than reads: the BTC price its revenue figures use
and the network difficulty its yield check uses, each with its source named in the report.

Both are stated by whoever builds the report and signed with it; neither comes from the
chain the report otherwise reads (on regtest the chain's own difficulty is trivial and its
prices do not exist). Parsed from decimal text into exact integers or fractions: no
floats anywhere.

The yield expected of a site (docs/mining.md#expected-yield): a fleet of efficiency E
(millijoules per terahash) that consumed W kWh computed

    hashes = W x 3,600,000 J/kWh x 1,000 mJ/J / E x 10^12 H/TH = W x 3.6 x 10^21 / E

and at network difficulty D a block takes D x 2^32 hashes on average, so the expected
reward is

    expected_sats = floor(W x 3.6 x 10^21 x R / (E x D x 2^32))

for a block reward R (subsidy plus typical fees, satoshis). Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from reserve.errors import MiningError

SATS_PER_BTC = 100_000_000
HASHES_PER_KWH_PER_MJ_TH = 36 * 10**20  # 3.6e21: kWh -> J -> mJ, TH -> H
# ISO 4217 currencies whose minor unit is not a hundredth (the others have two decimals).
MINOR_DIGITS = {**dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW",
                                 "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF",
                                 "XPF"), 0),
                **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3)}
PRICE_MINOR_MAX = 10**15  # a BTC price below 10^13 currency units
DIFFICULTY_MAX = Fraction(10**30)
REWARD_SATS_MAX = 50 * SATS_PER_BTC * 2  # subsidy at its highest, plus as much in fees
SOURCE_MAX = 200
_DECIMAL = re.compile(r"^\d{1,20}(\.\d{1,20})?$")
CURRENCY = re.compile(r"^[A-Z]{3}$")


def _source(text: Any, what: str) -> str:
    if not isinstance(text, str) or not text.strip() or len(text) > SOURCE_MAX \
            or any(ord(c) < 32 for c in text):
        raise MiningError(f"{what}: name its source (1..{SOURCE_MAX} printable characters), "
                          "e.g. the exchange or the block it was read from")
    return text.strip()


def minor_digits(currency: str) -> int:
    return MINOR_DIGITS.get(currency, 2)


@dataclass(frozen=True)
class Price:
    """The BTC price: `minor_per_btc` minor units of `currency` for one BTC."""

    minor_per_btc: int
    currency: str
    source: str

    @classmethod
    def parse(cls, text: Any, currency: Any, source: Any) -> Price:
        if not isinstance(currency, str) or not CURRENCY.match(currency):
            raise MiningError(f"the price's currency must be a 3-letter ISO 4217 code, got "
                              f"{currency!r}")
        digits = minor_digits(currency)
        if not isinstance(text, str) or not _DECIMAL.match(text.strip()):
            raise MiningError(f"the BTC price must be a decimal number of {currency} "
                              f"(e.g. 97250.00), got {text!r}")
        value = Decimal(text.strip()) * (10 ** digits)
        if value != value.to_integral_value():
            raise MiningError(f"the BTC price {text} has more decimals than {currency}'s "
                              f"{digits}")
        minor = int(value)
        if not 1 <= minor <= PRICE_MINOR_MAX:
            raise MiningError(f"the BTC price must be above 0 and below "
                              f"{PRICE_MINOR_MAX // 10**digits:,} {currency}")
        return cls(minor, currency, _source(source, "the BTC price"))

    def text(self) -> str:
        digits = minor_digits(self.currency)
        whole, part = divmod(self.minor_per_btc, 10 ** digits)
        return f"{whole:,}" + (f".{part:0{digits}d}" if digits else "") + f" {self.currency}"

    def to_json(self) -> dict[str, Any]:
        return {"minor_per_btc": self.minor_per_btc, "currency": self.currency,
                "minor_digits": minor_digits(self.currency), "source": self.source,
                "text": self.text()}


@dataclass(frozen=True)
class Difficulty:
    """The network difficulty (exact, from its decimal text) and the block reward."""

    text: str
    block_reward_sats: int
    source: str

    @property
    def value(self) -> Fraction:
        return Fraction(Decimal(self.text))

    @classmethod
    def parse(cls, text: Any, reward_sats: Any, source: Any) -> Difficulty:
        if not isinstance(text, str) or not _DECIMAL.match(text.strip()):
            raise MiningError(f"the network difficulty must be a decimal number (e.g. "
                              f"109780000000000), got {text!r}")
        try:
            value = Fraction(Decimal(text.strip()))
        except InvalidOperation:
            raise MiningError(f"the network difficulty {text!r} is not a number") from None
        if not 0 < value <= DIFFICULTY_MAX:
            raise MiningError("the network difficulty must be above 0 and at most 10^30")
        if isinstance(reward_sats, bool) or not isinstance(reward_sats, int) \
                or not 1 <= reward_sats <= REWARD_SATS_MAX:
            raise MiningError(f"the block reward must be 1..{REWARD_SATS_MAX:,} satoshis, "
                              f"got {reward_sats!r}")
        return cls(text.strip(), reward_sats, _source(source, "the network difficulty"))

    def expected_sats(self, energy_kwh: int, efficiency_mj_per_th: int) -> int:
        """floor(W x 3.6e21 x R / (E x D x 2^32)), exactly (see the module's docstring)."""
        difficulty = self.value
        numerator = energy_kwh * HASHES_PER_KWH_PER_MJ_TH * self.block_reward_sats \
            * difficulty.denominator
        return numerator // (efficiency_mj_per_th * difficulty.numerator * 2**32)

    def expected_blocks_milli(self, energy_kwh: int, efficiency_mj_per_th: int) -> int:
        """Expected blocks found, in thousandths (floor)."""
        difficulty = self.value
        return energy_kwh * HASHES_PER_KWH_PER_MJ_TH * 1000 * difficulty.denominator \
            // (efficiency_mj_per_th * difficulty.numerator * 2**32)

    def to_json(self) -> dict[str, Any]:
        return {"difficulty": self.text, "block_reward_sats": self.block_reward_sats,
                "source": self.source}
