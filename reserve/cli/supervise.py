"""`reserve licence ...` and `reserve supervise ...`: the regulator's and supervisor's commands.

The regulator signs each licence change offline (`reserve licence sign`, with its key from
`reserve licence keygen`; passphrase from RESERVE_REGULATOR_PASSPHRASE or a prompt) and
hands the file over; `reserve licence submit` records it after checking the signature,
the numbering and that a vault's policy trusts the key; `list` shows the register and
`verify` re-checks every recorded change from the ledger or from an export, offline.

The supervisor reads the alert feed (`reserve supervise alerts --after SEQ`), acknowledges
an alert (`ack`) and countersigns a reconciliation report with its own key (`attest`;
passphrase from RESERVE_SUPERVISOR_PASSPHRASE). See docs/supervision.md.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from reserve.cli.common import emit, fail, load_settings, open_ledger
from reserve.cli.workflow import Config, Database, Json, _guarded, _service

licence_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="Licensed counterparties: signed licence changes.")
supervise_app = typer.Typer(no_args_is_help=True, add_completion=False,
                            help="The supervisor's seat: alerts, acknowledgements, attestations.")
REGULATOR_PASSPHRASE_ENV = "RESERVE_REGULATOR_PASSPHRASE"  # noqa: S105 (a variable name)
SUPERVISOR_PASSPHRASE_ENV = "RESERVE_SUPERVISOR_PASSPHRASE"  # noqa: S105 (a variable name)
FILE_BYTES_MAX = 1024 * 1024
By = Annotated[str, typer.Option("--by", help="Who acts (recorded as the entry's actor).")]
KeyPath = Annotated[Path, typer.Option("--key", help="The keystore file.")]


def _passphrase(variable: str, role: str) -> str:
    from reserve import keystore

    return keystore.passphrase_from_env(variable, prompt=f"{role} key passphrase: ")


def _read(path: Path) -> Any:
    try:
        if path.stat().st_size > FILE_BYTES_MAX:
            fail(f"{path} is larger than {FILE_BYTES_MAX} bytes")
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        fail(f"cannot read {path}: {error}")


# -- licences ----------------------------------------------------------------------------
@licence_app.command("keygen")
def licence_keygen(out: Annotated[Path, typer.Option("--out", help="Keystore to create.")],
                   name: Annotated[str, typer.Option("--name", help="Key name, one word.")]
                   = "regulator", as_json: Json = False) -> None:
    """Create the regulator's Ed25519 signing key; prints the public key a policy names
    as `supervision.regulator_key`."""
    from reserve.supervision.keys import create_key

    key = _guarded(lambda: create_key(out, name, _passphrase(REGULATOR_PASSPHRASE_ENV,
                                                               "regulator"), role="regulator"))
    emit({"public_key": key.verifier.encode(), "file": str(out)}, as_json,
         f"regulator key written to {out}\npublic key: {key.verifier.encode()}")


@licence_app.command("sign")
def licence_sign(key: KeyPath,
                 licence: Annotated[str, typer.Option("--licence", help="Licence id.")],
                 entity: Annotated[str, typer.Option("--entity", help="Licensed entity.")],
                 scope: Annotated[str, typer.Option("--scope", help="What it may do.")],
                 status: Annotated[str, typer.Option("--status",
                                                     help="active, suspended or revoked.")],
                 number: Annotated[int, typer.Option("--number",
                                                     help="This licence's change number.")],
                 out: Annotated[Path, typer.Option("--out", help="Signed change file.")],
                 effective_at: Annotated[str | None, typer.Option(
                     "--effective-at", help="UTC time, e.g. 2026-01-05T09:00:00Z "
                                            "(default: now).")] = None) -> None:
    """Sign one licence change, offline (no ledger is opened)."""
    from reserve.policy.licences import sign_change
    from reserve.proposals.proposal import parse_time
    from reserve.supervision.keys import load_key

    def run() -> Any:
        signing = load_key(key, _passphrase(REGULATOR_PASSPHRASE_ENV, "regulator"),
                           role="regulator")
        moment = parse_time(effective_at) if effective_at else \
            datetime.now(UTC).replace(microsecond=0)
        return sign_change(signing.private_key, signing.name, licence_id=licence,
                           entity=entity, scope=scope, status=status, effective_at=moment,
                           number=number)
    change = _guarded(run)
    if out.exists():
        fail(f"{out} exists; not overwritten")
    out.write_text(json.dumps(change.document(), indent=1, sort_keys=True) + "\n")
    typer.echo(f"signed licence {licence} change {number} ({status}) to {out}")


@licence_app.command("submit")
def licence_submit(path: Annotated[Path, typer.Argument(help="A signed change file.")],
                   by: By = "regulator", config: Config = None,
                   database_url: Database = None, as_json: Json = False) -> None:
    """Record a signed licence change; a forged or missing signature writes nothing."""
    from reserve.policy.licences import change_from_document

    document = _read(path)

    def run() -> Any:
        change = change_from_document(document)
        with _service(config, database_url) as service:
            return service.record_licence_change(change, by)
    entry = _guarded(run)
    from reserve.events.supervision import LicenceChanged

    changed = LicenceChanged.of(entry)
    affects = changed.affects if isinstance(changed.affects, list) else []
    emit({"seq": entry.seq, "licence_id": changed.licence_id, "status": changed.status,
          "affects": affects}, as_json,
         f"licence {changed.licence_id} {changed.status} from "
         f"{changed.to_payload()['effective_at']} recorded (ledger entry {entry.seq}); "
         f"{len(affects)} pending transfer(s) to this counterparty")


@licence_app.command("list")
def licence_list(config: Config = None, database_url: Database = None,
                 as_json: Json = False) -> None:
    """The licence register: each licence's status now."""
    from reserve.policy.licences import standing_sentence

    def run() -> Any:
        with _service(config, database_url, write=False) as service:
            service.sync()
            now = service.clock()
            return [(state, standing_sentence(state, state.licence_id, "", now))
                    for _, state in sorted(service.licences.licences.items())]
    rows = _guarded(run)
    emit([{"licence_id": s.licence_id, "entity": s.latest.entity, "scope": s.latest.scope,
           "status": status, "sentence": sentence, "changes": len(s.changes),
           "seqs": list(s.seqs)} for s, (status, sentence) in rows], as_json,
         "\n".join(sentence for _, (_, sentence) in rows) or "no licence recorded")


