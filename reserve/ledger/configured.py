"""The ledger as the service's settings describe it: database, limits, checkpoint key.

Every entry point (the CLI, the API, the demo's commands) opens the ledger the same way, so
that way lives here, beside the store, and not in any one of them.
"""

from __future__ import annotations

from reserve import config
from reserve.ledger.keys import load_or_create_signer
from reserve.ledger.store import Ledger


def open_ledger(settings: config.Settings, database_url: str | None = None, *,
                with_signer: bool = True) -> Ledger:
    """Open the configured ledger with its checkpoint key (created on first use)."""
    signer = None
    if with_signer:
        signer = load_or_create_signer(settings.resolve(settings.ledger.key_path),
                                       settings.ledger.origin, settings.ledger_passphrase())
    ledger = Ledger.open(database_url or settings.ledger.database_url,
                         payload_bytes_max=settings.ledger.payload_bytes_max, signer=signer,
                         checkpoint_every=settings.ledger.checkpoint_every)
    ledger.clock = settings.clock()  # entries given no time take the service's clock
    return ledger
