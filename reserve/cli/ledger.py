"""`reserve ledger ...`: append, show, checkpoint, proofs, export and verify."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from reserve.cli.common import (
    ConfigOption,
    DatabaseOption,
    JsonOption,
    emit,
    fail,
    load_settings,
    open_ledger,
    progress_rows,
)
from reserve.errors import ReserveError

# The ledger's record modules load when a command runs, not for `reserve --help`.
if TYPE_CHECKING:
    from reserve.ledger.verify import Finding, Report

ledger_app = typer.Typer(no_args_is_help=True, help="The append-only ledger.")
proof_app = typer.Typer(no_args_is_help=True, help="Inclusion and consistency proofs.")
ledger_app.add_typer(proof_app, name="proof")


def _register_anchor() -> None:
    # `reserve ledger anchor` lives with the EVM code that posts to ReserveRegistry.
    from reserve.cli.anchor import anchor_command

    ledger_app.command("anchor")(anchor_command)


_register_anchor()


@ledger_app.command("init")
def init(config: str = ConfigOption, database_url: str = DatabaseOption,
         as_json: bool = JsonOption) -> None:
    """Create the ledger database and the encrypted checkpoint key if missing."""
    settings = load_settings(config)
    with open_ledger(settings, database_url) as ledger:
        key = ledger.signer.verifier.encode() if ledger.signer else None
        emit({"database_url": ledger.url, "size": ledger.size(), "verifier_key": key}, as_json,
             f"ledger ready at {ledger.url} ({ledger.size()} entries)\nverifier key: {key}")


@ledger_app.command("append")
def append(kind: str, actor: str = typer.Option(..., "--actor"),
           payload: str = typer.Option("{}", "--payload", help="JSON object."),
           config: str = ConfigOption, database_url: str = DatabaseOption,
           as_json: bool = JsonOption) -> None:
    """Append one entry (payload as a JSON object)."""
    try:
        value = json.loads(payload, parse_float=lambda text: fail(
            f"floats are not accepted in payloads ({text}); use integer base units"))
    except json.JSONDecodeError as error:
        fail(f"payload is not JSON: {error}")
    settings = load_settings(config)
    with open_ledger(settings, database_url) as ledger:
        entry = ledger.append(kind, actor, value)
    emit(entry.to_json(), as_json, f"appended entry {entry.seq} ({entry.kind}) "
                                   f"hash {entry.entry_hash.hex()}")


@ledger_app.command("show")
def show(seq: int = typer.Argument(None), start: int = typer.Option(0, "--start"),
         limit: int = typer.Option(20, "--limit", max=10000), config: str = ConfigOption,
         database_url: str = DatabaseOption, as_json: bool = JsonOption) -> None:
    """Show one entry, or a page of entries."""
    settings = load_settings(config)
    # Only reads entries: no read models (they are neither read nor written here).
    with open_ledger(settings, database_url, with_signer=False, read_models=False) as ledger:
        if seq is not None:
            entry = ledger.entry(seq)
            emit(entry.to_json(), as_json, json.dumps(entry.to_json(), indent=2))
            return
        entries = [e.to_json() for e in ledger.entries(start, start + limit)]
        size = ledger.size()
    lines = [f"{e['seq']:>6}  {e['time']}  {e['kind']:<24} {e['actor']:<20} "
             f"{json.dumps(e['payload'], sort_keys=True)[:80]}" for e in entries]
    emit({"size": size, "entries": entries}, as_json,
         "\n".join(lines + [f"({size} entries in all)"]))


@ledger_app.command("checkpoint")
def checkpoint(config: str = ConfigOption, database_url: str = DatabaseOption,
               as_json: bool = JsonOption) -> None:
    """Sign a checkpoint (C2SP signed note) at the current tree size."""
    settings = load_settings(config)
    with open_ledger(settings, database_url) as ledger:
        note = ledger.checkpoint()
    emit({"note": note}, as_json, note)


@ledger_app.command("public-key")
def public_key(config: str = ConfigOption, as_json: bool = JsonOption) -> None:
    """Print the ledger's verifier key (signed-note format) and PEM public key."""
    from reserve.ledger.keys import load_or_create_signer, public_key_text

    settings = load_settings(config)
    signer = load_or_create_signer(settings.resolve(settings.ledger.key_path),
                                   settings.ledger.origin, settings.ledger_passphrase())
    emit({"verifier_key": signer.verifier.encode()}, as_json, public_key_text(signer))


@proof_app.command("inclusion")
def proof_inclusion(seq: int, size: int = typer.Option(None, "--size"),
                    config: str = ConfigOption, database_url: str = DatabaseOption,
                    as_json: bool = JsonOption) -> None:
    """Inclusion proof of entry SEQ in the tree of SIZE entries (default: all)."""
    from reserve.ledger import merkle

    settings = load_settings(config)
    with open_ledger(settings, database_url, with_signer=False) as ledger:
        tree_size = ledger.size() if size is None else size
        proof = ledger.inclusion_proof(seq, tree_size)
        leaf = ledger.entry(seq).leaf_hash
        root = ledger.root_at(tree_size)
    ok = merkle.verify_inclusion(leaf, seq, tree_size, proof, root)
    data = {"seq": seq, "tree_size": tree_size, "leaf_hash": leaf.hex(), "root_hash": root.hex(),
            "root_hash_base64": base64.b64encode(root).decode(),
            "proof": [p.hex() for p in proof], "verified": ok}
    emit(data, as_json, "\n".join([f"entry {seq} in tree of size {tree_size}",
                                   f"leaf {leaf.hex()}", f"root {root.hex()}",
                                   *[f"  {p.hex()}" for p in proof],
                                   f"verified locally: {ok}"]))


