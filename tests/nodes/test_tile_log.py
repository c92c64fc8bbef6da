"""The ledger published as a C2SP tlog-tiles tree and read back by an independent reader.

`reserve publish` writes the tree (twice: incrementally), `reserve serve` serves it at
/public/log/ to anyone, and Go's golang.org/x/mod/sumdb/tlog and sumdb/note
(tests/go/tlogread) verify the checkpoint signature, authenticate the tiles, prove every
entry of the bundles and a consistency proof between the two published sizes. One
flipped byte in a hash tile or an entry bundle and the reader refuses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reserve.ledger import Ledger
from tests.support.api_server import free_port
from tests.support.tlog import ROOT, build_reader, flip_byte, read_with_go, reserve, write_config


@pytest.fixture(scope="module")
def tlogread(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_reader(tmp_path_factory.mktemp("go"))


@pytest.fixture()
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RESERVE_DATABASE_URL", raising=False)
    monkeypatch.delenv("RESERVE_CONFIG", raising=False)
    return write_config(tmp_path)


def append_notes(folder: Path, count: int, prefix: str) -> None:
    with Ledger.open(f"sqlite:///{folder}/ledger.sqlite") as ledger:
        ledger.append_many([("ledger.note", "tlog-test", {"text": f"{prefix} {i}"})
                            for i in range(count)])


@pytest.fixture()
def served(config: Path) -> Iterator[str]:
    """`reserve serve --workers 1` on the config's ledger; yields the log's URL prefix."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("RESERVE_DATABASE_URL", "RESERVE_CONFIG")}
    server = subprocess.Popen([sys.executable, "-m", "reserve.cli.main", "serve", "--port",
                               str(port), "--config", str(config), "--log-level", "warning",
                               "--workers", "1"], cwd=ROOT, env=environment,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded wait for uvicorn to listen
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "reserve serve did not start"
            assert server.poll() is None, server.communicate()[1]
            time.sleep(0.2)
        yield f"{base}/public/log"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def test_the_published_tree_is_read_by_go_over_http_and_refused_after_a_flipped_byte(
        config: Path, served: str, tlogread: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = config.parent.parent
    published = folder / "public-log"
    append_notes(folder, 600, "first")
    first = reserve(config, "publish", "--json")
    assert first.returncode == 0, first.stderr
    assert first.json()["size"] == 600 and first.json()["previous_size"] == 0
    # 600 = 2 full level-0 tiles + a partial of 88, and a partial level-1 tile of 2.
    assert (published / "tile/0/001").stat().st_size == 8192
    assert (published / "tile/0/002.p/88").stat().st_size == 88 * 32
    assert (published / "tile/1/000.p/2").stat().st_size == 64
    assert (published / "tile/entries/002.p/88").is_file()
    older = folder / "checkpoint-600"
    older.write_text((published / "checkpoint").read_text())

    append_notes(folder, 250, "second")
    second = reserve(config, "publish", "--json")
    assert second.returncode == 0, second.stderr
    # Only what grew: level-0 tile 2 (now full) and 3 (partial 82), level-1 partial of 3.
    assert (second.json()["previous_size"], second.json()["size"]) == (600, 850)
    assert (second.json()["tiles_written"], second.json()["bundles_written"]) == (3, 2)
    assert (published / "tile/0/002.p/88").is_file()  # an earlier size's partial stays
    assert oct((published / "tile/0/003.p/82").stat().st_mode & 0o777) == "0o644"
    again = reserve(config, "publish", "--json")
    assert (again.json()["tiles_written"], again.json()["bundles_written"]) == (0, 0)

    vkey = reserve(config, "ledger", "public-key", "--json").json()["verifier_key"]
    read = read_with_go(tlogread, served, vkey, "-old", str(older))
    assert read.returncode == 0, read.stderr
    assert '"size":850' in read.stdout and '"records_checked":850' in read.stdout
    assert '"consistent_from":600' in read.stdout

    # Anonymous answers, strict paths, long caching for tiles, none for the checkpoint.
    checkpoint = httpx.get(f"{served}/checkpoint")
    assert checkpoint.status_code == 200
    assert checkpoint.headers["cache-control"] == "no-cache"
    assert checkpoint.headers["content-type"].startswith("text/plain")
    tile = httpx.get(f"{served}/tile/0/001")
    assert tile.content == (published / "tile/0/001").read_bytes()
    assert "immutable" in tile.headers["cache-control"]
    assert tile.headers["content-type"] == "application/octet-stream"
    for bad in ("tile/0/1", "tile/0/x000/001", "tile/0/000.p/256", "tile/0/000.p/0",
                "tile/0/003.p/81", "tile/64/000", "tile/01/000", "tile/entries/009",
                "tile/0/%2e%2e/%2e%2e/config/reserve.toml", "..%2Fledger.sqlite",
                "checkpoint/", "tile/0/000/", "tile", "tile/data/000"):
        answer = httpx.get(f"{served}/{bad}")
        assert answer.status_code == 404, bad

    # One flipped byte in a hash tile, a higher-level tile, or a bundle: refused.
    for name in ("tile/0/001", "tile/1/000.p/3", "tile/entries/000", "tile/0/003.p/82"):
        original = flip_byte(published / name, 40)
        try:
            refused = read_with_go(tlogread, served, vkey, "-old", str(older))
            assert refused.returncode == 1, (name, refused.stdout)
            assert "tlogread:" in refused.stderr
        finally:
            (published / name).write_bytes(original)
    assert read_with_go(tlogread, served, vkey).returncode == 0
    # A checkpoint signed by another key: refused.
    other = "other.example/log+3ee5d5c5+ASbXyXiTdQ0Q2RSB+7anYN4yJ1TcXkf6WKXshwGGuMlB"
    assert read_with_go(tlogread, served, other).returncode == 1

    # A witness reads the served log over HTTP and cosigns; once the cosignature is
    # recorded, the served checkpoint carries it (no new publication needed).
    monkeypatch.setenv("RESERVE_WITNESS_PASSPHRASE", "http-witness-passphrase")
    state = folder / "witness"
    witness_key = reserve(None, "witness", "init", "--name", "w.http.example/1", "--out",
                          str(state), "--log-key", vkey, "--json").json()["witness_key"]
    cosigned = reserve(None, "witness", "cosign", f"{served}/checkpoint", "--state", str(state),
                       "--output", str(folder / "cosigned"), "--json")
    assert cosigned.returncode == 0, cosigned.stderr
    assert cosigned.json()["size"] == 850
    assert reserve(config, "witness", "submit", str(folder / "cosigned"), "--witness-key",
                   witness_key).returncode == 0
    assert cosigned.json()["cosignature"] in httpx.get(f"{served}/checkpoint").text
    assert cosigned.json()["cosignature"] not in (published / "checkpoint").read_text()
    read = read_with_go(tlogread, served, vkey, "-witness", witness_key, "-sample", "50")
    assert read.returncode == 0, read.stderr
    assert '"w.http.example/1":' in read.stdout
    unreachable = reserve(None, "witness", "cosign", "http://127.0.0.1:9/public/log/checkpoint",
                          "--state", str(state))
    assert unreachable.returncode == 2 and "cannot fetch" in unreachable.stderr
    not_a_log = reserve(None, "witness", "cosign", f"{served}/tile/0/000", "--state", str(state))
    assert not_a_log.returncode == 2 and "ends in /checkpoint" in not_a_log.stderr


def test_hash_tiles_only_when_entries_are_not_published(tmp_path: Path, tlogread: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESERVE_DATABASE_URL", raising=False)
    config = write_config(tmp_path, publish_entries=False)
    append_notes(tmp_path, 300, "withheld")
    result = reserve(config, "publish", "--json")
    assert result.returncode == 0, result.stderr
    assert result.json()["bundles_written"] == 0
    assert not (tmp_path / "public-log/tile/entries").exists()
    assert (tmp_path / "public-log/tile/0/000").is_file()
    # Whoever holds an entry still proves it into the signed root with the hash tiles:
    # the Go reader's tree hash check passes, and its record check stops at the bundles.
    vkey = reserve(config, "ledger", "public-key", "--json").json()["verifier_key"]
    read = read_with_go(tlogread, str(tmp_path / "public-log"), vkey)
    assert read.returncode == 1 and "entries/000" in read.stderr, read.stderr


def test_publish_refuses_another_log_a_file_and_a_missing_checkpoint(
        tmp_path: Path, config: Path) -> None:
    folder = config.parent.parent
    append_notes(folder, 20, "ours")
    assert reserve(config, "publish").returncode == 0
    published = folder / "public-log"
    before = {path: path.read_bytes() for path in published.rglob("*") if path.is_file()}

    # Another ledger (its own key) into the same folder: refused, nothing changed.
    other_folder = tmp_path / "other"
    other = write_config(other_folder, origin="tlog.test/other")
    text = other.read_text().replace(f'{other_folder}/public-log', f"{published}")
    other.write_text(text)
    append_notes(other_folder, 30, "theirs")
    refused = reserve(other, "publish")
    assert refused.returncode == 2 and "checkpoint of 'tlog.test/ledger'" in refused.stderr
    # Same origin and another history: refused as well.
    forked = write_config(tmp_path / "fork", origin="tlog.test/ledger")
    forked.write_text(forked.read_text().replace(f"{tmp_path / 'fork'}/public-log",
                                                 str(published)))
    append_notes(tmp_path / "fork", 30, "forked")
    refused = reserve(forked, "publish")
    assert refused.returncode == 2 and "not a checkpoint of this ledger" in refused.stderr
    after = {path: path.read_bytes() for path in published.rglob("*") if path.is_file()}
    assert after == before

    (tmp_path / "a-file").write_text("x")
    assert "is a file" in reserve(config, "publish", "--out", str(tmp_path / "a-file")).stderr
    empty = write_config(tmp_path / "empty")
    missing = reserve(empty, "publish", "--latest")
    assert missing.returncode == 2 and "no checkpoint yet" in missing.stderr
