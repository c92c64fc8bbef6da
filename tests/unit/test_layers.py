"""The layer rule of docs/architecture.md holds, and what the service wires is named.

`lint-imports` checks the contracts in pyproject.toml over the real import graph (under a
second on this code base); the other checks make sure every router and panel module in
the tree is listed explicitly, so none is left out by a typo and none is added silently.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI

from reserve.api import panels, routes
from reserve.api.panels import PanelRegistry

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _modules(package_folder: Path) -> set[str]:
    return {path.stem for path in package_folder.glob("*.py") if path.stem != "__init__"}


def test_import_contracts_are_kept() -> None:
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_test_script_runs_the_import_contracts() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "lint-imports" in script


def test_every_router_module_is_included() -> None:
    app = FastAPI()
    included = routes.include_routers(app)
    assert set(included) == _modules(Path(routes.__file__).parent)
    assert len(included) == len(set(included))
    assert app.state.routers == tuple(included)


def test_every_panel_module_provides_its_panel() -> None:
    registry = PanelRegistry()
    registry.attach_default_providers()
    by_key = {panel.key: panel for panel in registry.panels()}
    assert set(by_key) == _modules(Path(panels.__file__).parent)
    for key, panel in by_key.items():
        assert panel.provider is not None, key
        assert panel.provider.__module__ == f"reserve.api.panels.{key}"


def test_pure_ledger_callers_load_no_database_code() -> None:
    probe = ("import sys\n"
             "from reserve.ledger import merkle, verify\n"
             "from reserve.ledger.entry import Entry\n"
             "import reserve.policy.evaluate, reserve.proposals.proposal\n"
             "loaded = sorted(name for name in ('reserve.ledger.store', 'reserve.db', 'psycopg',"
             " 'sqlalchemy') if name in sys.modules)\n"
             "print(','.join(loaded))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == ""


def test_the_ledger_package_still_names_its_records() -> None:
    import reserve.ledger as ledger_package
    from reserve.ledger.store import Ledger

    assert ledger_package.Ledger is Ledger
    assert sorted(ledger_package.__all__) == ["Checkpoint", "CheckpointSigner", "Entry",
                                              "Ledger", "VerifierKey"]
