"""The append-only, tamper-evident ledger: hash chain, RFC 9162 tree, signed checkpoints."""

from reserve.ledger.checkpoint import Checkpoint, CheckpointSigner, VerifierKey
from reserve.ledger.entry import Entry
from reserve.ledger.store import Ledger

__all__ = ["Checkpoint", "CheckpointSigner", "Entry", "Ledger", "VerifierKey"]
