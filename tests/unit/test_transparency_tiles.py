"""C2SP tlog-tiles paths, tile sets, bundles and proofs from tiles; cosignature/v1.

Vectors from the specs (the index 1234067 path, the tree of 70,000 entries, the
cosignature message layout); proofs from tiles checked against the ledger's own RFC 9162
proofs on trees of many sizes (an in-memory ledger stands in for the store).
"""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from reserve.api.routes import public_log as public_log_routes
from reserve.errors import ConfigError, ProofError, TransparencyError
from reserve.ledger import CheckpointSigner, Ledger, merkle
from reserve.ledger.checkpoint import Checkpoint
from reserve.transparency import cosignature, tiles
from reserve.transparency.publish import publish
from reserve.transparency.settings import from_config


def test_index_paths_follow_the_spec() -> None:
    assert tiles.encode_index(1234067) == "x001/x234/067"
    assert tiles.encode_index(5) == "005"
    assert tiles.encode_index(1000) == "x001/000"
    assert tiles.Tile(0, 1234067, 256).path() == "tile/0/x001/x234/067"
    assert tiles.Tile(2, 1, 17).path() == "tile/2/001.p/17"
    assert tiles.Tile(-1, 3, 8).path() == "tile/entries/003.p/8"


@pytest.mark.parametrize("path", ["tile/0/x001/x234/067", "tile/63/000", "tile/entries/001.p/255",
                                  "tile/1/005.p/1"])
def test_spec_paths_parse_back_to_themselves(path: str) -> None:
    tile = tiles.parse_path(path)
    assert tile is not None and tile.path() == path


@pytest.mark.parametrize("path", ["tile/0/1", "tile/0/0001", "tile/00/000", "tile/64/000",
                                  "tile/0/x000/001", "tile/0/000.p/0", "tile/0/000.p/256",
                                  "tile/0/000.p/01", "tile/0/001/", "/tile/0/001",
                                  "tile/data/000", "tile/0/x1/001", "tile/-1/000",
                                  "tile/0/../001", "checkpoint", "tile/0/000.p/"])
def test_anything_else_is_not_a_tile(path: str) -> None:
    assert tiles.parse_path(path) is None


def test_the_tree_of_70000_entries_has_the_tiles_the_spec_lists() -> None:
    found = list(tiles.tiles_for_size(70000))
    level0 = [tile for tile in found if tile.level == 0]
    assert sum(tile.full for tile in level0) == 273
    assert [tile.width for tile in level0 if not tile.full] == [112]
    assert [(tile.level, tile.width) for tile in found if tile.level > 0] == \
        [(1, 256), (1, 17), (2, 1)]
    assert [(tile.level, tile.width) for tile in tiles.tiles_for_size(256)] == [(0, 256), (1, 1)]
    assert list(tiles.tiles_for_size(0)) == []


def test_growing_a_tree_names_only_new_or_grown_tiles() -> None:
    grown = {tile.path() for tile in tiles.tiles_for_size(850, start_size=600)}
    assert grown == {"tile/0/002", "tile/0/003.p/82", "tile/1/000.p/3"}
    assert list(tiles.tiles_for_size(600, start_size=600)) == []
    with pytest.raises(TransparencyError):
        list(tiles.tiles_for_size(5, start_size=6))


def test_bundles_round_trip_and_refuse_bad_bytes() -> None:
    entries = [b"", b"a", b"x" * 300]
    data = tiles.encode_bundle(entries)
    assert data[:2] == b"\x00\x00" and data[2:5] == b"\x00\x01a" and data[5:7] == b"\x01\x2c"
    assert tiles.decode_bundle(data, 3) == entries
    for bad, width in ((data, 2), (data, 4), (data[:-1], 3), (data + b"\x00", 3)):
        with pytest.raises(TransparencyError):
            tiles.decode_bundle(bad, width)
    with pytest.raises(TransparencyError, match="uint16"):
        tiles.encode_bundle([b"x" * 65536])
    with pytest.raises(TransparencyError):
        tiles.encode_bundle([])


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    signer = CheckpointSigner("unit.test/log", Ed25519PrivateKey.generate())
    store = Ledger.open("sqlite:///:memory:", signer=signer)
    store.append_many([("ledger.note", "unit", {"text": str(i)}) for i in range(1100)])
    return store


def _tile_bytes(ledger: Ledger, tile: tiles.Tile) -> bytes:
    start = tile.index * tiles.TILE_WIDTH
    if tile.level == 0:
        return b"".join(entry.leaf_hash for entry in ledger.entries(start, start + tile.width))
    return b"".join(ledger.subtree_hashes(8 * tile.level, start, start + tile.width))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_proofs_from_tiles_equal_the_ledgers_proofs(ledger: Ledger, data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 1100))
    old = data.draw(st.integers(0, size))
    range_hash = tiles.tile_range_hash(size, lambda tile: _tile_bytes(ledger, tile))
    assert range_hash(0, size) == ledger.root_at(size)
    assert merkle.consistency_path(old, size, range_hash) == ledger.consistency_proof(old, size)
    index = data.draw(st.integers(0, size - 1))
    assert merkle.inclusion_path(index, size, range_hash) == ledger.inclusion_proof(index, size)


