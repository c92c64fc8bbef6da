"""Benchmark: the HTTP service under a native load generator (wrk), then a ledger audit.

Starts `reserve serve --workers N` (httptools, uvloop) on a free port, on a fresh SQLite
database (WAL + synchronous=FULL) and on a throwaway PostgreSQL database
(synchronous_commit=on), with 1 worker on SQLite and 1 and 4 workers on PostgreSQL. Users,
tokens and the vault's policy are made the operator's way first (`reserve token issue`,
`WorkflowService.register_policy`). Then `wrk` (Debian's package; scripts/setup.sh installs
it) runs each case for `--seconds` with `--connections` connections, driven by
bench/wrk/bench.lua:

- bare GET and bare POST: a trivial FastAPI app (`bare_app` below, sync routes like most
  of the service's) served by uvicorn with the same workers, HTTP parser and loop: the
  floor; and both as async routes (no hop to a thread, as the service's proposal and vote
  routes and its kept answers on SQLite are), printed beside them as a second reference;
- writes: `POST /api/proposals` (an operator's 1,000-sat transfer, each with its own
  reference, built in Lua from a template), then `POST /api/proposals/{digest}/approvals`,
  each a real Ed25519 vote of the vault's custodian on one proposal the first phase
  created, signed here beforehand and loaded by wrk from a Lua table (each sent once);
- reads, on the ledger the writes left: `GET /api/vaults`, a ledger entries page
  (`GET /api/ledger/entries?start=0&limit=50`) and a proposal's detail
  (`GET /api/proposals/{digest}`).

Reads are reported as a ratio to the bare GET, writes to the bare POST. wrk's Lua keeps
the `X-Request-Id` of every 2xx answer. Afterwards the server is stopped and the audit
checks: zero errors (sockets, timeouts, any non-2xx), every case answered, the ledger verifies
(`verify_ledger`), every acknowledged write is in exactly one `api.request` entry with its
domain entry (`proposal.created` / `proposal.approved` naming its digest), and writes
recorded without an acknowledgement are only those in flight when wrk stopped (at most
one per connection). Exit code 0 only when every check passes.

    .venv/bin/python -m bench.api                         # 10 s a case, 50 connections, all
    .venv/bin/python -m bench.api --smoke                 # SQLite, 1 s a case, 4 connections
    .venv/bin/python -m bench.api --backend postgresql --pg-workers 4 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
LUA_SCRIPT = ROOT / "bench" / "wrk" / "bench.lua"
BENCH_VAULT = "bench-vault"
CUSTODIAN = "cora-custodian"  # the test policy's custodian with a TEST approval key
WRK_THREADS_MAX = 2  # the machine's cores; the server needs them too
WARM_UP_SECONDS = 2.0
WRK_TIMEOUT = "30s"  # a queued write is slow, not lost: only a hung one counts as an error

bare_app = FastAPI(title="bare")


@bare_app.get("/api/bare")
def bare_get() -> dict[str, Any]:
    """The read floor: a sync route (run in the thread pool like the service's)."""
    return {"ok": True}


@bare_app.get("/api/bare-async")
async def bare_get_async() -> dict[str, Any]:
    """The read floor on the event loop (no hop to a thread), as the service's kept
    answers on SQLite are served: a second reference beside the floor."""
    return {"ok": True}


@bare_app.post("/api/bare")
def bare_post(body: dict[str, Any]) -> dict[str, Any]:
    """The write floor: a sync route validating and echoing its JSON body."""
    return {"ok": True, "echo": body}


@bare_app.post("/api/bare-async")
async def bare_post_async(body: dict[str, Any]) -> dict[str, Any]:
    """The same on the event loop (no hop to a thread), as the service's proposal and vote
    routes are: shown beside the floor, so a ratio can be read against either."""
    return {"ok": True, "echo": body}


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "read" or "write": compared with the bare GET or the bare POST
    mode: str  # bench.lua's BENCH_MODE
    path: str = "/"
    role: str = ""  # whose token
    body: str = ""
    marker: str = ""


@dataclass
class Outcome:
    """What wrk saw in one case (from bench.lua's done())."""

    case: Case
    counted: int = 0  # 2xx answers of the case
    duration_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    socket_errors: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    acked: list[tuple[str, str]] = field(default_factory=list)  # (request id, digest)

    @property
    def rate(self) -> float:
        return self.counted / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + sum(self.failures.values())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    # The bench's own temp config decides everything; nothing inherited may redirect it.
    return {k: v for k, v in os.environ.items()
            if k not in ("RESERVE_DATABASE_URL", "RESERVE_CONFIG")}


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not on PATH: run scripts/setup.sh (apt-get install wrk)")
    return found


@contextmanager
def serving(command: list[str], port: int, log: Path) -> Iterator[str]:
    """Run a uvicorn-serving subprocess; yield its base URL once /openapi.json answers."""
    with open(log, "w") as handle:
        process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=handle,
                                   stderr=subprocess.STDOUT, text=True,
                                   start_new_session=True)  # its own group: see below
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded wait for the socket to listen
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on port {port} did not start within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown closes the ledger
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # A worker still busy with a request the client gave up on outlives a killed
        # supervisor: end the server's whole process group (only its own processes).
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_config(folder: Path, url: str) -> Path:
    path = folder / "reserve.toml"
    path.write_text('network = "regtest"\n\n[ledger]\n'
                    f'database_url = "{url}"\norigin = "bench.reserve.example/api"\n'
                    f'key_path = "{folder}/ledger-key.json"\ncheckpoint_every = 1000\n\n'
                    '[api]\nauth_failures_max = 1000000\n')
    return path


