"""Ledger data shaped for the API and the dashboard, filtered for the caller.

Shared by the JSON routes and the server-rendered pages so both show the same thing. An
entry's exact canonical bytes travel base64-encoded (`body_base64`): a client recomputes
the leaf hash from them instead of trusting one the server sends.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from reserve.api.auth import Principal, Role
from reserve.api.visibility import visible_to
from reserve.errors import CheckpointError, ProofError
from reserve.ledger.checkpoint import parse_note
from reserve.ledger.entry import Entry


def entry_json(entry: Entry) -> dict[str, Any]:
    data = entry.to_json()
    data["body_base64"] = base64.b64encode(entry.body).decode()
    return data


def may_see(principal: Principal, entry: Entry) -> bool:
    if principal.role is not Role.CUSTODIAN:
        return True
    return visible_to(entry.payload, principal.vaults)


@dataclass(frozen=True)
class Page:
    size: int
    start: int
    stop: int
    entries: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "start": self.start, "stop": self.stop,
                "next_start": self.stop if self.stop < self.size else None,
                "entries": self.entries}


def page(ledger: Any, principal: Principal, start: int, limit: int,
         kinds: frozenset[str] | None) -> Page:
    """Entries with seq in [start, start + limit) that match `kinds` and the caller may see.

    A page is a range of sequence numbers, so filtered pages may hold fewer entries.
    """
    size = ledger.size()
    begin = min(start, size)
    stop = min(begin + limit, size)
    chosen = [entry_json(entry) for entry in ledger.entries(begin, stop, kinds)
              if may_see(principal, entry)]
    return Page(size=size, start=begin, stop=stop, entries=chosen)


def checkpoint_json(note: str, verifier_key: str | None) -> dict[str, Any]:
    checkpoint, _ = parse_note(note)
    return {"origin": checkpoint.origin, "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash.hex(),
            "root_hash_base64": base64.b64encode(checkpoint.root_hash).decode(),
            "note": note, "verifier_key": verifier_key}


def verifier_text(ledger: Any) -> str | None:
    key = ledger.verifier_key()
    return key.encode() if key is not None else None


def latest_checkpoint(ledger: Any) -> dict[str, Any] | None:
    note = ledger.latest_checkpoint()
    return checkpoint_json(note, verifier_text(ledger)) if note else None


def checkpoint_at(ledger: Any, tree_size: int) -> str | None:
    """The note signed at `tree_size`, if its own text says that size (one indexed read)."""
    note = ledger.checkpoint_note(tree_size)
    return note if note is not None and _note_size(note) == tree_size else None


def _note_size(note: str) -> int | None:
    try:
        return parse_note(note)[0].tree_size
    except CheckpointError:
        return None


def latest_anchor(ledger: Any, scan_entries: int) -> dict[str, Any] | None:
    """The newest `ledger.anchor` entry among the last `scan_entries` entries."""
    size = ledger.size()
    found = None
    for entry in ledger.entries(max(0, size - scan_entries), size, {"ledger.anchor"}):
        found = entry
    if found is None:
        return None
    return {"seq": found.seq, "time": found.time, "actor": found.actor,
            "payload": found.payload}


def inclusion(ledger: Any, seq: int, tree_size: int | None) -> dict[str, Any]:
    """Entry `seq` with its audit path to the tree of `tree_size` entries.

    Default tree: the latest signed checkpoint if it covers the entry (so the root is one
    the ledger's key signed), otherwise the current tree head.
    """
    size = ledger.size()
    if not 0 <= seq < size:
        raise ProofError(f"no entry {seq}: the ledger holds {size} entries")
    note: str | None = None
    if tree_size is None:
        latest = ledger.latest_checkpoint()
        latest_size = _note_size(latest) if latest else None
        if latest is not None and latest_size is not None and seq < latest_size <= size:
            tree_size, note = latest_size, latest
        else:
            tree_size = size
    else:
        note = checkpoint_at(ledger, tree_size) if seq < tree_size <= size else None
    if not seq < tree_size <= size:
        raise ProofError(f"entry {seq} is not in a tree of size {tree_size} "
                         f"(the ledger holds {size} entries)")
    path = ledger.inclusion_proof(seq, tree_size)
    root = ledger.root_at(tree_size)
    return {"tree_size": tree_size, "leaf_index": seq,
            "audit_path": [item.hex() for item in path], "root_hash": root.hex(),
            "checkpoint": checkpoint_json(note, verifier_text(ledger)) if note else None}
