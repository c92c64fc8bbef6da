"""Fixtures for the tile log and witness tests: a config with a `[transparency]` folder,
in-process `reserve` commands, and the independent Go reader (tests/go/tlogread) built
offline against Debian's golang.org/x/mod (scripts/install-go.sh)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GO_SOURCES = Path("/usr/share/gocode")
READER_SOURCE = ROOT / "tests" / "go" / "tlogread"


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def write_config(folder: Path, *, origin: str = "tlog.test/ledger",
                 key_path: Path | None = None, publish_entries: bool = True) -> Path:
    """A regtest config whose ledger, key and published folder live in `folder`."""
    (folder / "config").mkdir(parents=True, exist_ok=True)
    path = folder / "config" / "reserve.toml"
    key = key_path or folder / "keys" / "ledger.json"
    path.write_text('network = "regtest"\n\n[ledger]\n'
                    f'database_url = "sqlite:///{folder}/ledger.sqlite"\n'
                    f'origin = "{origin}"\nkey_path = "{key}"\n'
                    'checkpoint_every = 0\n\n[transparency]\n'
                    f'directory = "{folder}/public-log"\n'
                    f"publish_entries = {'true' if publish_entries else 'false'}\n")
    return path


def reserve(config: Path | None, *args: str) -> Outcome:
    """Run a `reserve` command in-process (with --config when given), as `run()` would:
    a domain error is exit code 2 with its message."""
    from typer.testing import CliRunner

    from reserve.cli.main import app
    from reserve.errors import ReserveError

    extra = ["--config", str(config)] if config is not None else []
    result = CliRunner().invoke(app, [*args, *extra])
    if isinstance(result.exception, ReserveError):
        return Outcome(2, result.stdout, f"error: {result.exception}")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Outcome(result.exit_code, result.stdout, result.stderr)


def build_reader(folder: Path) -> Path:
    """Build tests/go/tlogread offline; fails loudly when Go or x/mod is missing."""
    go = shutil.which("go")
    if go is None or not (GO_SOURCES / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        raise RuntimeError("Go and golang.org/x/mod are needed: bash scripts/install-go.sh")
    binary = folder / "tlogread"
    environment = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GO_SOURCES),
                   "GOPROXY": "off", "GOFLAGS": "", "GOCACHE": str(folder / "go-cache")}
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=READER_SOURCE, env=environment,
                   check=True, timeout=300, capture_output=True)
    return binary


def read_with_go(binary: Path, log: str, vkey: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), "-log", log, "-vkey", vkey, *extra], capture_output=True,
                          text=True, timeout=120, check=False)


def flip_byte(path: Path, offset: int = 0) -> bytes:
    """Flip one bit of `path` at `offset`; returns the original bytes to restore."""
    original = path.read_bytes()
    changed = bytearray(original)
    changed[offset] ^= 0x01
    path.write_bytes(bytes(changed))
    return original
