"""A real uvicorn server for API and dashboard tests, with one user and token per role.

The server runs in a thread on a free port of 127.0.0.1 and is always stopped. Its clock
is a `FakeClock` the test can advance, so expiry and rate-limit windows are tested
without sleeping. Users: an admin, a viewer, an operator, an auditor, a supervisor, and two
custodians of different vaults (`vault-a`, `vault-b`).

`served_process` instead runs the command a deployment runs, `reserve serve --workers N`,
as a real process tree (a supervisor and its workers), for crash and supervision tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.api import accounts
from reserve.api.app import create_app
from reserve.api.deps import ApiOptions
from reserve.api.store import AccountStore
from reserve.config import PROJECT_ROOT
from reserve.ledger import CheckpointSigner, Ledger

ORIGIN = "test.reserve.example/api-ledger"
BOOTSTRAP_ACTOR = "test-bootstrap"
# name -> (person, role, vaults)
PEOPLE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "admin": ("root-admin", "admin", ()),
    "viewer": ("vic-viewer", "viewer", ()),
    "operator": ("olga-operator", "operator", ()),
    "auditor": ("aldo-auditor", "auditor", ()),
    "custodian": ("cora-custodian", "custodian", ("vault-a",)),
    "custodian_b": ("carl-custodian", "custodian", ("vault-b",)),
    "supervisor": ("sara-supervisor", "supervisor", ()),
}
ROLES = ("viewer", "operator", "custodian", "auditor", "admin", "supervisor")


@dataclass
class FakeClock:
    """Wall clock and monotonic clock under the test's control."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    mono: float = 1000.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wall(self) -> datetime:
        with self.lock:
            return self.now

    def monotonic(self) -> float:
        with self.lock:
            return self.mono

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += timedelta(seconds=seconds)
            self.mono += seconds


@dataclass
class RunningServer:
    base_url: str
    ledger: Ledger
    store: AccountStore
    clock: FakeClock
    tokens: dict[str, str]
    app: Any

    def client(self, who: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)

    def record(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        self.ledger.append_many([(k, BOOTSTRAP_ACTOR, p) for k, p in items],
                                now=self.clock.wall())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed_people(server: RunningServer | ServedProcess) -> None:
    for key, (person, role, vaults) in PEOPLE.items():
        accounts.create_user(server.store, server.record, person=person,
                             name=person.split("-")[0].title(), institution=f"{role} office",
                             roles=[role], vaults=list(vaults), now=server.clock.wall())
        issued, _ = accounts.issue_token(server.store, server.record, person=person, role=role,
                                         expires_in_seconds=30 * 86400, label=f"test {key}",
                                         issued_by=BOOTSTRAP_ACTOR, now=server.clock.wall())
        server.tokens[key] = issued.token


@contextmanager
def running_server(url: str, *, options: ApiOptions | None = None, checkpoint_every: int = 8,
                   signer: CheckpointSigner | None = None,
                   chains: Any = None, public: Any = None) -> Iterator[RunningServer]:
    """Open a ledger at `url`, seed one user per role, serve it; stop everything after.

    `chains(ledger)`, if given, makes the service's chain connections (for transfer steps);
    `public` (reserve.config.PublicSettings) turns the public portal on.
    """
    signer = signer or CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())
    ledger = Ledger.open(url, signer=signer, checkpoint_every=checkpoint_every)
    store = AccountStore.open(url)
    clock = FakeClock()
    app = create_app(ledger, accounts=store, clock=clock.wall, monotonic=clock.monotonic,
                     options=options or ApiOptions(auth_failures_max=10_000),
                     chains=chains(ledger) if chains is not None else None, public=public)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    running = RunningServer(f"http://127.0.0.1:{port}", ledger, store, clock, {}, app)
    seed_people(running)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:  # bounded wait for the socket to listen
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start within 20 s")
            time.sleep(0.02)
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        store.close()
        ledger.close()


# -- a real `reserve serve` process: supervisor and workers ----------------------------------
RESERVE = PROJECT_ROOT / ".venv" / "bin" / "reserve"
PASSPHRASE = "test-passphrase-for-the-served-ledger"  # a throwaway key for a test ledger


@dataclass
class RealClock:
    def wall(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class ServedProcess:
    """`reserve serve --workers N` on a free port, with one user and token per role."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    ledger: Ledger
    store: AccountStore
    clock: RealClock
    tokens: dict[str, str]

    def client(self, who: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)

    def record(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        self.ledger.append_many([(k, BOOTSTRAP_ACTOR, p) for k, p in items],
                                now=self.clock.wall())

    def worker_pids(self) -> list[int]:
        """The supervisor's live worker processes (its children running the app)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = [int(text) for text in children.read_text().split()]
        return [pid for pid in pids if "spawn_main" in _command_line(pid)]

    def kill_group(self) -> None:
        """SIGKILL the supervisor and every worker at once, as a power cut would."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # bounded wait until the group is gone
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def write_config(folder: Path) -> Path:
    """A minimal config whose key and ledger live in `folder`."""
    (folder / "config").mkdir(parents=True, exist_ok=True)
    path = folder / "config" / "reserve.toml"
    path.write_text('network = "regtest"\n[ledger]\ndatabase_url = "sqlite:///ledger.sqlite"\n'
                    f'origin = "{ORIGIN}"\nkey_path = "keys/checkpoint.json"\n'
                    "checkpoint_every = 8\n")
    return path


def serve_environment(url: str) -> dict[str, str]:
    """The environment `reserve` commands of a served test ledger run with."""
    return {**os.environ, "RESERVE_LEDGER_PASSPHRASE": PASSPHRASE, "RESERVE_DATABASE_URL": url}


def reserve_command() -> list[str]:
    return [str(RESERVE)] if RESERVE.exists() else [sys.executable, "-m", "reserve.cli.main"]


@contextmanager
def served_process(folder: Path, *, workers: int = 2, ready_seconds: float = 60,
                   database_url: str | None = None, tokens: dict[str, str] | None = None,
                   log_name: str = "serve.log") -> Iterator[ServedProcess]:
    """Run `reserve serve` as a real process tree on a ledger in `folder` (its SQLite file
    unless `database_url` names another database).

    The tree is its own process group (`kill_group` SIGKILLs all of it). With `tokens`
    (from an earlier run on the same database) no users are seeded again.
    """
    config = write_config(folder)
    url = database_url or f"sqlite:///{folder}/ledger.sqlite"
    port = free_port()
    log_path = folder / log_name
    ledger = Ledger.open(url)
    store = AccountStore.open(url)
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*reserve_command(), "serve", "--config", str(config), "--port", str(port),
         "--workers", str(workers), "--log-level", "warning"], env=serve_environment(url),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    served = ServedProcess(f"http://127.0.0.1:{port}", process, log_path, ledger, store,
                           RealClock(), dict(tokens or {}))
    try:
        if tokens is None:
            seed_people(served)
        wait_serving(served, ready_seconds, workers)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        served.kill_group()  # no orphaned worker outlives its supervisor
        log.close()
        store.close()
        ledger.close()


def wait_serving(served: ServedProcess, seconds: float, workers: int) -> None:
    """Bounded wait until every worker runs and the service answers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise RuntimeError(f"reserve serve exited: {served.log_path.read_text()[-2000:]}")
        try:
            if len(served.worker_pids()) == workers and \
                    httpx.get(served.base_url + "/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"reserve serve not ready in {seconds} s: "
                       f"{served.log_path.read_text()[-2000:]}")
