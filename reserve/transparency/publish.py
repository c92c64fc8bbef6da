"""Writing the ledger as a C2SP tlog-tiles tree of static files, and recording witnesses'
cosignatures of its checkpoints.

`publish` is incremental: it reads the checkpoint already in the folder, writes only the
tiles (and entry bundles) that the larger tree adds or grows, and replaces the checkpoint
last by an atomic rename, so a mirror or a reader never sees a checkpoint whose tiles are
not there yet. Full tiles never change; partial tiles of earlier sizes stay (the spec
requires them for every size a checkpoint was published at). Level-0 tiles and bundles are
hashed from the entries' bodies; the tiles above are the ledger's stored subtree hashes at
levels 8, 16, ..., read as ranges, never recomputed.

Published files are world-readable (0644, folders 0755): they are meant for any static
host, whatever umask the command runs under.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from reserve.errors import CheckpointError, TransparencyError
from reserve.events.witness import WitnessCosigned
from reserve.ledger import merkle
from reserve.ledger.checkpoint import Checkpoint, verify_note
from reserve.transparency import cosignature, tiles

FILE_MODE = 0o644
FOLDER_MODE = 0o755


@dataclass(frozen=True)
class Published:
    previous_size: int
    size: int
    tiles_written: int
    bundles_written: int
    cosignatures: int

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


def recorded_cosignatures(ledger: Any, checkpoint: Checkpoint) -> list[str]:
    """Signature lines of the witnesses' cosignatures recorded for this checkpoint.

    A cosignature is recorded after the checkpoint it signs, so only the entries from its
    tree size on are read (through the kind index): for the latest checkpoint, the few
    recorded since, not every cosignature of the history."""
    lines = []
    for entry in ledger.entries(checkpoint.tree_size, kinds=[WitnessCosigned.KIND]):
        event = WitnessCosigned.from_payload(entry.payload)
        if event.tree_size == checkpoint.tree_size and \
                event.root_hash == checkpoint.root_hash.hex():
            lines.append(event.signature)
    return lines


def published_note(ledger: Any, note: str) -> str:
    """The log's checkpoint note with the cosignatures recorded for it."""
    return cosignature.with_signatures(
        note, recorded_cosignatures(ledger, cosignature.checkpoint_of(note)))


def _make_folder(folder: Path) -> None:
    """`folder` and its missing parents, each 0755 whatever the umask."""
    if folder.is_dir():
        return
    _make_folder(folder.parent)
    folder.mkdir(exist_ok=True)
    os.chmod(folder, FOLDER_MODE)


def _write_atomically(path: Path, data: bytes) -> None:
    _make_folder(path.parent)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_once(root: Path, tile: tiles.Tile, data: bytes) -> bool:
    """Write a tile file unless it holds these bytes already; refuse other bytes (the
    folder then holds another history than this ledger's)."""
    path = root / tile.path()
    if path.is_file():
        if path.read_bytes() != data:
            raise TransparencyError(f"{tile.path()} in {root} holds other bytes than this "
                                    "ledger's: the folder mirrors another log")
        return False
    _write_atomically(path, data)
    return True


def _previous_size(ledger: Any, root: Path, checkpoint: Checkpoint) -> int:
    """The size of the tree already published in `root` (0 if none), checked to be a
    prefix of this ledger's."""
    path = root / tiles.CHECKPOINT_PATH
    if not path.exists():
        return 0
    try:
        previous = cosignature.checkpoint_of(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, TransparencyError) as error:
        raise TransparencyError(f"{path} is not a checkpoint ({error}): publish into an "
                                "empty folder or this log's own") from None
    if previous.origin != checkpoint.origin:
        raise TransparencyError(f"{path} is the checkpoint of {previous.origin!r}, not of "
                                f"{checkpoint.origin!r}")
    if previous.tree_size > checkpoint.tree_size:
        raise TransparencyError(f"{root} already publishes {previous.tree_size} entries; "
                                f"refusing to go back to {checkpoint.tree_size}")
    if ledger.root_at(previous.tree_size) != previous.root_hash:
        raise TransparencyError(f"{path} (size {previous.tree_size}) is not a checkpoint of "
                                "this ledger's history")
    return int(previous.tree_size)


