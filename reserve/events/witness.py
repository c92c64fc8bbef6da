"""Events of the public log: witnesses' cosignatures of checkpoints
(docs/transparency-log.md)."""

from __future__ import annotations

from dataclasses import dataclass

from reserve.events.base import Event, Hex


@dataclass(frozen=True)
class WitnessCosigned(Event):
    """An outside witness cosigned the ledger's checkpoint at `tree_size` (C2SP
    tlog-cosignature/v1). `signature` is the note signature line itself, so the published
    checkpoint carries it as the witness wrote it; anyone can check it against
    `witness_key` and the checkpoint body."""

    KIND = "witness.cosigned"
    witness_key: str  # the witness's vkey: <name>+<hex key id>+<base64(0x04 || key)>
    tree_size: int
    root_hash: Hex
    timestamp: int  # POSIX seconds, as signed
    signature: str  # "— <name> <base64(key id || timestamp || signature)>"


EVENTS: tuple[type[Event], ...] = (WitnessCosigned,)
