"""The supervisor's alert feed, derived from ledger entries; nothing is stored but the ledger.

An alert is a view of one ledger entry: it points at the entry's `seq`, and the cursor of
the feed is a seq. Reading a page costs the entries after the cursor and no more: at most
`scan_max` entries are read per page (the page then says where it stopped), whatever the
ledger's size, and they are read through one function (`alert_entries`) with the kinds the
mappers want, so a kind-indexed store serves it without scanning the rest.

Each alert kind is one entry in `MAPPERS`: the ledger kind it reads and a function from
the entry to an alert (or None). A later kind (unattributed inflows, commitment breaches)
plugs in by adding one mapping. Mappers are pure apart from `Context`, through which they
may look up the policy version a proposal was made under (one entry read, cached).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from reserve import present
from reserve.errors import WorkflowError
from reserve.events import decode
from reserve.events.custody import (
    DestinationAdded,
    PolicyVersion,
    VaultFrozen,
    VaultUnfrozen,
)
from reserve.events.mining import EnergyReportPublished
from reserve.events.records import ReconcileReport
from reserve.events.supervision import AlertAcknowledged, LicenceChanged
from reserve.events.transparency import StatementPublished
from reserve.events.workflow import DestinationProposed, PolicyChangeProposed, ProposalCreated
from reserve.policy import loader
from reserve.policy.model import Policy
from reserve.proposals import proposal as proposal_module
from reserve.proposals.proposal import DestinationBody, TransferBody

PAGE_LIMIT_MAX = 500
SCAN_MAX_DEFAULT = 10_000
ACK_KINDS = frozenset({AlertAcknowledged.KIND})


@dataclass(frozen=True)
class Alert:
    seq: int  # the ledger entry it is about, and the cursor after it
    time: str
    kind: str  # e.g. "transfer.very_large"
    severity: str  # "critical", "high", "notice"
    vault: str
    text: str
    entry_kind: str
    actor: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "kind": self.kind,
                "severity": self.severity, "vault": self.vault, "text": self.text,
                "entry_kind": self.entry_kind, "actor": self.actor}


class Context(Protocol):
    def policy_at(self, vault: str, version: int) -> Policy | None: ...


Mapper = Callable[[Any, Any, Context], Alert | None]  # (entry, event, context)


def _alert(entry: Any, kind: str, severity: str, vault: str, text: str) -> Alert:
    return Alert(seq=entry.seq, time=entry.time, kind=kind, severity=severity, vault=vault,
                 text=text, entry_kind=entry.kind, actor=entry.actor)


def _very_large(entry: Any, event: ProposalCreated, context: Context) -> Alert | None:
    """A transfer in the top tier of its asset (the tier with no upper bound)."""
    proposal = proposal_module.from_document(event.proposal)
    body = proposal.body
    if not isinstance(body, TransferBody):
        return None
    policy = context.policy_at(proposal.vault, proposal.policy_version)
    rules = policy.asset_rules(body.asset) if policy is not None else None
    tier = rules.tier_for(body.amount) if rules is not None else None
    if tier is None or tier.amount_max is not None or len(rules.tiers) < 2:  # type: ignore[union-attr]
        return None
    return _alert(entry, "transfer.very_large", "high", proposal.vault,
                  f"{entry.actor} proposed {present.format_amount(body.amount, body.asset)} "
                  f"from {proposal.vault} (tier {tier.name}): {proposal.purpose}")


def _policy_proposed(entry: Any, event: PolicyChangeProposed, context: Context) -> Alert:
    return _alert(entry, "policy.change_proposed", "notice", event.vault,
                  f"{entry.actor} proposed a change of {event.vault}'s custody policy")


def _policy_version(entry: Any, event: PolicyVersion, context: Context) -> Alert | None:
    if event.version == 1:
        return None
    return _alert(entry, "policy.changed", "high", event.vault,
                  f"{event.vault}'s custody policy v{event.version} is in force")


def _frozen(entry: Any, event: VaultFrozen, context: Context) -> Alert:
    return _alert(entry, "vault.frozen", "high", event.vault,
                  f"{entry.actor} froze {event.vault}: {event.reason}")


def _unfrozen(entry: Any, event: VaultUnfrozen, context: Context) -> Alert:
    return _alert(entry, "vault.unfrozen", "high", event.vault,
                  f"{event.vault} unfrozen by proposal {event.digest[:16]}")


def _destination_proposed(entry: Any, event: DestinationProposed,
                          context: Context) -> Alert | None:
    body = proposal_module.from_document(event.proposal).body
    if not isinstance(body, DestinationBody):
        return None
    return _alert(entry, "destination.proposed", "notice", event.vault,
                  f"{entry.actor} proposed a new {body.asset} destination for "
                  f"{event.vault}: {body.label} ({body.address})")


def _destination_added(entry: Any, event: DestinationAdded, context: Context) -> Alert:
    return _alert(entry, "destination.added", "high", event.vault,
                  f"new {event.asset} destination {event.label} ({event.address}) on "
                  f"{event.vault}'s allowlist, usable from "
                  f"{present.format_time(event.usable_from)}")


def _report(entry: Any, event: ReconcileReport, context: Context) -> Alert | None:
    """Critical findings of a reconciliation are unauthorised spends (reserve.reconcile)."""
    counts = event.findings_by_severity if isinstance(event.findings_by_severity, dict) else {}
    critical = int(counts.get("critical", 0))
    if not critical:
        return None
    vaults = sorted({str(row.get("vault_id", "")) for row in event.summary
                     if isinstance(row, dict) and row.get("status") == "critical"})
    return _alert(entry, "reconcile.unauthorised_spend", "critical", ",".join(vaults),
                  f"reconciliation report {event.report_sha256[:16]} found {critical} "
                  f"unauthorised spend{'s' if critical != 1 else ''} "
                  f"({', '.join(vaults) or 'no vault named'})")


def _licence(entry: Any, event: LicenceChanged, context: Context) -> Alert | None:
    affected = event.affects if isinstance(event.affects, list) else []
    if not affected:
        return None
    vaults = sorted({str(item.get("vault", "")) for item in affected})
    digests = ", ".join(str(item.get("digest", ""))[:16] for item in affected)
    return _alert(entry, "licence.affects_pending", "high", ",".join(vaults),
                  f"{event.entity}'s licence {event.licence_id} {event.status} from "
                  f"{present.format_time(event.effective_at)}; pending transfers: {digests}")


def _statement(entry: Any, event: StatementPublished, context: Context) -> Alert | None:
    """A published statement that breaks a commitment (critical) or leaves inflows
    unattributed (notice: nobody has said where those coins came from)."""
    broken = [c for c in (event.commitments if isinstance(event.commitments, list) else [])
              if isinstance(c, dict) and not c.get("kept", True)]
    flows = event.consolidated.get("flows", []) if isinstance(event.consolidated, dict) else []
    unattributed = sum(int(f.get("sats", 0)) for f in flows
                       if isinstance(f, dict) and f.get("class") == "unattributed")
    what = f"statement {event.statement_sha256[:16]}"
    if broken:
        return _alert(entry, "statement.commitment_breach", "critical", "",
                      f"{what} breaks {len(broken)} commitment"
                      f"{'s' if len(broken) != 1 else ''}: "
                      + "; ".join(f"{c.get('text', c.get('id'))} "
                                  f"({'; '.join(map(str, c.get('findings', [])))})"
                                  for c in broken))
    if unattributed:
        return _alert(entry, "statement.unattributed_inflows", "notice", "",
                      f"{what}: {present.amount_words(unattributed, present.BTC)} of "
                      "inflows unattributed (an operator proposes a class, an auditor "
                      "confirms it)")
    return None


def _energy_report(entry: Any, event: EnergyReportPublished, context: Context
                   ) -> Alert | None:
    """A published energy report with anomalies (high when mined coins do not match the
    statement or a payout has no reading, notice otherwise)."""
    found = [a for a in (event.anomalies if isinstance(event.anomalies, list) else [])
             if isinstance(a, dict)]
    if not found:
        return None
    serious = {"payout_without_reading", "mining_outside_sites", "over_allocation"}
    severity = "high" if any(a.get("kind") in serious for a in found) else "notice"
    period = event.period if isinstance(event.period, dict) else {}
    return _alert(entry, "energy.anomalies", severity, "",
                  f"energy report {event.report_sha256[:16]} ({period.get('start')} .. "
                  f"{period.get('end')}) has {len(found)} anomal"
                  f"{'ies' if len(found) != 1 else 'y'}: "
                  + "; ".join(f"{a.get('kind')} at {a.get('site') or 'no site'}"
                              for a in found))


# Ledger kind -> the mapper of its alerts. One line per kind.
MAPPERS: Mapping[str, Mapper] = {
    ProposalCreated.KIND: _very_large,
    PolicyChangeProposed.KIND: _policy_proposed,
    PolicyVersion.KIND: _policy_version,
    VaultFrozen.KIND: _frozen,
    VaultUnfrozen.KIND: _unfrozen,
    DestinationProposed.KIND: _destination_proposed,
    DestinationAdded.KIND: _destination_added,
    ReconcileReport.KIND: _report,
    LicenceChanged.KIND: _licence,
    StatementPublished.KIND: _statement,
    EnergyReportPublished.KIND: _energy_report,
}
ALERT_KINDS = frozenset(MAPPERS)


def alert_entries(ledger: Any, start: int, stop: int, kinds: Iterable[str]) -> Iterator[Any]:
    """The one read of the feed: entries in [start, stop) of `kinds`. Swap this for a
    kind-indexed read model; nothing else reads the ledger for alerts."""
    return iter(ledger.entries(start=start, stop=stop, kinds=frozenset(kinds)))


def alert_of(entry: Any, context: Context) -> Alert | None:
    mapper = MAPPERS.get(entry.kind)
    if mapper is None:
        return None
    return mapper(entry, decode(entry.kind, entry.payload), context)


@dataclass(frozen=True)
class AlertPage:
    alerts: tuple[Alert, ...]
    cursor: int  # pass as `after` for the next page (-1: nothing read yet)
    size: int  # ledger size when read

    @property
    def complete(self) -> bool:
        """Whether the page reached the ledger's end (no more alerts right now)."""
        return self.cursor >= self.size - 1