def _tile_bytes(ledger: Any, tile: tiles.Tile) -> tuple[bytes, list[bytes]]:
    """(tile bytes, the entries' bodies for a level-0 tile, else [])."""
    start = tile.index * tiles.TILE_WIDTH
    if tile.level == 0:
        bodies = [body for _, body, _ in ledger.raw_rows(start, start + tile.width)]
        if len(bodies) != tile.width:
            raise TransparencyError(f"ledger returned {len(bodies)} entries for {tile.path()}")
        return b"".join(merkle.leaf_hash(body) for body in bodies), bodies
    hashes = ledger.subtree_hashes(tiles.TILE_HEIGHT * tile.level, start, start + tile.width)
    return b"".join(hashes), []


def publish(ledger: Any, root: Path, note: str, *, publish_entries: bool = True) -> Published:
    """Write the tree of `note`'s checkpoint (one of this ledger's, signed by its key)
    into `root`; see the module doc. Nothing is written if the checkpoint or the folder
    is refused."""
    key = ledger.verifier_key()
    if key is None:
        raise TransparencyError("this ledger has no checkpoint key yet: sign a checkpoint "
                                "first (reserve ledger checkpoint)")
    try:
        checkpoint = verify_note(note, key)
    except CheckpointError as error:
        raise TransparencyError(f"the checkpoint to publish does not verify: {error}") from None
    if checkpoint.tree_size > ledger.size() or \
            ledger.root_at(checkpoint.tree_size) != checkpoint.root_hash:
        raise TransparencyError(f"the checkpoint at size {checkpoint.tree_size} is not of "
                                "this ledger's history")
    _make_folder(root)
    previous = _previous_size(ledger, root, checkpoint)
    written = bundles = 0
    for tile in tiles.tiles_for_size(checkpoint.tree_size, start_size=previous):
        data, bodies = _tile_bytes(ledger, tile)
        written += _write_once(root, tile, data)
        if bodies and publish_entries:
            bundles += _write_once(root, tiles.bundle_for(tile), tiles.encode_bundle(bodies))
    if publish_entries:  # bundles of earlier tiles, if an earlier run published none
        bundles += _missing_bundles(ledger, root, previous)
    lines = recorded_cosignatures(ledger, checkpoint)
    _write_atomically(root / tiles.CHECKPOINT_PATH,
                      cosignature.with_signatures(note, lines).encode())
    return Published(previous, checkpoint.tree_size, written, bundles, len(lines))


def _missing_bundles(ledger: Any, root: Path, size: int) -> int:
    written = 0
    for tile in tiles.tiles_for_size(size):
        if tile.level != 0:
            break
        bundle = tiles.bundle_for(tile)
        if not (root / bundle.path()).is_file():
            _, bodies = _tile_bytes(ledger, tile)
            written += _write_once(root, bundle, tiles.encode_bundle(bodies))
    return written


def record_cosignature(ledger: Any, note: str, witness: cosignature.WitnessKey, *,
                       actor: str, now: datetime | None = None) -> WitnessCosigned:
    """Check a witness's cosignature on one of this ledger's checkpoints and record it.

    Refused, with nothing written: a note the ledger's key did not sign, a checkpoint the
    ledger did not store, a cosignature that is missing or does not verify, and a second
    cosignature by the same witness for the same size.
    """
    key = ledger.verifier_key()
    if key is None:
        raise TransparencyError("this ledger has signed no checkpoint yet")
    try:
        checkpoint = verify_note(note, key)
    except CheckpointError as error:
        raise TransparencyError(f"refused: {error}") from None
    stored = ledger.checkpoint_note(checkpoint.tree_size)
    if stored is None or cosignature.checkpoint_of(stored).root_hash != checkpoint.root_hash:
        raise TransparencyError(f"refused: the ledger stored no checkpoint at size "
                                f"{checkpoint.tree_size} with that root")
    line, timestamp = cosignature.find_cosignature(note, witness)
    for entry in ledger.entries(checkpoint.tree_size, kinds=[WitnessCosigned.KIND]):
        seen = WitnessCosigned.from_payload(entry.payload)
        if seen.witness_key == witness.encode() and seen.tree_size == checkpoint.tree_size:
            raise TransparencyError(f"refused: {witness.name} already cosigned size "
                                    f"{checkpoint.tree_size} (entry {entry.seq})")
    event = WitnessCosigned(witness_key=witness.encode(), tree_size=checkpoint.tree_size,
                            root_hash=checkpoint.root_hash.hex(), timestamp=timestamp,
                            signature=line)
    ledger.append(event.KIND, actor, event.to_payload(), now=now)
    return event
