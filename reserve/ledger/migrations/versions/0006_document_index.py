"""Index reconciliation reports and attestations by their document's SHA-256.

From this revision `rm_digest_entries` also lists every `reconcile.report` and
`reconcile.attestation` entry under its `report_sha256`, so a report is found by its hash,
and a report's attestations are read, without scanning every report of the ledger's
history (reserve/transfers/readmodel.py, `digest_named`). Entries the workflow read model
has already applied (below its recorded size) are indexed here from their bodies, through
the kind index; later ones are indexed by the model as it catches up, as before. Kinds
and the field are spelt out (frozen history, not today's code).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006_document_index"
down_revision = "0005_read_models"
branch_labels = None
depends_on = None
KINDS = ("reconcile.report", "reconcile.attestation")
CHUNK = 1_000


def _applied(bind: sa.engine.Connection) -> int:
    row = bind.execute(sa.text(
        "SELECT size FROM read_model_state WHERE name = 'workflow'")).fetchone()
    return int(row[0]) if row else 0


def upgrade() -> None:
    bind = op.get_bind()
    applied = _applied(bind)
    position = 0
    while position < applied:
        rows = bind.execute(sa.text(
            "SELECT e.seq, e.body FROM ledger_kinds k JOIN ledger_entries e ON e.seq = k.seq "
            "WHERE k.kind IN (:report, :attestation) AND k.seq >= :start AND k.seq < :stop "
            "ORDER BY k.seq LIMIT :limit"),
            {"report": KINDS[0], "attestation": KINDS[1], "start": position,
             "stop": applied, "limit": CHUNK}).fetchall()
        if not rows:
            return
        named = []
        for seq, body in rows:
            value = json.loads(bytes(body)).get("payload", {}).get("report_sha256")
            if isinstance(value, str):
                named.append({"digest": value, "seq": int(seq)})
        if named:
            bind.execute(sa.text(
                "INSERT INTO rm_digest_entries (digest, seq) VALUES (:digest, :seq)"), named)
        position = int(rows[-1][0]) + 1


def downgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text(
        "DELETE FROM rm_digest_entries WHERE seq IN (SELECT seq FROM ledger_kinds "
        "WHERE kind IN (:report, :attestation))"),
        {"report": KINDS[0], "attestation": KINDS[1]})