def issue_cli_token(config: Path, url: str, person: str, role: str, vault: str = "") -> str:
    """`reserve token issue` as the operator bootstraps it (creates the user too)."""
    done = subprocess.run([sys.executable, "-m", "reserve.cli.main", "token", "issue",
                           "--person", person, "--role", role, "--expires-in", "1d",
                           # Issued as the person's own (no second admin to approve it here).
                           "--actor", person,
                           *(["--vault", vault] if vault else []),
                           "--config", str(config), "--database-url", url, "--json"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"reserve token issue failed: {done.stderr}")
    return str(json.loads(done.stdout)["token"])


def prepare(config: Path, url: str) -> dict[str, str]:
    """The vault's policy (before the server opens the ledger) and the two tokens."""
    from reserve.ledger import Ledger
    from reserve.transfers.service import WorkflowService
    from tests.support.api_workflow import OPERATOR, api_policy

    ledger = Ledger.open(url)
    try:
        WorkflowService(ledger).register_policy(api_policy(BENCH_VAULT, CUSTODIAN), "bench")
    finally:
        ledger.close()
    return {"operator": issue_cli_token(config, url, OPERATOR, "operator"),
            "custodian": issue_cli_token(config, url, CUSTODIAN, "custodian",
                                         vault=BENCH_VAULT)}


def proposal_template() -> str:
    """A proposal body for bench.lua's string.format(template, thread, n)."""
    from tests.support.workflow import COLD

    body = json.dumps({"vault": BENCH_VAULT, "asset": "BTC", "fee_max": "20000",
                       "purpose": "bench", "reference": "REFERENCE",
                       "outputs": [{"destination": COLD, "amount": "1000"}]},
                      separators=(",", ":"))
    return body.replace("REFERENCE", "bench-t%d-n%d")


def write_votes(digests: list[str], path: Path) -> int:
    """The custodian's signed approval of each proposal, as bench.lua's request table."""
    from reserve.policy.testkeys import private_key_of
    from reserve.proposals.approval import sign

    key = private_key_of(CUSTODIAN)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("requests = {\n")
        for digest in digests:
            vote = sign(key, bytes.fromhex(digest), "approve", CUSTODIAN).document()
            body = json.dumps(vote, separators=(",", ":"))
            handle.write(f'{{"/api/proposals/{digest}/approvals", [==[{body}]==]}},\n')
        handle.write("}\n")
    return len(digests)


def parse_output(case: Case, text: str) -> Outcome:
    outcome = Outcome(case)
    for line in text.splitlines():
        word, _, rest = line.partition(" ")
        if word == "duration_us":
            outcome.duration_s = int(rest) / 1e6
        elif word == "socket_errors":
            outcome.socket_errors = sum(int(n) for n in rest.split())
        elif word == "latency_us":
            p50, p99, _ = (float(n) for n in rest.split())
            outcome.p50_ms, outcome.p99_ms = p50 / 1000, p99 / 1000
        elif word == "counted":
            outcome.counted += int(rest)
        elif word == "ack":
            request_id, _, digest = rest.partition(" ")
            outcome.acked.append((request_id, digest))
        elif word == "failure":
            count, _, what = rest.partition(" ")
            outcome.failures[what] += int(count)
    return outcome


def run_wrk(base: str, case: Case, token: str, seconds: float, connections: int,
            folder: Path, bodies: Path | None = None) -> Outcome:
    threads = min(WRK_THREADS_MAX, connections)
    out = folder / f"wrk-{case.name.replace(' ', '-').replace('/', '_')}.txt"
    env = {**os.environ, "BENCH_MODE": case.mode, "BENCH_PATH": case.path,
           "BENCH_BODY": case.body, "BENCH_MARKER": case.marker, "BENCH_TOKEN": token,
           "BENCH_THREADS": str(threads), "BENCH_OUT": str(out),
           "BENCH_BODIES": str(bodies or "")}
    done = subprocess.run([wrk_binary(), "-t", str(threads), "-c", str(connections),
                           "-d", f"{max(1, round(seconds))}s", "--timeout", WRK_TIMEOUT,
                           "-s", str(LUA_SCRIPT), base + case.path],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
    return parse_output(case, out.read_text())


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder}/ledger.sqlite"
        return
    from tests.support import postgres

    with postgres.server() as server, postgres.database(server, prefix="reserve_bench") as url:
        yield url


BARE_GET = Case("bare FastAPI GET", "read", "get", "/api/bare")
BARE_POST = Case("bare FastAPI POST", "write", "post", "/api/bare", body='{"label":"bench"}')
BARE_GET_ASYNC = Case("bare FastAPI GET (async route)", "read", "get", "/api/bare-async")
BARE_POST_ASYNC = Case("bare FastAPI POST (async route)", "write", "post", "/api/bare-async",
                       body='{"label":"bench"}')


@dataclass
class Result:
    backend: str
    workers: int
    outcomes: list[Outcome]
    checks: list[tuple[str, bool]]
    ledger_size: int = 0


def run_bare(workers: int, seconds: float, connections: int, folder: Path) -> list[Outcome]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.api:bare_app", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--http", "httptools",
               "--loop", "uvloop", "--log-level", "warning", "--no-access-log"]
    with serving(command, port, folder / "bare.log") as base:
        return [run_wrk(base, case, "", seconds, connections, folder)
                for case in (BARE_GET, BARE_GET_ASYNC, BARE_POST, BARE_POST_ASYNC)]


