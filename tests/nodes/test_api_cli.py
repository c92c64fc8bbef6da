"""`reserve token issue|list|revoke` and `reserve serve`, as an operator runs them.

The bootstrap story: on a fresh database the first admin token comes from the CLI; the
server started with `reserve serve` accepts it; revoking it from the CLI shuts it out at
once; the ledger records issuance and revocation without the token itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.api_server import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("RESERVE_DATABASE_URL", raising=False)
    monkeypatch.delenv("RESERVE_CONFIG", raising=False)
    folder = tmp_path / "config"
    folder.mkdir()
    path = folder / "reserve.toml"
    path.write_text('network = "regtest"\n\n[ledger]\n'
                    f'database_url = "sqlite:///{tmp_path}/reserve.sqlite"\n'
                    'origin = "cli.test/ledger"\nkey_path = "var/keys/ledger.json"\n'
                    'checkpoint_every = 4\n\n[api]\nauth_failures_max = 3\n')
    return path


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def reserve(config: Path, *args: str) -> Outcome:
    """Run a `reserve` command in-process (the CLI's imports take seconds per process)."""
    from typer.testing import CliRunner

    from reserve.cli.main import app

    result = CliRunner().invoke(app, [*args, "--config", str(config)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return Outcome(2, result.stdout, str(result.exception))
    return Outcome(result.exit_code, result.stdout, result.stderr)


def test_bootstrap_an_admin_then_serve_and_revoke(config_file: Path) -> None:
    issued = reserve(config_file, "token", "issue", "--person", "first-admin", "--role", "admin",
                     "--name", "First Admin", "--expires-in", "2h", "--json")
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)["token"]
    token_id = json.loads(issued.stdout)["token_id"]
    assert "created user first-admin" in issued.stderr

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RESERVE_DATABASE_URL",
                                                           "RESERVE_CONFIG")}
    server = subprocess.Popen([sys.executable, "-m", "reserve.cli.main", "serve", "--port",
                               str(port), "--config", str(config_file), "--log-level",
                               "warning", "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
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
        headers = {"Authorization": f"Bearer {token}"}
        me = httpx.get(f"{base}/api/me", headers=headers).json()
        assert me == {"person": "first-admin", "name": "First Admin", "institution": "",
                      "role": "admin", "vaults": [], "token_id": token_id}
        assert httpx.post(f"{base}/api/ledger/checkpoints", headers=headers).status_code == 201

        listed = reserve(config_file, "token", "list", "--json")
        assert [t["status"] for t in json.loads(listed.stdout)["tokens"]] == ["active"]
        revoked = reserve(config_file, "token", "revoke", token_id)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(f"{base}/api/me", headers=headers).status_code == 401
        # [api] auth_failures_max = 3 from the config file is in force.
        codes = [httpx.get(f"{base}/api/me", headers=headers).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
    finally:
        server.terminate()
        server.wait(timeout=30)

    shown = reserve(config_file, "ledger", "show", "--json")
    entries = json.loads(shown.stdout)["entries"]
    kinds = [entry["kind"] for entry in entries]
    assert kinds[:2] == ["auth.user_changed", "auth.token_issued"]
    assert "auth.token_revoked" in kinds and "api.request" in kinds
    assert token not in shown.stdout
    assert reserve(config_file, "token", "revoke", token_id).returncode == 2
    assert reserve(config_file, "token", "issue", "--person", "x", "--role", "admin",
                   "--expires-in", "soon").returncode == 2


def test_a_privileged_token_for_someone_else_needs_a_second_admin(config_file: Path) -> None:
    """One admin alone cannot mint an operator's (or a third admin's) token from the host
    either: it waits as a grant until a different admin approves."""
    assert reserve(config_file, "token", "issue", "--person", "ada-admin", "--role", "admin",
                   "--actor", "ada-admin").returncode == 0
    # The first two admins are made alone (until two exist, nobody could approve); a third
    # admin's token, like any privileged token for someone else, waits for a second admin.
    assert "token for bo-admin" in reserve(config_file, "token", "issue", "--person",
                                           "bo-admin", "--role", "admin", "--actor",
                                           "ada-admin").stdout
    assert reserve(config_file, "token", "issue", "--person", "cy-admin", "--role", "admin",
                   "--actor", "ada-admin").stdout.startswith("grant ")
    asked = reserve(config_file, "token", "issue", "--person", "treasury-ops", "--role",
                    "operator", "--actor", "ada-admin", "--json")
    assert asked.returncode == 0, asked.stderr
    grant = json.loads(asked.stdout)
    assert "token" not in grant and grant["requested_by"] == "ada-admin"
    listed = json.loads(reserve(config_file, "token", "grants", "--json").stdout)["grants"]
    assert sorted(g["person"] for g in listed) == ["cy-admin", "treasury-ops"]

    # The requester may not approve it, nor may someone who is no admin; nothing is issued.
    own = reserve(config_file, "token", "approve", grant["grant_id"], "--actor", "ada-admin")
    assert own.returncode == 2 and "another admin must approve it" in own.stderr
    stranger = reserve(config_file, "token", "approve", grant["grant_id"], "--actor", "mallory")
    assert stranger.returncode == 2 and "'mallory' is not an admin" in stranger.stderr
    assert json.loads(reserve(config_file, "token", "list", "--person", "treasury-ops",
                              "--json").stdout)["tokens"] == []

    # Another admin approves: the token is issued, and the ledger names both.
    approved = reserve(config_file, "token", "approve", grant["grant_id"], "--actor",
                       "bo-admin", "--json")
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout)["token"].startswith("srl_")
    again = reserve(config_file, "token", "approve", grant["grant_id"], "--actor", "bo-admin")
    assert again.returncode == 2 and "already approved" in again.stderr
    shown = json.loads(reserve(config_file, "ledger", "show", "--json").stdout)["entries"]
    issued = [e for e in shown if e["kind"] == "auth.token_issued"
              and e["payload"]["person"] == "treasury-ops"]
    assert len(issued) == 1
    assert issued[0]["payload"]["requested_by"] == "ada-admin"
    assert issued[0]["payload"]["approved_by"] == "bo-admin"
    assert reserve(config_file, "token", "reject", "zz").returncode == 2


def test_a_supervisor_token_is_issued_like_any_privileged_one(config_file: Path) -> None:
    """`reserve token issue --role supervisor`: a grant a second admin approves."""
    for admin in ("ada-admin", "bo-admin"):
        assert reserve(config_file, "token", "issue", "--person", admin, "--role", "admin",
                       "--actor", admin).returncode == 0
    asked = reserve(config_file, "token", "issue", "--person", "vara-supervisor", "--role",
                    "supervisor", "--institution", "Virtual Assets Regulatory Authority",
                    "--actor", "ada-admin", "--json")
    assert asked.returncode == 0, asked.stderr
    grant = json.loads(asked.stdout)["grant_id"]
    approved = reserve(config_file, "token", "approve", grant, "--actor", "bo-admin", "--json")
    assert approved.returncode == 0, approved.stderr
    [token] = json.loads(reserve(config_file, "token", "list", "--person", "vara-supervisor",
                                 "--json").stdout)["tokens"]
    assert token["role"] == "supervisor"
