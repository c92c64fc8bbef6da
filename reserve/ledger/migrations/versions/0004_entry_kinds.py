"""Create `ledger_kinds`, the append-only (seq, kind) index of the entries, and fill it.

Readers that want a few kinds (holdings, registrations, alerts) read only those entries
through it instead of decoding the whole ledger. Existing entries are indexed here from
their bodies, in chunks; from now on every append writes its rows in its own transaction.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from reserve.ledger import schema

revision = "0004_entry_kinds"
down_revision = "0003_token_grants"
branch_labels = None
depends_on = None
CHUNK = 10_000


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    for statement in schema.KINDS_POSTGRES if postgres else schema.KINDS_SQLITE:
        op.execute(statement)
    position = 0
    while True:
        rows = bind.execute(sa.text(
            "SELECT seq, body FROM ledger_entries WHERE seq >= :start ORDER BY seq "
            "LIMIT :limit"), {"start": position, "limit": CHUNK}).fetchall()
        if not rows:
            return
        bind.execute(sa.text("INSERT INTO ledger_kinds (seq, kind) VALUES (:seq, :kind)"),
                     [{"seq": int(seq), "kind": str(json.loads(bytes(body))["kind"])}
                      for seq, body in rows])
        position = int(rows[-1][0]) + 1


def downgrade() -> None:
    raise RuntimeError("the ledger is append-only: its tables are never dropped by a migration")
