"""Events about the ledger itself: notes, on-chain anchors and checked-in reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reserve.errors import EventError
from reserve.events.base import ABSENT, Event, Hex, Json

ANCHOR_OF_CHECKPOINT = "checkpoint"
ANCHOR_OF_REPORT = "reconcile.report"


@dataclass(frozen=True)
class LedgerNote(Event):
    """What an operator put on the record (`reserve ledger append ledger.note`): the one
    kind without a fixed shape, any JSON object the ledger accepts."""

    KIND = "ledger.note"
    content: Json

    def to_payload(self) -> dict[str, Any]:
        if not isinstance(self.content, dict):
            raise EventError(f"{self.KIND}: the note must be an object")
        return dict(self.content)

    @classmethod
    def from_payload(cls, payload: Any) -> LedgerNote:
        if not isinstance(payload, dict):
            raise EventError(f"{cls.KIND}: payload must be an object, "
                             f"not {type(payload).__name__}")
        return cls(content=dict(payload))


@dataclass(frozen=True)
class LedgerAnchor(Event):
    """A ledger checkpoint or a report hash written to the on-chain registry."""

    KIND = "ledger.anchor"
    BY = "subject"


@dataclass(frozen=True)
class _Anchored(LedgerAnchor):
    subject: str
    chain_id: int
    registry: str
    index: int
    anchorer: str
    tx_hash: Hex
    block_number: int
    block_hash: Hex


@dataclass(frozen=True)
class CheckpointAnchored(_Anchored):
    """`tree_size` and `root_hash` of a signed checkpoint, anchored on chain."""

    tree_size: int
    root_hash: Hex


@dataclass(frozen=True)
class ReportAnchored(_Anchored):
    """A reconciliation report's hash and the ledger size it was made against."""

    report_sha256: Hex
    ledger_tree_size: int


LedgerAnchor.VARIANTS = {ANCHOR_OF_CHECKPOINT: CheckpointAnchored,
                         ANCHOR_OF_REPORT: ReportAnchored}


@dataclass(frozen=True)
class ReconcileReport(Event):
    """A signed reconciliation report checked in: its hash, signature, pins and summary."""

    KIND = "reconcile.report"
    report_sha256: Hex
    auditor_key: str
    signature: str
    ledger_tree_size: int
    ledger_root_hash: Hex
    block: Json
    summary: Json
    findings_by_severity: Json
    evm: Json = ABSENT  # EVM vaults' pinned block and rows, when the report has them


EVENTS: tuple[type[Event], ...] = (LedgerNote, LedgerAnchor, ReconcileReport)
