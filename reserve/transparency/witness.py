"""A witness: an outside party that cosigns the log's checkpoints only as a consistent
extension of what it saw before, so the operators cannot show two histories.

The witness keeps a folder of its own:

    key.json      its Ed25519 key, sealed by the project keystore (scrypt + AES-GCM)
                  under a passphrase from the environment; 0600
    witness.json  its name and vkey, the log's verifier key, and the last checkpoint it
                  cosigned (size, root, note); 0600, replaced atomically

`cosign` reads a checkpoint (a URL ending in `/checkpoint`, or a file beside its tiles),
verifies the log's signature, rebuilds the root from the published tiles, derives a
consistency proof from its last-seen size from those tiles and checks it against the root
it kept. Only then does it sign (C2SP tlog-cosignature/v1) and remember the new
checkpoint. A smaller tree, a different root at the same size, a tree that does not extend
the one it saw, or a bad signature is refused and nothing changes. The first checkpoint
is trusted on first use (after its signature and tiles check).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from reserve import keystore
from reserve.errors import CheckpointError, KeystoreError, TransparencyError
from reserve.ledger import merkle
from reserve.ledger.checkpoint import NOTE_BYTES_MAX, Checkpoint, VerifierKey, verify_note
from reserve.transparency import cosignature, tiles

KEY_FILE = "key.json"
STATE_FILE = "witness.json"
STATE_FORMAT = "reserve-witness/1"
FETCH_BYTES_MAX = 1 << 20
FETCH_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class Cosigned:
    note: str  # the checkpoint with the witness's cosignature line appended
    line: str
    previous_size: int
    size: int
    timestamp: int


def _write_private(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def init(folder: Path, name: str, log_key: str, passphrase: str, *,
         scrypt_n: int = keystore.SCRYPT_N_DEFAULT) -> cosignature.WitnessKey:
    """Create a witness's folder: a new key, sealed, and an empty state for the log whose
    verifier key is `log_key`. Refuses a folder that already holds a witness."""
    cosignature.check_name(name)
    try:
        log = VerifierKey.parse(log_key)
    except CheckpointError as error:
        raise TransparencyError(f"log key: {error}") from None
    if (folder / KEY_FILE).exists() or (folder / STATE_FILE).exists():
        raise TransparencyError(f"{folder} already holds a witness; refusing to replace its key")
    private = Ed25519PrivateKey.generate()
    key = cosignature.witness_key_of(name, private)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    document = keystore.seal(raw, kind="ed25519", label=f"witness key {name}",
                             public=key.encode(), passphrase=passphrase, scrypt_n=scrypt_n)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    keystore.write(folder / KEY_FILE, document)
    os.chmod(folder / KEY_FILE, 0o600)
    _save(folder, {"format": STATE_FORMAT, "name": name, "witness_key": key.encode(),
                   "log_key": log.encode(), "last": None})
    return key


def _save(folder: Path, state: dict[str, Any]) -> None:
    _write_private(folder / STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n")


def load_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TransparencyError(f"{folder} holds no witness: run `reserve witness init` "
                                "first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TransparencyError(f"{path} is not a witness state: {error}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise TransparencyError(f"{path} is not a {STATE_FORMAT} file")
    return state


def _private_key(folder: Path, state: dict[str, Any], passphrase: str) -> Ed25519PrivateKey:
    document = keystore.read(folder / KEY_FILE)
    if document["kind"] != "ed25519" or document["public"] != state["witness_key"]:
        raise KeystoreError(f"{folder / KEY_FILE} is not the key of witness {state['name']}")
    return Ed25519PrivateKey.from_private_bytes(keystore.unseal(document, passphrase))


def read_source(source: str) -> tuple[str, Any]:
    """(checkpoint note, tile reader) from a URL `.../checkpoint` or a checkpoint file in
    a published folder; the reader fetches `tile/...` beside it."""
    if source.startswith(("http://", "https://")):
        if not source.endswith("/" + tiles.CHECKPOINT_PATH):
            raise TransparencyError(f"{source}: a log URL ends in /checkpoint")
        base = source[:-len(tiles.CHECKPOINT_PATH)]

        def fetch(name: str) -> bytes:
            try:
                answer = httpx.get(base + name, timeout=FETCH_TIMEOUT_SECONDS)
            except httpx.HTTPError as error:
                raise TransparencyError(f"cannot fetch {base + name}: {error}") from None
            if answer.status_code != 200:
                raise TransparencyError(f"{base + name}: HTTP {answer.status_code}")
            if len(answer.content) > FETCH_BYTES_MAX:
                raise TransparencyError(f"{base + name}: more than {FETCH_BYTES_MAX} bytes")
            return answer.content

        note_bytes = fetch(tiles.CHECKPOINT_PATH)
    else:
        path = Path(source)
        if not path.is_file():
            raise TransparencyError(f"{source}: no such checkpoint file")
        folder = path.parent

        def fetch(name: str) -> bytes:
            try:
                return (folder / name).read_bytes()
            except OSError as error:
                raise TransparencyError(f"cannot read {folder / name}: {error}") from None

        note_bytes = path.read_bytes()
    if len(note_bytes) > NOTE_BYTES_MAX:
        raise TransparencyError(f"{source}: a checkpoint is at most {NOTE_BYTES_MAX} bytes")
    try:
        note = note_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise TransparencyError(f"{source}: checkpoint is not UTF-8 text") from None

    def read_tile(tile: tiles.Tile) -> bytes:
        return fetch(tile.path())

    return note, read_tile


def check_extension(previous: tuple[int, bytes] | None, checkpoint: Checkpoint,
                    read_tile: Any) -> None:
    """Refuse (TransparencyError) unless the tiles reproduce the checkpoint's root and
    the checkpoint extends `previous` (size, root) consistently."""
    size, root = checkpoint.tree_size, checkpoint.root_hash
    if size == 0:
        if previous and previous[0] > 0:
            raise TransparencyError(f"refused: size 0 is smaller than the {previous[0]} "
                                    "already seen")
        return
    range_hash = tiles.tile_range_hash(size, read_tile)
    computed = range_hash(0, size)
    if computed != root:
        raise TransparencyError(f"refused: the published tiles give root {computed.hex()}, "
                                f"the checkpoint says {root.hex()}")
    if previous is None or previous[0] == 0:
        return
    old_size, old_root = previous
    if size < old_size:
        raise TransparencyError(f"refused: size {size} is smaller than the {old_size} "
                                "already cosigned")
    if size == old_size:
        if root != old_root:
            raise TransparencyError(f"refused: a second root at size {size} "
                                    f"({root.hex()} after {old_root.hex()}): a fork")
        return
    proof = merkle.consistency_path(old_size, size, range_hash)
    if not merkle.verify_consistency(old_size, size, old_root, root, proof):
        raise TransparencyError(f"refused: size {size} is not a consistent extension of "
                                f"size {old_size} (root {old_root.hex()}): a fork")


def cosign(folder: Path, source: str, passphrase: str, now: datetime) -> Cosigned:
    """Cosign the checkpoint at `source` if it extends what this witness saw; see the
    module doc. The state is updated only after the checks and the signature."""
    state = load_state(folder)
    log_key = VerifierKey.parse(state["log_key"])
    note, read_tile = read_source(source)
    try:
        checkpoint = verify_note(note, log_key)
    except CheckpointError as error:
        raise TransparencyError(f"refused: {error}") from None
    last = state.get("last")
    previous = (int(last["size"]), bytes.fromhex(last["root"])) if last else None
    check_extension(previous, checkpoint, read_tile)
    private = _private_key(folder, state, passphrase)
    timestamp = int(now.timestamp())
    # The cosignature signs the log's own note: other witnesses' lines are not ours to
    # repeat, so the note we hand back carries the log's signature and ours only.
    own = cosignature.note_body(note) + "\n" + "".join(
        line + "\n" for line in cosignature.signature_lines(note)
        if line.split(" ", 2)[1:2] == [log_key.name])
    line = cosignature.cosign(own, state["name"], private, timestamp)
    state["last"] = {"size": checkpoint.tree_size, "root": checkpoint.root_hash.hex(),
                     "note": own, "timestamp": timestamp}
    _save(folder, state)
    return Cosigned(note=own + line + "\n", line=line,
                    previous_size=previous[0] if previous else 0,
                    size=checkpoint.tree_size, timestamp=timestamp)

