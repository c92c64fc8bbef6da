"""`reserve --help` and the command groups load no chain stack, web framework, ORM or domain
module: each command imports what it needs when it runs (issue: a CLI that starts at once)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HEAVY = ("web3", "eth_account", "bitcoinlib", "embit", "fastapi", "uvicorn", "sqlalchemy",
         "sqlmodel", "psycopg", "reserve.demo.story", "reserve.api.app",
         # The domain loads with the command that uses it, so `reserve --help` starts in
         # well under half a second (issue 14): the ledger store and its keys, the typed
         # events, the workflow, the policy engine, reconciliation, Ed25519.
         "reserve.ledger.store", "reserve.ledger.keys", "reserve.events",
         "reserve.transfers.service", "reserve.policy.evaluate", "reserve.reconcile.compute",
         "cryptography.hazmat.primitives.asymmetric.ed25519",
         # The command groups themselves load when one of them is used (reserve.cli.main's
         # LAZY table), and typer's rich help (with rich.markdown) only when help is shown.
         "reserve.cli.bitcoin", "reserve.cli.evm", "reserve.cli.serve", "reserve.cli.ledger",
         "reserve.cli.supervise", "reserve.cli.reconcile", "reserve.cli.statement",
         "reserve.cli.mining", "reserve.cli.demo", "reserve.cli.transparency",
         "reserve.cli.workflow", "reserve.cli.common", "reserve.config",
         "typer.rich_utils", "pydantic")
def _probe(code: str, **options: Any) -> Any:
    """What a fresh interpreter running `code` prints, as JSON (its last line)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, **options)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


PROBE = ("import json, sys; import reserve.cli.main; "
         f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")


def test_the_command_line_loads_no_heavy_stack_until_a_command_runs() -> None:
    assert _probe(PROBE) == []


def test_help_still_lists_every_command_group() -> None:
    done = subprocess.run([sys.executable, "-m", "reserve.cli.main", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for group in ("ledger", "db", "serve", "token", "btc", "reconcile", "evm", "demo",
                  "proposal"):
        assert group in done.stdout, group
    # Each line in full (click would cut a long one short with "..."), wrapped.
    assert "Run the API and dashboard on the configured database (SQLite or" in done.stdout
    commands = done.stdout.split("Commands:")[1]
    assert "..." not in commands


def test_help_renders_without_rich() -> None:
    """The top-level listing is plain click help: rendering it with rich (typer.rich_utils,
    rich.markdown) cost more than everything else `reserve --help` does."""
    probe = ("import contextlib, io, json, sys\n"
             "sys.argv = ['reserve', '--help']\n"
             "from reserve.cli.main import run\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    try:\n        run()\n    except SystemExit as done:\n"
             "        assert done.code in (0, None), done.code\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'rich' "
             "or m == 'typer.rich_utils')))")
    assert _probe(probe) == []


def test_the_lazy_commands_are_listed_with_their_own_help_line() -> None:
    """`reserve --help` shows each lazy command's line from the table; it must say what the
    command's own help says (the group's Typer help, the command's docstring)."""
    import typer

    from reserve.cli.main import LAZY, app

    for name, lazy in LAZY.items():
        command = lazy.load(name)
        assert command.name == name or isinstance(command.name, str)
        own = (command.help or "").strip().splitlines()[0]
        assert own == lazy.help_line, name
    assert isinstance(app, typer.Typer)


def test_a_group_loads_only_its_own_module() -> None:
    probe = ("import json, sys\n"
             "from reserve.cli.main import app\n"
             "from typer.testing import CliRunner\n"
             "result = CliRunner().invoke(app, ['ledger', '--help'])\n"
             "assert result.exit_code == 0, result.output\n"
             "print(json.dumps(sorted(m for m in ('reserve.cli.ledger', 'reserve.cli.bitcoin',"
             " 'reserve.cli.evm', 'reserve.cli.serve') if m in sys.modules)))")
    assert _probe(probe) == ["reserve.cli.ledger"]


def test_ledger_show_reads_entries_without_loading_the_workflow(tmp_path: Path) -> None:
    """`reserve ledger show` opens the ledger without its read models: the workflow, the
    policy engine and the read models are not loaded to print a page of entries."""
    config = tmp_path / "reserve.toml"
    config.write_text('network = "regtest"\n\n[ledger]\n'
                      f'database_url = "sqlite:///{tmp_path}/reserve.sqlite"\n'
                      'origin = "cli.test/ledger"\nkey_path = "keys/ledger.json"\n')
    probe = ("import json, sys\n"
             "from reserve.cli.main import app\n"
             "from typer.testing import CliRunner\n"
             f"result = CliRunner().invoke(app, ['ledger', 'show', '--json', '--config', "
             f"{str(config)!r}])\n"
             "assert result.exit_code == 0, result.output\n"
             "assert json.loads(result.stdout)['size'] == 0\n"
             "print(json.dumps(sorted(m for m in ('reserve.transfers.readmodel', "
             "'reserve.transfers.service', 'reserve.policy.evaluate') if m in sys.modules)))")
    assert _probe(probe, cwd=tmp_path) == []