@licence_app.command("verify")
def licence_verify(export: Annotated[Path | None, typer.Option(
        "--export", help="A ledger export (reserve ledger export); default: the ledger.")]
        = None, regulator_key: Annotated[list[str] | None, typer.Option(
            "--regulator-key", help="Only trust this regulator key; repeatable.")] = None,
        config: Config = None, database_url: Database = None, as_json: Json = False) -> None:
    """Re-check every recorded licence change: signature, numbering, trusted key."""
    from reserve.errors import LicenceError
    from reserve.events.supervision import LicenceChanged
    from reserve.policy.licences import admit, recorded
    from reserve.transfers.licences import LICENCE_KINDS, change_of

    entries: list[Any]
    if export is not None:
        from reserve.ledger.entry import decode_body
        from reserve.ledger.verify import read_export

        _, rows, _, _ = _guarded(lambda: read_export(export))
        entries = [e for e in (decode_body(body, digest) for _, body, digest in rows)
                   if e.kind in LICENCE_KINDS]
    else:
        settings = load_settings(str(config) if config else None)
        ledger = open_ledger(settings, database_url, with_signer=False)
        try:
            entries = list(ledger.entries(kinds=LICENCE_KINDS))
        finally:
            ledger.close()
    register: dict[str, Any] = {}
    problems = []
    for entry in entries:
        try:
            change = change_of(LicenceChanged.of(entry))
            register[change.licence_id] = recorded(admit(register, change, regulator_key),
                                                   entry.seq)
        except LicenceError as error:
            problems.append(f"entry {entry.seq}: {error}")
    emit({"ok": not problems, "changes": len(entries), "licences": len(register),
          "problems": problems}, as_json,
         "\n".join(problems) if problems else
         f"ok: {len(entries)} licence changes of {len(register)} licences verify")
    if problems:
        raise typer.Exit(1)


# -- supervision -------------------------------------------------------------------------
@supervise_app.command("keygen")
def supervise_keygen(out: Annotated[Path, typer.Option("--out", help="Keystore to create.")],
                     name: Annotated[str, typer.Option("--name", help="Key name, one word.")]
                     = "supervisor", as_json: Json = False) -> None:
    """Create a supervisor's Ed25519 key for attestations."""
    from reserve.supervision.keys import create_key

    key = _guarded(lambda: create_key(out, name, _passphrase(SUPERVISOR_PASSPHRASE_ENV,
                                                               "supervisor"), role="supervisor"))
    emit({"public_key": key.verifier.encode(), "file": str(out)}, as_json,
         f"supervisor key written to {out}\npublic key: {key.verifier.encode()}")


