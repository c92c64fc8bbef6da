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


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("-")[0].split("."))


def _satisfies(version: str | None, wanted: str) -> bool:
    """npm's exact pins (anvil's platform packages) and its ^ and ~ ranges (dompurify's
    optional types): enough of semver for what the lock holds."""
    if version is None:
        return False
    if wanted[:1] in "^~":
        have, base = _numbers(version), _numbers(wanted[1:])
        same = 1 if wanted[0] == "^" and base[0] > 0 else 2
        return have[:same] == base[:same] and have >= base
    return version == wanted


def test_lock_records_every_platforms_optional_packages() -> None:
    packages = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    missing = [f"{name}@{version} (wanted by {path})"
               for path, package in packages.items()
               for name, version in package.get("optionalDependencies", {}).items()
               if not _satisfies(packages.get(f"node_modules/{name}", {}).get("version"),
                                 version)]
    assert not missing, f"package-lock.json lacks optional packages: {missing}"


def test_the_version_check_reads_pins_and_ranges() -> None:
    assert _satisfies("2.0.7", "^2.0.7") and _satisfies("2.1.0", "^2.0.7")
    assert not _satisfies("3.0.0", "^2.0.7") and not _satisfies("2.0.6", "^2.0.7")
    assert _satisfies("0.2.5", "~0.2.3") and not _satisfies("0.3.0", "~0.2.3")
    assert _satisfies("1.2.3", "1.2.3") and not _satisfies("1.2.4", "1.2.3")
    assert not _satisfies(None, "^1.0.0")


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
