"""The registry of public-sector wallets: what `wallet.registered` entries say.

A wallet is held in custody by this service (a vault: its descriptors come from the vault
config) or only watched (an address set or a descriptor an institution published). Pure:
the checks that need a node (descriptor syntax and checksum) are in reserve.statement.chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reserve.errors import StatementError
from reserve.events.transparency import WalletRegistered

CUSTODY = ("custody", "watched")
CHAINS = ("bitcoin",)
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
DESCRIPTORS_MAX = 20
RANGE_END_MAX = 10_000
TEXT_MAX = 200


@dataclass(frozen=True)
class PublicWallet:
    name: str
    institution: str
    role: str
    custody: str
    chain: str
    network: str
    descriptors: tuple[str, ...]
    range_end: int = 999
    birth_height: int = 0

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise StatementError(f"wallet name {self.name!r}: 1..64 of a-z 0-9 . _ -, "
                                 "starting with a letter or digit")
        for what in ("institution", "role"):
            value = getattr(self, what)
            if not isinstance(value, str) or not 1 <= len(value) <= TEXT_MAX:
                raise StatementError(f"wallet {self.name}: {what} must be 1..{TEXT_MAX} "
                                     "characters")
        if self.custody not in CUSTODY:
            raise StatementError(f"wallet {self.name}: custody must be one of "
                                 f"{', '.join(CUSTODY)}, got {self.custody!r}")
        if self.chain not in CHAINS:
            raise StatementError(f"wallet {self.name}: chain must be one of "
                                 f"{', '.join(CHAINS)}, got {self.chain!r}")
        if not 1 <= len(self.descriptors) <= DESCRIPTORS_MAX:
            raise StatementError(f"wallet {self.name}: give 1..{DESCRIPTORS_MAX} descriptors "
                                 "or addresses")
        if len(set(self.descriptors)) != len(self.descriptors):
            raise StatementError(f"wallet {self.name}: a descriptor is given twice")
        if not 0 <= self.range_end <= RANGE_END_MAX or not 0 <= self.birth_height:
            raise StatementError(f"wallet {self.name}: range_end must be 0..{RANGE_END_MAX} "
                                 "and birth_height >= 0")

    @property
    def watch_wallet(self) -> str:
        """The node's watch-only wallet of a watched wallet."""
        return f"reserve-watch-{self.name}"

    def event(self) -> WalletRegistered:
        return WalletRegistered(name=self.name, institution=self.institution, role=self.role,
                                custody=self.custody, chain=self.chain, network=self.network,
                                descriptors=list(self.descriptors), range_end=self.range_end,
                                birth_height=self.birth_height)

    @classmethod
    def of(cls, event: WalletRegistered) -> PublicWallet:
        return cls(name=event.name, institution=event.institution, role=event.role,
                   custody=event.custody, chain=event.chain, network=event.network,
                   descriptors=tuple(event.descriptors), range_end=event.range_end,
                   birth_height=event.birth_height)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "institution": self.institution, "role": self.role,
                "custody": self.custody, "chain": self.chain, "network": self.network,
                "descriptors": list(self.descriptors), "range_end": self.range_end,
                "birth_height": self.birth_height}


def registered(entries: Iterable[Any]) -> list[PublicWallet]:
    """The registered wallets, in registration order."""
    return [PublicWallet.of(WalletRegistered.of(e)) for e in entries
            if e.kind == WalletRegistered.KIND]


def check_new(wallet: PublicWallet, existing: Sequence[PublicWallet]) -> None:
    """Refuse a wallet whose name or one of whose descriptors is registered already, or
    whose network differs from the others'."""
    for other in existing:
        if other.name == wallet.name:
            raise StatementError(f"wallet {wallet.name!r} is registered already")
        shared = set(other.descriptors) & set(wallet.descriptors)
        if shared:
            raise StatementError(f"wallet {wallet.name!r}: descriptor {sorted(shared)[0]} is "
                                 f"registered already for wallet {other.name!r}")
        if other.network != wallet.network:
            raise StatementError(f"wallet {wallet.name!r} is on {wallet.network}, the "
                                 f"registry on {other.network}")
