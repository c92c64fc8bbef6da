"""What the workflow released: the evidence every outgoing movement must match.

A vault's coins or a Safe's balance may leave only for a transfer proposal that the workflow
itself moved from `releasable` to `signing` (reserve.transfers.service `release()`), and
only with exactly the outputs that proposal approved. The chain layers' own records
(`btc.psbt_created`, `btc.broadcast`, `evm.safe_tx_created`, `evm.executed`) say which
proposal a transaction claims to carry out, but anyone who calls the chain layers directly
(`BitcoinVaultService.build_psbt`, the EVM executor) can have those written for a digest
never proposed, or for other outputs.
So reconciliation reads the workflow's own entries here (replayed with the same projection
the workflow uses, so "released" means the state machine got there legally) and judges
each transaction seen on chain against them; a claim is only a pointer to check.

Pure: entries in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reserve.errors import WorkflowError
from reserve.events.chain_evm import EvmSafeTxCreated
from reserve.proposals.proposal import TransferBody
from reserve.proposals.state import SIGNING
from reserve.transfers.projection import Projection

Paid = tuple[str | None, int]  # (destination, amount in base units)
DIGEST_SHOWN = 16  # hex digits of a digest quoted in a finding's text


@dataclass(frozen=True)
class Release:
    """A transfer proposal as the workflow's entries show it."""

    digest: str
    vault: str
    chain: str  # CAIP-2
    asset: str
    outputs: tuple[tuple[str, int], ...]  # (destination, amount) as approved
    state: str
    released_seq: int | None  # the entry that moved it releasable -> signing, if any
    txid: str = ""  # the transaction the workflow recorded broadcasting for it
    token: str = ""  # EVM: the token address recorded with its release (asset by name)
    safe_tx_hash: str = ""  # EVM: the Safe transaction recorded with its release

    @property
    def released(self) -> bool:
        return self.released_seq is not None


@dataclass(frozen=True)
class Releases:
    """Every transfer proposal in the ledger by digest; `stopped` says why the replay
    stopped early (the entries after that one were not read), "" if it did not."""

    transfers: Mapping[str, Release] = field(default_factory=dict)
    stopped: str = ""

    def by_txid(self) -> dict[str, str]:
        """txid -> digest of each transaction the workflow recorded broadcasting."""
        return {r.txid: r.digest for r in self.transfers.values() if r.txid}


def _release_batch(entries: Sequence[Any], seq: int, digest: str) -> tuple[str, str]:
    """(token address, Safe transaction hash) of the Safe transaction the workflow recorded
    in its release batch (the entry right after the state change); ("", "") if none."""
    following = entries[seq + 1] if seq + 1 < len(entries) else None
    if following is None or following.seq != seq + 1 or \
            following.kind != EvmSafeTxCreated.KIND:
        return "", ""
    created = EvmSafeTxCreated.of(following)
    if created.digest != digest:
        return "", ""
    asset = created.transfer.get("asset", "") if isinstance(created.transfer, dict) else ""
    return (str(asset) if asset != "ETH" else ""), created.safe_tx_hash


def releases_of(entries: Iterable[Any]) -> Releases:
    """Replay the workflow over `entries` (every entry from seq 0, in order)."""
    listed = list(entries)
    projection = Projection()
    stopped = ""
    for entry in listed:
        try:
            projection.apply(entry)
        except WorkflowError as error:
            stopped = f"the workflow's entries stop replaying at entry {entry.seq}: {error}"
            break
    found: dict[str, Release] = {}
    for digest, status in projection.proposals.items():
        body = status.proposal.body
        if not isinstance(body, TransferBody):
            continue
        released = next((c.seq for c in status.changes if c.state == SIGNING), None)
        token, safe_tx_hash = _release_batch(listed, released, digest) \
            if released is not None else ("", "")
        found[digest] = Release(
            digest=digest, vault=status.proposal.vault, chain=status.proposal.chain,
            asset=body.asset, outputs=tuple((o.destination, o.amount) for o in body.outputs),
            state=status.state, released_seq=released, txid=status.txid, token=token,
            safe_tx_hash=safe_tx_hash)
    return Releases(found, stopped)


def same_destination(left: str | None, right: str | None) -> bool:
    """Addresses compare exactly, except where the format is case-insensitive (bech32,
    hex EVM addresses)."""
    if left is None or right is None:
        return False
    folded = ("bc1", "tb1", "bcrt1", "0x")
    if left.lower().startswith(folded) and right.lower().startswith(folded):
        return left.lower() == right.lower()
    return left == right


def _difference(paid: Sequence[Paid], approved: Sequence[tuple[str, int]]
                ) -> tuple[list[Paid], list[tuple[str, int]]]:
    """(paid but not approved, approved but not paid), each output matched at most once."""
    left = list(approved)
    extra: list[Paid] = []
    for destination, amount in paid:
        match = next((i for i, (d, a) in enumerate(left)
                      if a == amount and same_destination(d, destination)), None)
        if match is None:
            extra.append((destination, amount))
        else:
            del left[match]
    return extra, left


def _shown(digest: str) -> str:
    return digest[:DIGEST_SHOWN]


def judge(releases: Releases, *, txid: str, claimed: str | None, vault: str, asset: str,
          paid: Sequence[Paid] | None, asset_matches: Any = None) -> str:
    """"" if `txid` is authorised, else why not, in words.

    `claimed` is the digest the ledger's records point at for this transaction (None: no
    record names one); `paid` is what the transaction sent out of the vault (None: the
    chain's data could not be read as payments). `asset_matches(release)` decides whether a
    release's asset is `asset` (default: the same name).
    """
    if claimed is None:
        return "no proposal in the ledger names this transaction" + _stopped(releases)
    release = releases.transfers.get(claimed)
    if release is None:
        return (f"it claims proposal {_shown(claimed)}, which the workflow never recorded "
                "as a transfer proposal" + _stopped(releases))
    reasons = []
    if release.vault != vault:
        reasons.append(f"proposal {_shown(claimed)} is for vault {release.vault}, not {vault}")
    matches = asset_matches(release) if asset_matches else release.asset == asset
    if not matches:
        reasons.append(f"proposal {_shown(claimed)} moves {release.asset}, not {asset}")
    if not release.released:
        reasons.append(f"proposal {_shown(claimed)} was never released by the workflow "
                       f"(it is {release.state})")
    if release.txid and release.txid != txid:
        reasons.append(f"the workflow broadcast proposal {_shown(claimed)} as "
                       f"{release.txid}, not as this transaction")
    if paid is None:
        reasons.append("what it paid could not be read from the chain")
    else:
        extra, lost = _difference(paid, release.outputs)
        if extra or lost:
            reasons.append(f"its outputs differ from proposal {_shown(claimed)}'s: paid but "
                           f"not approved {_listed(extra)}, approved but not paid "
                           f"{_listed(lost)}")
    return "; ".join(reasons)


def _listed(outputs: Sequence[Paid]) -> str:
    return "[" + ", ".join(f"{amount} to {destination}" for destination, amount in outputs) \
        + "]" if outputs else "none"


def _stopped(releases: Releases) -> str:
    return f" ({releases.stopped})" if releases.stopped else ""


EMPTY = Releases()
