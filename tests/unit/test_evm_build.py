"""The committed contracts/build must be exactly what the pinned compiler makes of the sources.

Recompiles contracts/src with contracts/compile.js into a temporary folder and compares
byte for byte, so an edited source with a stale build (or a hand-edited build) fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
BUILD = PROJECT / "contracts" / "build"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_committed_build_matches_sources(tmp_path: Path) -> None:
    result = subprocess.run(["node", str(PROJECT / "contracts" / "compile.js"),
                             "--out", str(tmp_path)], capture_output=True, text=True,
                            timeout=240, check=False)
    assert result.returncode == 0, result.stderr
    fresh = sorted(path.name for path in tmp_path.glob("*.json"))
    committed = sorted(path.name for path in BUILD.glob("*.json"))
    assert fresh == committed == ["ReserveGuard.json", "ReserveRegistry.json",
                                  "ReserveToken.json"]
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (BUILD / name).read_bytes(), (
            f"contracts/build/{name} is stale: run scripts/compile-contracts.sh")


def test_build_records_compiler_and_settings() -> None:
    for path in BUILD.glob("*.json"):
        artifact = json.loads(path.read_text())
        assert artifact["compiler"]["version"].startswith("0.8.37+commit.")
        assert artifact["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 200}
        assert artifact["bytecode"].startswith("0x60") and artifact["abi"]
