"""How amounts, decisions and times read to a person: one presenter for every surface.

The CLI, the API and its dashboard, the demo's narration and the reconciliation report
show the same recorded integers, so they all cut their text here. An amount is an integer
in base units and becomes decimal text through divmod, never a float, so what is printed
is exactly what was recorded. Each surface keeps the spelling it has always had:

* `format_amount`: every decimal place, no grouping, for the API and the dashboard
  ("1.50000000 BTC"); an asset of unknown decimals stays in base units ("12 0xab..").
* `amount_words`: the unit people think in, then the base unit, grouped by thousands, for
  the demo ("1.50000000 BTC (150,000,000 sats)", "0.75 ETH (750,000,000,000,000,000 wei)").
* `base_units_words`: the base unit first, for the reconciliation report
  ("12,003,000 sats (0.12003000 BTC)").
* `base_units_text`: the bare integer and a label ("150000000 sat").

`parse_units` reads what a person typed ("0.2 BTC", "0.2", "5000000 sat", "5000000") back
into exact base units, with the same units table.

Times are UTC to the second ("2026-01-05T09:00:00Z", the spelling signed proposals use);
durations are rounded up to the minute ("23 h", "22 h 59 min"). Pure: no I/O, no clock,
nothing from the API, CLI, demo or wallets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # typing only: the policy engine itself formats with this module
    from reserve.policy.evaluate import Decision
    from reserve.policy.model import ApprovalRule, Policy


@dataclass(frozen=True)
class Unit:
    """How one asset's integers read: `decimals` places of `symbol`, counted in `base`.

    `places_min` is how many decimal places prose always shows (trailing zeros beyond it
    are cut); `base_plural` is how prose counts the base unit ("sats").
    """

    symbol: str
    base: str
    base_plural: str
    decimals: int
    places_min: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.places_min <= self.decimals <= 77:
            raise ValueError(f"{self.symbol}: requires 0 <= places_min <= decimals <= 77")


BTC = Unit("BTC", "sat", "sats", 8, places_min=8)  # all eight places, as wallets show BTC
ETH = Unit("ETH", "wei", "wei", 18, places_min=2)
UNITS: Mapping[str, Unit] = {"BTC": BTC, "ETH": ETH}
BASE_UNITS = "base units"


def token_unit(symbol: str, decimals: int = 18) -> Unit:
    """A token of `decimals` places (ERC-20's usual 18), counted in base units."""
    return Unit(symbol, BASE_UNITS, BASE_UNITS, decimals)


def unit_of(asset: str, tokens: Mapping[str, Unit] | None = None) -> Unit:
    """BTC, ETH, a configured token (by asset id), or else the asset counted in base units."""
    known = UNITS.get(asset) or (tokens or {}).get(asset)
    return known or Unit(asset, BASE_UNITS, BASE_UNITS, 0)


# -- amounts -----------------------------------------------------------------------------
def decimal_text(amount: int, decimals: int, places_min: int = 0, *,
                 grouped: bool = True) -> str:
    """`amount` base units as an exact decimal with `decimals` places, trailing zeros cut to
    at least `places_min` places, the whole part grouped by thousands unless not `grouped`.
    Requires an int (not bool) and 0 <= places_min <= decimals.
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
    return sign + (f"{whole:,}" if grouped else str(whole)) + (f".{digits}" if digits else "")


def format_amount(amount: int, asset: str, tokens: Mapping[str, Unit] | None = None) -> str:
    """Every decimal place, no grouping: 150000000 BTC -> '1.50000000 BTC' (API, dashboard)."""
    unit = unit_of(asset, tokens)
    return f"{decimal_text(amount, unit.decimals, unit.decimals, grouped=False)} {unit.symbol}"


def amount_words(amount: int, unit: Unit) -> str:
    """'1.50000000 BTC (150,000,000 sats)': the unit people think in, then the ledger's."""
    return f"{decimal_text(amount, unit.decimals, unit.places_min)} {unit.symbol} " \
           f"({amount:,} {unit.base_plural})"


def base_units_words(amount: int, unit: Unit) -> str:
    """'12,003,000 sats (0.12003000 BTC)': the base unit first, then every decimal place."""
    return f"{decimal_text(amount, 0)} {unit.base_plural} " \
           f"({decimal_text(amount, unit.decimals, unit.decimals, grouped=False)} {unit.symbol})"


def base_units_text(amount: int, label: str) -> str:
    """The integer as recorded, then a label: '150000000 sat' (the CLI's plain style)."""
    return f"{decimal_text(amount, 0, grouped=False)} {label}"


_AMOUNT = re.compile(r"^([0-9]{1,78})(?:\.([0-9]{1,78}))?\s?([A-Za-z]{1,16})?$")


def parse_units(text: str, asset: str, tokens: Mapping[str, Unit] | None = None,
                what: str = "amount") -> int:
    """An amount a person typed, as exact base units of `asset` (never through a float).

    '5000000' and '5000000sat' are base units; '0.2', '0.2BTC' and '0.2 BTC' are asset
    units (a decimal point or the asset's symbol says so). More decimal places than the
    asset has, or a unit that is not this asset's, is refused with ValueError.
    """
    unit = unit_of(asset, tokens)
    found = _AMOUNT.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(f"{what}: {text!r} is not an amount (e.g. 5000000 in base units, "
                         f"or 0.05 {unit.symbol})")
    whole, fraction, label = found.group(1), found.group(2), (found.group(3) or "")
    base_labels = {unit.base.lower(), unit.base_plural.lower()} - {BASE_UNITS}
    if label.lower() in base_labels:
        if fraction is not None:
            raise ValueError(f"{what}: {text!r}: {unit.base_plural} are whole numbers")
        return int(whole)
    if label and label.upper() != unit.symbol.upper():
        raise ValueError(f"{what}: {text!r} is in {label}, but the asset is {unit.symbol}")
    if not label and fraction is None:
        return int(whole)  # a bare integer is base units, as recorded
    digits = (fraction or "").rstrip("0")
    if len(digits) > unit.decimals:
        raise ValueError(f"{what}: {text!r} has more than {unit.decimals} decimal places, "
                         f"the most {unit.symbol} has")
    scale: int = 10**unit.decimals
    return int(whole) * scale + (int(digits.ljust(unit.decimals, "0")) if digits else 0)


# -- times -------------------------------------------------------------------------------
def format_time(moment: datetime) -> str:
    """UTC to the second, ending in Z: '2026-01-05T09:00:00Z'. Requires an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("times are shown in UTC and must be timezone-aware")
    # Spelled by hand: the text of strftime("%Y-%m-%dT%H:%M:%SZ") (for every year from 1000
    # on; ledger times are far within) at a fraction of its cost: a write's answer spells
    # several times.
    utc = moment.astimezone(UTC)
    return (f"{utc.year}-{utc.month:02d}-{utc.day:02d}T"
            f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z")


def format_duration(seconds: float) -> str:
    """Rounded up to the minute: '23 h', '22 h 59 min', '5 min', '30 s'; never negative."""
    if seconds < 60:
        return f"{max(0, math.ceil(seconds))} s"
    minutes = math.ceil(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


# -- decisions and policies --------------------------------------------------------------
def decision_fields(decision: Decision) -> dict[str, Any]:
    """What the policy decided, as JSON values (the API and the CLI add their own keys)."""
    return {"rule": decision.rule_name, "satisfied": list(decision.satisfied),
            "missing": list(decision.missing), "refused": list(decision.refused),
            "ignored": list(decision.ignored), "quorum_met": decision.quorum_met,
            "releasable": decision.releasable, "approvers": list(decision.approvers),
            "rejecters": list(decision.rejecters), "institutions": list(decision.institutions),
            "delay_ends_at": format_time(decision.delay_ends_at)
            if decision.delay_ends_at else None}


def remaining_delay(decision: Decision, now: datetime) -> str:
    """'23 h', 'over', 'none', or 'starts once approved' (no quorum yet)."""
    if decision.delay_ends_at is None:
        return "starts once approved" if not decision.quorum_met else "none"
    left = (decision.delay_ends_at - now).total_seconds()
    return "over" if left <= 0 else format_duration(left)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def rule_words(rule: ApprovalRule) -> str:
    """'3 approvals from 3 institutions, then a 24 h delay'."""
    delay = f", then a {format_duration(rule.delay_seconds)} delay" if rule.delay_seconds else ""
    return (f"{_plural(rule.approvals_min, 'approval')} from "
            f"{_plural(rule.institutions_min, 'institution')}{delay}")


def policy_words(policy: Policy) -> list[str]:
    """The policy as sentences a stakeholder can read (amounts as `format_amount`)."""
    lines = [f"{policy.vault} policy v{policy.version} on {policy.network} ({policy.chain}): "
             f"{policy.description}",
             f"{len(policy.custodians)} custodians from {len(policy.institutions())} "
             f"institutions: " + ", ".join(f"{c.id} ({c.institution})"
                                           for c in policy.custodians)]
    for rules in policy.assets:
        for tier in rules.tiers:
            top = "and above" if tier.amount_max is None else \
                f"to {format_amount(tier.amount_max, rules.asset)}"
            lines.append(f"{rules.asset} transfers from "
                         f"{format_amount(tier.amount_min, rules.asset)} {top} "
                         f"(tier {tier.name}): {rule_words(tier.rule)}")
        for limit in rules.velocity:
            lines.append(f"at most {format_amount(limit.amount_max, rules.asset)} in any "
                         f"{format_duration(limit.window_seconds)}")
    lines.append(f"{len(policy.destinations)} allowlisted destinations; new ones wait "
                 f"{format_duration(policy.destination_cooling_seconds)} before use")
    governance = policy.governance
    lines += [f"adding a destination: {rule_words(governance.destination_add)}",
              f"changing the policy: {rule_words(governance.policy_change)}",
              f"unfreezing: {rule_words(governance.unfreeze)}",
              "proposers: " + ", ".join(sorted(policy.proposers)),
              "any custodian or auditor (" + ", ".join(sorted(policy.auditors)) +
              ") may freeze the vault at once"]
    lines += supervision_words(policy)
    return lines


def licence_sentence(entity: str, licence_id: str, standing: str, since: datetime | None
                     ) -> str:
    """A counterparty licence's standing, as decisions, alerts and the signer say it:
    "counterparty Example Exchange's licence L-042 suspended since 2026-01-05T09:00:00Z"."""
    if standing == "unknown" or since is None:
        return f"counterparty {entity}'s licence {licence_id} is not in the licence register"
    if standing == "not yet effective":
        return f"counterparty {entity}'s licence {licence_id} takes effect {format_time(since)}"
    return f"counterparty {entity}'s licence {licence_id} {standing} since {format_time(since)}"


def supervision_words(policy: Policy) -> list[str]:
    """Who supervises the vault, what that seat may do, and any recorded conflict."""
    supervision = policy.supervision
    if supervision is None:
        return []
    who = sorted(supervision.supervisors) + sorted(supervision.institutions)
    lines = ["supervised by " + ", ".join(who) + ": reads everything, moves nothing"
             + ("; may freeze the vault" if supervision.may_freeze else "")]
    if supervision.licensed_kinds:
        lines.append("destinations of kind " + ", ".join(sorted(supervision.licensed_kinds))
                     + " must name an active counterparty licence")
    lines += [f"conflict accepted: {item.member} supervises and holds a key ({item.reason})"
              for item in supervision.exceptions]
    return lines
