"""The append-only, tamper-evident ledger: hash chain, RFC 9162 tree, signed checkpoints.

Importing the package loads nothing: the pure record modules (`entry`, `canonical`,
`merkle`, `checkpoint`, `kinds`, `verify`) never pull in the database store, so a caller
that only verifies an export or computes a Merkle proof needs no database driver. Code in
`reserve/` and `wallets/` imports the submodule it uses (`from reserve.ledger.store import
Ledger`), which keeps the import graph that `lint-imports` checks honest; the names below
stay available from the package, loaded on first use, for scripts and tests.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reserve.ledger.checkpoint import Checkpoint, CheckpointSigner, VerifierKey
    from reserve.ledger.entry import Entry
    from reserve.ledger.store import Ledger

_HOMES = {"Checkpoint": "checkpoint", "CheckpointSigner": "checkpoint",
          "VerifierKey": "checkpoint", "Entry": "entry", "Ledger": "store"}

__all__ = ["Checkpoint", "CheckpointSigner", "Entry", "Ledger", "VerifierKey"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