def read_alerts(ledger: Any, context: Context, *, after: int = -1, limit: int = 100,
                scan_max: int = SCAN_MAX_DEFAULT) -> AlertPage:
    """Alerts of entries with seq > `after`, oldest first, at most `limit` of them.

    Requires -1 <= after and 1 <= limit <= PAGE_LIMIT_MAX. At most `scan_max` entries are
    read: a page may hold fewer than `limit` alerts and still not be `complete`.
    """
    if after < -1 or not 1 <= limit <= PAGE_LIMIT_MAX or scan_max < 1:
        raise WorkflowError(f"alerts: after must be >= -1 and limit in 1..{PAGE_LIMIT_MAX}")
    size = ledger.size()
    start = after + 1
    stop = min(size, start + scan_max)
    alerts: list[Alert] = []
    cursor = max(after, stop - 1)
    for entry in alert_entries(ledger, start, stop, ALERT_KINDS):
        found = alert_of(entry, context)
        if found is None:
            continue
        alerts.append(found)
        if len(alerts) == limit:
            cursor = entry.seq
            break
    return AlertPage(tuple(alerts), cursor, size)


class LedgerContext:
    """Context from a projection's policy versions: one entry read per version, cached."""

    def __init__(self, ledger: Any, versions: Mapping[str, Iterable[tuple[int, str, int]]]
                 ) -> None:
        self.ledger = ledger
        self.versions = {vault: {version: seq for version, _, seq in rows}
                         for vault, rows in versions.items()}
        self._cache: dict[tuple[str, int], Policy | None] = {}

    def policy_at(self, vault: str, version: int) -> Policy | None:
        key = (vault, version)
        if key not in self._cache:
            seq = self.versions.get(vault, {}).get(version)
            self._cache[key] = None if seq is None else loader.from_mapping(
                PolicyVersion.of(self.ledger.entry(seq)).policy, source=f"ledger entry {seq}")
        return self._cache[key]


@dataclass(frozen=True)
class Acknowledgement:
    seq: int
    alert_seq: int
    by: str
    time: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "by": self.by, "time": self.time, "note": self.note}


class Acknowledgements:
    """alert seq -> its acknowledgements, caught up incrementally from the ledger."""

    def __init__(self) -> None:
        self.size = 0
        self.by_alert: dict[int, list[Acknowledgement]] = {}

    def catch_up(self, ledger: Any) -> None:
        stop = ledger.size()
        while self.size < stop:
            batch = min(stop, self.size + SCAN_MAX_DEFAULT)
            for entry in alert_entries(ledger, self.size, batch, ACK_KINDS):
                event = AlertAcknowledged.of(entry)
                self.by_alert.setdefault(event.alert_seq, []).append(Acknowledgement(
                    entry.seq, event.alert_seq, entry.actor, entry.time, event.note))
            self.size = batch

    def of(self, alert_seq: int) -> list[Acknowledgement]:
        return list(self.by_alert.get(alert_seq, ()))
