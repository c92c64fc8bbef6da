"""The committed npm lock is complete, so `npm ci` (what scripts/setup.sh runs) installs it
on any platform and never rewrites it: set-up leaves `git status` clean.

anvil ships one binary package per platform as optional dependencies; a lock that records
only this machine's package makes `npm ci` refuse it and `npm install` rewrite it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_lock_records_every_platforms_optional_packages() -> None:
    packages = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    missing = [f"{name}@{version} (wanted by {path})"
               for path, package in packages.items()
               for name, version in package.get("optionalDependencies", {}).items()
               if packages.get(f"node_modules/{name}", {}).get("version") != version]
    assert not missing, f"package-lock.json lacks optional packages: {missing}"


def test_npm_ci_accepts_the_committed_lock_and_leaves_it_unchanged(tmp_path: Path) -> None:
    # A dry run offline: npm checks the lock against package.json and plans the install
    # without fetching anything or writing node_modules.
    npm = shutil.which("npm")
    assert npm is not None, "npm is not on PATH: run scripts/setup.sh"
    for name in ("package.json", "package-lock.json", ".npmrc"):
        shutil.copy(ROOT / name, tmp_path / name)
    result = subprocess.run([npm, "ci", "--dry-run", "--offline", "--ignore-scripts",
                             "--no-audit", "--no-fund", "--loglevel=error"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "package-lock.json").read_bytes() == (ROOT / "package-lock.json").read_bytes()
    assert not (tmp_path / "node_modules").exists()


def test_setup_installs_node_tools_with_npm_ci() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    commands = [line.strip() for line in setup.splitlines()
                if line.strip().startswith("npm ")]
    assert commands and all(line.startswith("npm ci ") for line in commands), commands