def test_stored_subtree_ranges_are_the_tree_levels(ledger: Ledger) -> None:
    assert ledger.subtree_hashes(8, 0, 4) == [ledger.root_at(256)] + [
        merkle.root_hash([entry.leaf_hash for entry in ledger.entries(i * 256, i * 256 + 256)])
        for i in (1, 2, 3)]
    assert ledger.subtree_hashes(0, 3, 5) == [ledger.entry(3).leaf_hash, ledger.entry(4).leaf_hash]
    with pytest.raises(ProofError):  # beyond the ledger
        ledger.subtree_hashes(8, 0, 5)


NOTE = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n" \
       "\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4U" \
       "RYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"


def test_a_cosignature_signs_the_spec_message_and_verifies() -> None:
    private = Ed25519PrivateKey.generate()
    key = cosignature.witness_key_of("witness.example.com/w1", private)
    line = cosignature.cosign(NOTE, "witness.example.com/w1", private, 1679315147)
    name, blob = line.removeprefix("\u2014 ").split(" ")
    raw = base64.b64decode(blob)
    assert name == key.name and raw[:4] == key.key_id and len(raw) == 76
    assert int.from_bytes(raw[4:12], "big") == 1679315147
    message = cosignature.signed_message(cosignature.note_body(NOTE), 1679315147)
    assert message.startswith(b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n"
                              b"20852163\n")
    private.public_key().verify(raw[12:], message)
    cosigned = cosignature.with_signatures(NOTE, [line, line])
    assert cosigned.count(line) == 1
    assert cosignature.find_cosignature(cosigned, key) == (line, 1679315147)
    assert cosignature.WitnessKey.parse(key.encode()) == key


def test_forged_cosignatures_are_refused() -> None:
    private = Ed25519PrivateKey.generate()
    key = cosignature.witness_key_of("w.example/1", private)
    line = cosignature.cosign(NOTE, "w.example/1", private, 1700000000)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1  # the timestamp: the signature no longer covers it
    forged = f"\u2014 w.example/1 {base64.b64encode(bytes(raw)).decode()}"
    with pytest.raises(TransparencyError, match="does not verify"):
        cosignature.find_cosignature(NOTE + forged + "\n", key)
    other = cosignature.witness_key_of("w.example/1", Ed25519PrivateKey.generate())
    with pytest.raises(TransparencyError, match="no cosignature"):
        cosignature.find_cosignature(NOTE + line + "\n", other)
    encoded = key.encode().split("+", 2)[2]
    as_note_key = base64.b64encode(b"\x01" + key.public_key).decode()
    for text in ("w", "w+00+AAAA", f"other+{key.key_id.hex()}+{encoded}",
                 f"w.example/1+{key.key_id.hex()}+{as_note_key}"):
        with pytest.raises(TransparencyError):
            cosignature.WitnessKey.parse(text)
    with pytest.raises(TransparencyError):
        cosignature.cosign(NOTE, "two words", private, 1)


def test_a_log_checkpoint_is_not_a_cosignature() -> None:
    signer = CheckpointSigner("unit.test/log", Ed25519PrivateKey.generate())
    note = signer.sign(Checkpoint("unit.test/log", 1, bytes(32)))
    same_name = cosignature.witness_key_of("unit.test/log", Ed25519PrivateKey.generate())
    with pytest.raises(TransparencyError, match="no cosignature"):
        cosignature.find_cosignature(note, same_name)


def test_the_transparency_table_is_checked(tmp_path: Path) -> None:
    chosen = from_config({"transparency": {"directory": "out", "publish_entries": False}},
                         tmp_path)
    assert (chosen.directory, chosen.publish_entries) == (tmp_path / "out", False)
    assert from_config({}, tmp_path).directory == tmp_path / "var/public-log"
    for table, words in (({"publish_entries": "yes"}, "true or false"), ({"dir": "x"}, "unknown"),
                         ({"directory": ""}, "folder path")):
        with pytest.raises(ConfigError, match=words):
            from_config({"transparency": table}, tmp_path)
    with pytest.raises(ConfigError, match="must be a table"):
        from_config({"transparency": 1}, tmp_path)


@pytest.fixture(scope="module")
def public_log(ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    folder = tmp_path_factory.mktemp("public-log")
    publish(ledger, folder, ledger.checkpoint())
    app = FastAPI()
    app.include_router(public_log_routes.router)
    app.state.public_log_dir = folder
    app.state.service = SimpleNamespace(ledger=ledger)
    return TestClient(app)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="tile/entrsx.p0123456789%-_\\\x00é", max_size=40))
def test_any_path_is_a_file_or_404_never_an_error(public_log: TestClient, path: str) -> None:
    answer = public_log.get("/public/log/" + quote(path, safe="/"))
    assert answer.status_code in (200, 404, 405), (path, answer.status_code)
    if answer.status_code == 200:
        assert path == "checkpoint" or tiles.parse_path(path) is not None


def test_served_files_are_the_published_ones(public_log: TestClient) -> None:
    assert public_log.get("/public/log/tile/0/000").headers["cache-control"].endswith("immutable")
    assert len(public_log.get("/public/log/tile/1/000.p/4").content) == 4 * 32
    assert public_log.get("/public/log/tile/0/004.p/76").status_code == 200
    assert public_log.get("/public/log/tile/0/004.p/75").status_code == 404
    assert public_log.get("/public/log/checkpoint").headers["cache-control"] == "no-cache"