def run_service(base: str, tokens: dict[str, str], seconds: float, connections: int,
                folder: Path) -> list[Outcome]:
    # Warm-up, not reported: each worker's first workflow request loads the proposal state
    # (bench/growth.py measures that start-up on its own).
    run_wrk(base, Case("warm-up", "read", "get", "/api/vaults", "operator"),
            tokens["operator"], WARM_UP_SECONDS, connections, folder)
    propose = Case("POST /api/proposals", "write", "propose", "/api/proposals", "operator",
                   body=proposal_template(), marker='"digest"')
    proposed = run_wrk(base, propose, tokens["operator"], seconds, connections, folder)
    digests = [digest for _, digest in proposed.acked if digest != "-"]
    votes = folder / "votes.lua"
    write_votes(digests, votes)
    approve = Case("POST /api/proposals/{d}/approvals", "write", "bodies", "/api/proposals",
                   "custodian", marker='"digest"')
    approved = run_wrk(base, approve, tokens["custodian"], seconds, connections, folder,
                       bodies=votes)
    detail = digests[0] if digests else "0" * 64
    reads = [Case("GET /api/vaults", "read", "get", "/api/vaults", "operator"),
             Case("GET /api/ledger/entries (page)", "read", "get",
                  "/api/ledger/entries?start=0&limit=50", "operator"),
             Case("GET /api/proposals/{digest}", "read", "get", f"/api/proposals/{detail}",
                  "operator")]
    return [proposed, approved, *(run_wrk(base, case, tokens[case.role], seconds,
                                          connections, folder) for case in reads)]


