"""Events of the public-sector statement (docs/transparency.md): the registry of the
wallets it covers, the attribution of inflows, and the signed statements themselves."""

from __future__ import annotations

from dataclasses import dataclass

from reserve.events.base import ABSENT, Event, Hex, Json


@dataclass(frozen=True)
class WalletRegistered(Event):
    """A public-sector wallet the statement covers: held in custody here (a vault) or
    only watched (a state miner's payout wallet, a seized-assets wallet, a hot wallet).
    `descriptors` are checksummed output descriptors (an address set is `addr(...)`s);
    ranged ones are scanned over indices 0..`range_end`; blocks below `birth_height`
    are never scanned for it."""

    KIND = "wallet.registered"
    name: str
    institution: str
    role: str  # national reserve, mining payout, seized assets, hot wallet ...
    custody: str  # custody | watched
    chain: str  # bitcoin
    network: str
    descriptors: Json  # [descriptor with checksum]
    range_end: int
    birth_height: int


@dataclass(frozen=True)
class FlowAttributionProposed(Event):
    """An operator says which class the flow of transaction `txid` into (or out of)
    `wallet` belongs to; it counts once an auditor confirms it."""

    KIND = "flow.attribution_proposed"
    txid: Hex
    wallet: str
    flow_class: str
    note: str
    proposer: str


@dataclass(frozen=True)
class FlowAttributionConfirmed(Event):
    """An auditor, another person than the proposer, confirmed attribution entry
    `proposed_seq`."""

    KIND = "flow.attribution_confirmed"
    proposed_seq: int
    txid: Hex
    wallet: str
    flow_class: str
    auditor: str


@dataclass(frozen=True)
class StatementPublished(Event):
    """A consolidated statement signed by the auditor: its hash, signature, pinned blocks
    and figures (consolidated and per wallet, without the coin lists and movements, which
    are in the exported document the hash names)."""

    KIND = "statement.published"
    statement_sha256: Hex
    auditor_key: str
    signature: str
    period_start: str
    period_end: str
    blocks: Json  # {"network", "start_height", "start_hash", "end_height", "end_hash"}
    consolidated: Json  # {"opening_sats", "closing_sats", "flows": [{"class", "sats"}]}
    wallets: Json  # [{"wallet", "opening_sats", "closing_sats", "flows"}]
    commitments: Json = ABSENT  # [{"id", "text", "kept", "findings"}] (docs/transparency.md)


EVENTS: tuple[type[Event], ...] = (WalletRegistered, FlowAttributionProposed,
                                   FlowAttributionConfirmed, StatementPublished)