@supervise_app.command("alerts")
def supervise_alerts(after: Annotated[int, typer.Option("--after", help="Cursor: the seq "
                                                        "of the last alert seen.")] = -1,
                     limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 100,
                     config: Config = None, database_url: Database = None,
                     as_json: Json = False) -> None:
    """Alerts after the cursor, oldest first; resume with --after CURSOR."""
    from reserve.supervision import alerts as feed

    def run() -> Any:
        with _service(config, database_url, write=False) as service:
            projection = service.sync()
            context = feed.LedgerContext(service.ledger, {
                v: s.policy_versions for v, s in projection.vaults.items()})
            page = feed.read_alerts(service.ledger, context, after=after, limit=limit)
            book = feed.Acknowledgements()
            book.catch_up(service.ledger)
            return page, {a.seq: [x.to_json() for x in book.of(a.seq)] for a in page.alerts}
    page, acks = _guarded(run)
    lines = [f"{a.seq:>6}  {a.time[:19]}  {a.kind:<28} {a.vault:<14} {a.text}"
             + (f"  [acknowledged by {', '.join(x['by'] for x in acks[a.seq])}]"
                if acks[a.seq] else "") for a in page.alerts]
    lines.append(f"cursor {page.cursor}" + ("" if page.complete else " (more: rerun with "
                                             f"--after {page.cursor})"))
    emit({"cursor": page.cursor, "complete": page.complete,
          "alerts": [{**a.to_json(), "acknowledged": acks[a.seq]} for a in page.alerts]},
         as_json, "\n".join(lines))


@supervise_app.command("ack")
def supervise_ack(seq: Annotated[int, typer.Argument(help="The alert's ledger seq.")],
                  by: By, note: Annotated[str, typer.Option("--note")] = "",
                  config: Config = None, database_url: Database = None,
                  as_json: Json = False) -> None:
    """Acknowledge an alert: an `alert.acknowledged` entry says who and when."""
    from reserve.errors import WorkflowError
    from reserve.events.supervision import AlertAcknowledged
    from reserve.supervision import alerts as feed

    def run() -> Any:
        with _service(config, database_url) as service:
            projection = service.sync()
            if not 0 <= seq < service.ledger.size():
                raise WorkflowError(f"no ledger entry {seq}")
            context = feed.LedgerContext(service.ledger, {
                v: s.policy_versions for v, s in projection.vaults.items()})
            alert = feed.alert_of(service.ledger.entry(seq), context)
            if alert is None:
                raise WorkflowError(f"entry {seq} is not an alert")
            book = feed.Acknowledgements()

            def check(_size: int) -> None:
                book.catch_up(service.ledger)
                if any(ack.by == by for ack in book.of(seq)):
                    raise WorkflowError(f"{by} already acknowledged alert {seq}")
            return alert, service.record_event(AlertAcknowledged(
                alert_seq=seq, alert_kind=alert.kind, note=note[:500]), by, check=check)
    alert, entry = _guarded(run)
    emit({"seq": entry.seq, "alert": seq, "by": by, "time": entry.time}, as_json,
         f"alert {seq} ({alert.kind}) acknowledged by {by} at {entry.time} "
         f"(ledger entry {entry.seq})")


@supervise_app.command("attest")
def supervise_attest(report: Annotated[int, typer.Argument(
        help="The seq of the report's reconcile.report entry, or of a published "
             "statement's statement.published entry.")], key: KeyPath, by: By,
        statement: Annotated[str, typer.Option("--statement", help="What was checked.")],
        config: Config = None, database_url: Database = None, as_json: Json = False) -> None:
    """Countersign a reconciliation report or a published statement with the supervisor's
    own key (recorded)."""
    from reserve.errors import ReconcileError
    from reserve.supervision.attest import attest, verify
    from reserve.supervision.keys import load_key

    def run() -> Any:
        signing = load_key(key, _passphrase(SUPERVISOR_PASSPHRASE_ENV, "supervisor"),
                           role="supervisor")
        with _service(config, database_url) as service:
            if not 0 <= report < service.ledger.size():
                raise ReconcileError(f"no ledger entry {report}")
            entry = service.ledger.entry(report)
            event = attest(signing, entry, statement)  # refuses any other kind of entry
            verify(event, entry)
            return service.record_event(event, by), signing
    recorded, signing = _guarded(run)
    emit({"seq": recorded.seq, "report": report, "by": by,
          "key": signing.verifier.encode()}, as_json,
         f"report {report} attested by {by} ({signing.name}) at ledger entry {recorded.seq}")


__all__ = ["licence_app", "supervise_app"]
