"""Classify each transaction's effect on the registered wallets, and add the movements up.

Pure: it sees transactions as lists of (owner, satoshis) inputs and outputs, where the
owner is a registered wallet's name or None for anyone else, plus what the ledger says
(the class a proposal declared, the attributions an auditor confirmed). The rules
(docs/transparency.md#classes):

- no registered input: every output to a registered wallet is an inflow, `mining` in a
  coinbase; `mining` too when the wallet is a mining site's payout wallet and every input
  comes from an address that site named as its pool's payer (a pool payout); else the
  confirmed attribution's class, else `unattributed`. A `mining` movement into a site's
  payout wallet names the site;
- some registered input: the wallet of the first registered input leads. The net change
  of all registered wallets together is what left (or came into) the public sector. When
  every input is registered the network fee is the public sector's and the lead wallet
  bears it as `fee` (negative); the rest of the net change is the external flow, charged
  to the lead wallet with the attribution's class, else the class the proposal declared
  (never `internal_transfer`, which cannot describe a movement outside), else
  `unattributed`. Everything else each wallet gained or lost is `internal_transfer`, and
  those sum to zero over the transaction, so consolidation eliminates them exactly.

So per wallet the flows of every class sum to its net change, and consolidated the flows
outside `internal_transfer` sum to the change of the public sector's stock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from reserve.flow_classes import ATTRIBUTABLE, FLOW_CLASSES

INTERNAL = "internal_transfer"


@dataclass(frozen=True)
class ChainTx:
    """A confirmed transaction as far as the registered wallets go. `inputs` are the
    spent coins' (owner, sats), `outputs` the new coins' (owner, sats), in order; owner
    None is anyone outside the registry. A coinbase has no inputs. `time` is its block's
    timestamp (Unix seconds), `sources` the address each input spent ("" for a script
    without one), in input order."""

    txid: str
    height: int
    coinbase: bool
    inputs: tuple[tuple[str | None, int], ...]
    outputs: tuple[tuple[str | None, int], ...]
    time: int = 0
    sources: tuple[str, ...] = ()

    @property
    def fee_sats(self) -> int:
        if self.coinbase:
            return 0
        return sum(s for _, s in self.inputs) - sum(s for _, s in self.outputs)

    def touches(self) -> bool:
        return any(owner is not None for owner, _ in (*self.inputs, *self.outputs))


@dataclass(frozen=True)
class Movement:
    """One classified figure: `sats` (signed) of `flow_class` for `wallet` in `txid`;
    `evidence` names what decided the class (a proposal digest, an attribution's seq);
    `site` the mining site a `mining` movement into its payout wallet belongs to."""

    txid: str
    height: int
    wallet: str
    flow_class: str
    sats: int
    evidence: str = ""
    time: int = 0
    site: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"txid": self.txid, "height": self.height, "time": format_unix(self.time),
                "wallet": self.wallet, "class": self.flow_class, "sats": self.sats,
                "evidence": self.evidence, "site": self.site}


def format_unix(seconds: int) -> str:
    """A block timestamp as the ledger writes times: YYYY-MM-DDTHH:MM:SSZ (UTC)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class MiningWallet:
    """A mining site's payout wallet: the site, and the addresses its pool pays from."""

    site: str
    pool_payers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decided:
    """The ledger's word on one flow: its class and the evidence (for the trace)."""

    flow_class: str
    evidence: str


def _net(tx: ChainTx) -> dict[str, int]:
    """Each registered wallet's change in `tx` (received minus spent), in first-seen order."""
    net: dict[str, int] = {}
    for owner, sats in tx.inputs:
        if owner is not None:
            net[owner] = net.get(owner, 0) - sats
    for owner, sats in tx.outputs:
        if owner is not None:
            net[owner] = net.get(owner, 0) + sats
    return net


def _inflow_class(tx: ChainTx, wallet: str, attributed: Mapping[str, Decided],
                  site: MiningWallet | None) -> Decided:
    """The class of an inflow from outside: coinbase, pool payout, attribution, or none."""
    if tx.coinbase:
        return Decided("mining", "coinbase")
    if site is not None and site.pool_payers and tx.sources \
            and all(a in site.pool_payers for a in tx.sources):
        return Decided("mining", "pool payout from " + " ".join(sorted(set(tx.sources))))
    return attributed.get(wallet, Decided("unattributed", ""))


def classify(tx: ChainTx, declared: Decided | None = None,
             attributed: Mapping[str, Decided] | None = None,
             mining: Mapping[str, MiningWallet] | None = None) -> list[Movement]:
    """The movements of `tx`. `declared`: the class its proposal declared (outflows);
    `attributed`: confirmed attributions of this txid by wallet; `mining`: the mining
    sites' payout wallets by wallet name."""
    attributed = attributed or {}
    mining = mining or {}
    movements: list[Movement] = []
    lead = next((owner for owner, _ in tx.inputs if owner is not None), None)
    if lead is None:
        for wallet, sats in _net(tx).items():
            site = mining.get(wallet)
            decided = _inflow_class(tx, wallet, attributed, site)
            movements.append(Movement(
                tx.txid, tx.height, wallet, decided.flow_class, sats, decided.evidence,
                tx.time, site.site if site is not None and decided.flow_class == "mining"
                else None))
        return [m for m in movements if m.sats]
    net = _net(tx)
    outside = all(owner is not None for owner, _ in tx.inputs)
    fee = tx.fee_sats if outside else 0
    external = sum(net.values()) + fee
    for wallet, change in net.items():
        internal = change
        if wallet == lead:
            if fee:
                movements.append(Movement(tx.txid, tx.height, wallet, "fee", -fee,
                                          "network fee", tx.time))
            if external:
                decided = _external_class(wallet, declared, attributed)
                movements.append(Movement(tx.txid, tx.height, wallet, decided.flow_class,
                                          external, decided.evidence, tx.time))
            internal = change + fee - external
        if internal:
            movements.append(Movement(tx.txid, tx.height, wallet, INTERNAL, internal,
                                      time=tx.time))
    return movements


def _external_class(wallet: str, declared: Decided | None,
                    attributed: Mapping[str, Decided]) -> Decided:
    if wallet in attributed:
        return attributed[wallet]
    if declared is not None and declared.flow_class in ATTRIBUTABLE:
        return declared
    return Decided("unattributed", "")


@dataclass(frozen=True)
class Account:
    """Opening stock, flows by class and closing stock of one wallet or of all."""

    opening_sats: int
    closing_sats: int
    flows: tuple[tuple[str, int, tuple[str, ...]], ...]  # (class, sats, txids)

    def to_json(self) -> dict[str, object]:
        return {"opening_sats": self.opening_sats, "closing_sats": self.closing_sats,
                "flows": [{"class": c, "sats": s, "txids": list(t)} for c, s, t in self.flows]}


def account(opening_sats: int, movements: Iterable[Movement], *,
            consolidated: bool = False) -> Account:
    """Opening plus movements. Consolidated, `internal_transfer` is eliminated (its
    movements must sum to zero, or ValueError) and left out of the flows."""
    sums: dict[str, int] = {c: 0 for c in FLOW_CLASSES}
    txids: dict[str, list[str]] = {c: [] for c in FLOW_CLASSES}
    for movement in movements:
        sums[movement.flow_class] += movement.sats
        if movement.txid not in txids[movement.flow_class]:
            txids[movement.flow_class].append(movement.txid)
    if consolidated:
        if sums[INTERNAL] != 0:
            raise ValueError(f"internal transfers do not cancel out: {sums[INTERNAL]} sats")
        del sums[INTERNAL]
    flows = tuple((c, s, tuple(txids[c])) for c, s in sums.items() if s or txids[c])
    return Account(opening_sats, opening_sats + sum(s for _, s, _ in flows), flows)


def check_account(found: Account, closing_sats: int, what: str) -> None:
    """Requires the flows to explain the closing stock the chain shows."""
    if found.closing_sats != closing_sats:
        raise ValueError(f"{what}: opening plus flows is {found.closing_sats} sats, the chain "
                         f"shows {closing_sats}")


def consolidate(openings: Mapping[str, int], movements: Sequence[Movement]
                ) -> tuple[dict[str, Account], Account]:
    """Each wallet's account and the public sector's, internal transfers eliminated."""
    wallets = {name: account(opening, [m for m in movements if m.wallet == name])
               for name, opening in openings.items()}
    return wallets, account(sum(openings.values()), movements, consolidated=True)