@proof_app.command("consistency")
def proof_consistency(old: int, new: int, config: str = ConfigOption,
                      database_url: str = DatabaseOption, as_json: bool = JsonOption) -> None:
    """Consistency proof between tree sizes OLD and NEW."""
    from reserve.ledger import merkle

    settings = load_settings(config)
    with open_ledger(settings, database_url, with_signer=False) as ledger:
        proof = ledger.consistency_proof(old, new)
        old_root, new_root = ledger.root_at(old), ledger.root_at(new)
    ok = merkle.verify_consistency(old, new, old_root, new_root, proof)
    data = {"old_size": old, "new_size": new, "old_root": old_root.hex(),
            "new_root": new_root.hex(), "proof": [p.hex() for p in proof], "verified": ok}
    emit(data, as_json, "\n".join([f"consistency {old} -> {new}", f"old root {old_root.hex()}",
                                   f"new root {new_root.hex()}",
                                   *[f"  {p.hex()}" for p in proof],
                                   f"verified locally: {ok}"]))


@ledger_app.command("export")
def export(output: Path = typer.Option(None, "--output", "-o"), config: str = ConfigOption,
           database_url: str = DatabaseOption) -> None:
    """Export entries, checkpoints and consistency proofs as JSON lines."""
    from reserve.ledger.verify import export_lines

    settings = load_settings(config)
    with open_ledger(settings, database_url, with_signer=False) as ledger:
        handle = open(output, "w", encoding="utf-8") if output else sys.stdout
        try:
            for line in export_lines(ledger):
                handle.write(line + "\n")
        finally:
            if output:
                handle.close()


def _print_report(report: Report, as_json: bool) -> None:
    if as_json:
        emit(report.to_json(), True)
    elif report.ok:
        emit(None, False, f"OK: {report.entries} entries and {report.checkpoints} checkpoints "
                          "verify")
    else:
        first = report.findings[0]
        lines = [f"FAILED at entry {first.seq}: {first.what}" if first.seq is not None
                 else f"FAILED: {first.what}"]
        lines += [f"  {finding}" for finding in report.findings[1:10]]
        emit(None, False, "\n".join(lines))
    for note in report.notes:
        typer.echo(f"note: {note}", err=True)


@ledger_app.command("verify")
def verify(export_file: Path = typer.Option(None, "--export", help="Verify an export file."),
           key: str = typer.Option(None, "--key", help="Verifier key text or a file holding it."),
           trusted: list[Path] = typer.Option([], "--trusted", help="A checkpoint note you kept."),
           rpc_url: str = typer.Option(None, "--rpc-url", help="EVM RPC: check anchored roots."),
           registry: str = typer.Option(None, "--registry", help="ReserveRegistry address."),
           projections: bool = typer.Option(
               False, "--projections",
               help="Also check the read models and the kind index against a replay."),
           config: str = ConfigOption, database_url: str = DatabaseOption,
           as_json: bool = JsonOption) -> None:
    """Recompute every hash, root, signature and proof; exit 1 on the first bad entry."""
    from reserve.errors import CheckpointError
    from reserve.ledger.checkpoint import VerifierKey
    from reserve.ledger.verify import verify_export, verify_ledger

    verifier = None
    if key:
        try:
            text = Path(key).read_text() if Path(key).is_file() else key
            lines = text.strip().splitlines()
            if not lines:
                raise CheckpointError(f"{key} holds no verifier key")
            verifier = VerifierKey.parse(lines[0])
        except (OSError, UnicodeDecodeError, CheckpointError) as error:
            typer.echo(f"error: --key: {error}", err=True)
            raise typer.Exit(2) from None
    trusted_notes = [path.read_text() for path in trusted]
    if export_file is not None:
        report = verify_export(export_file, verifier, trusted=trusted_notes,
                               progress=progress_rows("verifying export", not as_json))
    else:
        settings = load_settings(config)
        with open_ledger(settings, database_url, with_signer=False) as ledger:
            report = verify_ledger(ledger, verifier, trusted=trusted_notes,
                                   progress=progress_rows("verifying ledger", not as_json))
            if rpc_url:
                report.findings.extend(_anchor_findings(ledger, rpc_url, registry))
            if projections and report.ok:
                report.findings.extend(_projection_findings(ledger))
                if report.ok:
                    report.notes.append("the read models and the kind index equal a full "
                                        "replay of the ledger")
    _print_report(report, as_json)
    if not report.ok:
        raise typer.Exit(1)


def _projection_findings(ledger: Any) -> list[Finding]:
    """Where the read models or the kind index differ from a replay, as findings."""
    from reserve.ledger.verify import Finding
    from reserve.transfers import readmodel

    try:
        found = readmodel.check(ledger)
    except ReserveError as error:
        return [Finding(None, f"read models: {error}")]
    return [Finding(None, item) for item in found]


def _anchor_findings(ledger: Any, rpc_url: str, registry: str | None) -> list[Finding]:
    """Anchors on the EVM registry that disagree with the ledger, as verifier findings."""
    from reserve.cli.anchor import verify_anchors
    from reserve.ledger.verify import Finding

    try:
        found = verify_anchors(ledger, rpc_url, registry)
    except ReserveError as error:
        fail(str(error))
    return [Finding(None, f"anchor {item}") for item in found]
