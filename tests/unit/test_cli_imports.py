"""`reserve --help` and the command groups load no chain stack, web framework, ORM or domain
module: each command imports what it needs when it runs (issue: a CLI that starts at once)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("web3", "eth_account", "bitcoinlib", "embit", "fastapi", "uvicorn", "sqlalchemy",
         "sqlmodel", "psycopg", "reserve.demo.story", "reserve.api.app",
         # The domain loads with the command that uses it, so `reserve --help` starts in
         # well under half a second (issue 14): the ledger store and its keys, the typed
         # events, the workflow, the policy engine, reconciliation, Ed25519.
         "reserve.ledger.store", "reserve.ledger.keys", "reserve.events",
         "reserve.transfers.service", "reserve.policy.evaluate", "reserve.reconcile.compute",
         "cryptography.hazmat.primitives.asymmetric.ed25519")
PROBE = ("import json, sys; import reserve.cli.main; "
         f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")


def test_the_command_line_loads_no_heavy_stack_until_a_command_runs() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout) == []


def test_help_still_lists_every_command_group() -> None:
    done = subprocess.run([sys.executable, "-m", "reserve.cli.main", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for group in ("ledger", "db", "serve", "token", "btc", "reconcile", "evm", "demo",
                  "proposal"):
        assert group in done.stdout, group
