"""`reserve publish` (the ledger as a C2SP tile log of static files) and `reserve witness
...` (an outside witness's key, its cosignatures, and recording them). See
docs/transparency-log.md."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from reserve.cli.common import (
    ConfigOption,
    DatabaseOption,
    JsonOption,
    emit,
    fail,
    load_settings,
    open_ledger,
)

witness_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="An outside witness: cosign consistent checkpoints.")
PASSPHRASE_ENV = "RESERVE_WITNESS_PASSPHRASE"  # noqa: S105 (a variable name)
TEXT_BYTES_MAX = 64 * 1024


def _text(value: str, what: str) -> str:
    """`value` itself, or the first line of the file it names."""
    path = Path(value)
    if "+" not in value and not path.is_file():
        fail(f"{what} {value!r} is neither a key (name+hash+key) nor a file")
    if path.is_file():
        if path.stat().st_size > TEXT_BYTES_MAX:
            fail(f"{what} file {path} is too large")
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        if not lines:
            fail(f"{what} file {path} is empty")
        return lines[0].strip()
    return value.strip()


def _passphrase(variable: str) -> str:
    from reserve import keystore

    return keystore.passphrase_from_env(
        variable, prompt="witness key passphrase: " if sys.stdin.isatty() else None)


def publish(out: Path = typer.Option(None, "--out", help="Folder to write (default "
                                     "[transparency] directory, var/public-log)."),
            latest: bool = typer.Option(False, "--latest", help="Publish the latest stored "
                                        "checkpoint instead of signing one at the current "
                                        "size."),
            config: str = ConfigOption, database_url: str = DatabaseOption,
            as_json: bool = JsonOption) -> None:
    """Write the ledger as a C2SP tlog-tiles tree: checkpoint, hash tiles, entry bundles.

    Incremental: only new or grown tiles are written, the checkpoint last (atomically).
    """
    from reserve.transparency.publish import publish as write_tree
    from reserve.transparency.settings import from_config

    settings = load_settings(config)
    chosen = from_config(settings.raw, settings.root)
    folder = out or chosen.directory
    if folder.exists() and not folder.is_dir():
        fail(f"--out {folder} is a file, not a folder")
    with open_ledger(settings, database_url, with_signer=not latest) as ledger:
        note = ledger.latest_checkpoint() if latest else ledger.checkpoint()
        if note is None:
            fail("the ledger has no checkpoint yet: run `reserve ledger checkpoint` or "
                 "publish without --latest")
            return
        result = write_tree(ledger, folder, note, publish_entries=chosen.publish_entries)
    entries = "with entry bundles" if chosen.publish_entries else "hash tiles only"
    emit({**result.to_json(), "out": str(folder), "publish_entries": chosen.publish_entries},
         as_json, f"published {result.size} entries to {folder} ({entries}): "
                  f"{result.tiles_written} tiles and {result.bundles_written} bundles "
                  f"written since size {result.previous_size}; {result.cosignatures} "
                  "cosignatures on the checkpoint")


@witness_app.command("init")
def witness_init(name: str = typer.Option(..., "--name", help="The witness's key name, "
                                          "e.g. witness.lender.example/w1."),
                 out: Path = typer.Option(..., "--out", help="The witness's folder."),
                 log_key: str = typer.Option(..., "--log-key", help="The log's verifier key "
                                             "(reserve ledger public-key), or a file."),
                 as_json: bool = JsonOption) -> None:
    """Create a witness: an Ed25519 key sealed under $RESERVE_WITNESS_PASSPHRASE (0600)."""
    from reserve.transparency.witness import init

    key = init(out, name, _text(log_key, "--log-key"), _passphrase(PASSPHRASE_ENV))
    emit({"witness_key": key.encode(), "state": str(out)}, as_json,
         f"witness {name} ready in {out}\nwitness key: {key.encode()}")


@witness_app.command("cosign")
def witness_cosign(source: str = typer.Argument(..., help="The log's checkpoint: a URL "
                                                "ending in /checkpoint, or a file beside "
                                                "its tiles."),
                   state: Path = typer.Option(..., "--state", help="The witness's folder."),
                   output: Path = typer.Option(None, "--output", "-o",
                                               help="Write the cosigned checkpoint here."),
                   as_json: bool = JsonOption) -> None:
    """Cosign the checkpoint if it consistently extends the last one this witness saw."""
    from reserve.transparency.witness import cosign

    done = cosign(state, source, _passphrase(PASSPHRASE_ENV), datetime.now(UTC))
    if output is not None:
        output.write_text(done.note, encoding="utf-8")
    emit({"size": done.size, "previous_size": done.previous_size, "timestamp": done.timestamp,
          "cosignature": done.line, "note": done.note}, as_json,
         done.note if output is None else
         f"cosigned size {done.size} (after {done.previous_size}); written to {output}")


@witness_app.command("submit")
def witness_submit(note_file: Path = typer.Argument(..., help="The cosigned checkpoint."),
                   witness_key: str = typer.Option(..., "--witness-key",
                                                   help="The witness's vkey, or a file."),
                   actor: str = typer.Option("cli:witness", "--actor"),
                   config: str = ConfigOption, database_url: str = DatabaseOption,
                   as_json: bool = JsonOption) -> None:
    """Verify a witness's cosignature of one of the ledger's checkpoints and record it."""
    from reserve.transparency.cosignature import WitnessKey
    from reserve.transparency.publish import record_cosignature

    if not note_file.is_file():
        fail(f"{note_file}: no such file")
    if note_file.stat().st_size > TEXT_BYTES_MAX:
        fail(f"{note_file} is too large for a checkpoint")
    try:
        note = note_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(f"{note_file} is not UTF-8 text")
    key = WitnessKey.parse(_text(witness_key, "--witness-key"))
    settings = load_settings(config)
    with open_ledger(settings, database_url, with_signer=False) as ledger:
        event = record_cosignature(ledger, note, key, actor=actor)
    emit(event.to_payload(), as_json,
         f"recorded {key.name}'s cosignature of size {event.tree_size}")