def audit(url: str, outcomes: list[Outcome], connections: int) -> tuple[list[tuple[str, bool]], int]:
    """Ledger verifies; each acknowledged write is recorded exactly once with its effect."""
    from reserve.ledger import Ledger
    from reserve.ledger.verify import verify_ledger

    ledger = Ledger.open(url)
    try:
        report = verify_ledger(ledger)
        requests: Counter[str] = Counter()
        effects: dict[str, Counter[str]] = {"proposal.created": Counter(),
                                            "proposal.approved": Counter()}
        for entry in ledger.entries():
            if entry.kind == "api.request":
                requests[str(entry.payload.get("request_id"))] += 1
            elif entry.kind in effects:
                effects[entry.kind][str(entry.payload.get("digest"))] += 1
        size = ledger.size()
    finally:
        ledger.close()
    writes = [outcome for outcome in outcomes if outcome.case.kind == "write"]
    acked = [rid for outcome in writes for rid, _ in outcome.acked]
    proposed = [digest for rid, digest in writes[0].acked]
    approved = [digest for rid, digest in writes[1].acked]
    unacknowledged = sum(requests.values()) - len(acked)
    return [
        ("zero errors (socket, timeout, non-2xx) in every case",
         all(outcome.errors == 0 for outcome in outcomes)),
        ("every case answered", all(outcome.counted > 0 for outcome in outcomes)),
        ("ledger verifies (verify_ledger)", report.ok),
        ("every acknowledged write in exactly one api.request entry",
         len(set(acked)) == len(acked) and all(requests[rid] == 1 for rid in acked)),
        ("every acknowledged proposal in exactly one proposal.created entry",
         all(effects["proposal.created"][digest] == 1 for digest in proposed)),
        ("every acknowledged approval in exactly one proposal.approved entry",
         all(effects["proposal.approved"][digest] == 1 for digest in approved)),
        (f"writes recorded but not acknowledged (in flight when wrk stopped): "
         f"{unacknowledged} <= {2 * connections}", 0 <= unacknowledged <= 2 * connections),
    ], size


def run_backend(backend: str, workers: int, seconds: float, connections: int) -> Result:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-api-")))
        bare = run_bare(workers, seconds, connections, folder)
        url = stack.enter_context(database(backend, folder))
        config = write_config(folder, url)
        tokens = prepare(config, url)
        port = free_port()
        with serving([sys.executable, "-m", "reserve.cli.main", "serve", "--port", str(port),
                      "--workers", str(workers), "--config", str(config),
                      "--database-url", url, "--log-level", "warning"], port,
                     folder / "serve.log") as base:
            service = run_service(base, tokens, seconds, connections, folder)
        checks, size = audit(url, service, connections)
        return Result(backend, workers, [*bare, *service], checks, size)


def report(result: Result, connections: int, seconds: float) -> bool:
    durability = ("WAL + synchronous=FULL" if result.backend == "sqlite"
                  else "synchronous_commit=on")
    print(f"\nAPI benchmark (wrk): {result.backend} ({durability}), {result.workers} "
          f"worker{'s' if result.workers > 1 else ''}, {connections} connections, "
          f"{seconds:g} s a case; ledger after the run: {result.ledger_size:,} entries")
    print(f"{'':<36}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}{'errors':>8}"
          f"{'vs bare':>9}")
    floors = {outcome.case.kind: outcome.rate for outcome in result.outcomes
              if outcome.case in (BARE_GET, BARE_POST)}
    for outcome in result.outcomes:
        floor = floors.get(outcome.case.kind, 0.0)
        ratio = f"{outcome.rate / floor:.2f}x" if floor else "-"
        print(f"{outcome.case.name:<36}{outcome.rate:>10,.0f}{outcome.p50_ms:>10.1f}"
              f"{outcome.p99_ms:>10.1f}{outcome.counted:>10,}{outcome.errors:>8}{ratio:>9}")
    for outcome in result.outcomes:
        for what, count in sorted(outcome.failures.items()):
            print(f"  error x{count} in {outcome.case.name}: {what}")
        if outcome.socket_errors:
            print(f"  {outcome.socket_errors} socket errors in {outcome.case.name}")
    for name, passed in result.checks:
        print(f"check: {name}: {'ok' if passed else 'FAILED'}")
    return all(passed for _, passed in result.checks)


def configurations(backend: str, pg_workers: list[int]) -> list[tuple[str, int]]:
    chosen = [("sqlite", 1)] if backend in ("sqlite", "both") else []
    if backend in ("postgresql", "both"):
        chosen += [("postgresql", workers) for workers in pg_workers]
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="per case")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-workers", default="1,4",
                        help="comma-separated worker counts on PostgreSQL")
    parser.add_argument("--smoke", action="store_true",
                        help="quick: SQLite only, 1 s a case, 4 connections")
    args = parser.parse_args(argv)
    if args.smoke:
        args.backend, args.seconds, args.connections = "sqlite", 1.0, 4
    try:
        pg_workers = [int(part) for part in args.pg_workers.split(",")]
    except ValueError:
        parser.error("--pg-workers is a comma-separated list of worker counts")
    if args.connections < 1 or args.seconds < 1 or not all(1 <= n <= 64 for n in pg_workers):
        parser.error("--connections must be >= 1, --seconds >= 1, workers 1..64")
    wrk_binary()
    passed = True
    for backend, workers in configurations(args.backend, pg_workers):
        result = run_backend(backend, workers, args.seconds, args.connections)
        passed = report(result, args.connections, args.seconds) and passed
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
