"""Benchmark: the HTTP service under concurrent state-changing load, then a ledger audit.

Starts `reserve serve` as a real uvicorn subprocess on a free port, on a fresh SQLite
database (WAL + synchronous=FULL) and/or a throwaway PostgreSQL database, bootstraps an
admin token with `reserve token issue` (the operator's path), and runs `--clients`
concurrent httpx.AsyncClient loops for `--seconds`. Each loop iteration is one
"propose" request followed by one "approve" request on what it created:

- proposals (default when `reserve/api/routes/proposals.py` exists): an operator's
  `POST /api/proposals` (a 1,000-sat transfer to an allowlisted destination of a vault
  whose policy is registered first), then the vault custodian's signed vote
  `POST /api/proposals/{digest}/approvals` (Ed25519, made client-side as
  `reserve-sign approval sign` does);
- tokens (`--workload tokens`, and the fallback): `POST /api/tokens` (issue a viewer
  token) then `POST /api/tokens/{id}/revoke`.

Every one of these requests is a state change recorded in the ledger with its
`api.request` entry and its domain entries, in one batch.

The same client loop is run, in the same run, against a bare FastAPI app (one trivial
POST route, `bare_app` below) served the same way, and throughput is reported as a ratio
to it. Afterwards the server is stopped, the ledger is verified with
`reserve.ledger.verify.verify_ledger`, and every accepted response's `X-Request-Id` must
appear in exactly one `api.request` entry, with one domain entry per accepted request.
Exit code 0 only when there were no errors and every check passed.

    .venv/bin/python -m bench.api                               # 50 clients, 60 s, both
    .venv/bin/python -m bench.api --backend sqlite --clients 3 --seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
BENCH_PERSON = "bench-viewer"
ADMIN_PERSON = "bench-admin"
BENCH_VAULT = "bench-vault"
KEEPALIVE_SECONDS = 2.0  # under uvicorn's default timeout_keep_alive of 5 s
CUSTODIAN = "cora-custodian"  # the test policy's custodian with a TEST approval key

bare_app = FastAPI(title="bare")


@bare_app.post("/api/bare")
def bare(body: dict[str, Any]) -> dict[str, Any]:
    """The floor: a sync route (run in the thread pool like the service's) echoing its input."""
    return {"ok": True, "echo": body}


@dataclass
class Tally:
    """What one load phase saw, across all clients."""

    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    accepted: dict[str, list[str]] = field(default_factory=dict)  # op -> request ids
    elapsed: float = 0.0

    def ok(self, op: str, response: httpx.Response, seconds: float) -> None:
        self.latencies.append(seconds)
        self.accepted.setdefault(op, []).append(response.headers.get("x-request-id", ""))

    @property
    def requests(self) -> int:
        return sum(len(ids) for ids in self.accepted.values())

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    # The bench's own temp config decides everything; nothing inherited may redirect it.
    return {k: v for k, v in os.environ.items()
            if k not in ("RESERVE_DATABASE_URL", "RESERVE_CONFIG")}


@contextmanager
def serving(command: list[str], port: int) -> Iterator[str]:
    """Run a uvicorn-serving subprocess; yield its base URL once /openapi.json answers."""
    process = subprocess.Popen(command, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # bounded wait for the socket to listen
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stderr.read() if process.stderr else ''}")
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


def write_config(folder: Path, url: str) -> Path:
    path = folder / "reserve.toml"
    path.write_text('network = "regtest"\n\n[ledger]\n'
                    f'database_url = "{url}"\norigin = "bench.reserve.example/api"\n'
                    f'key_path = "{folder}/ledger-key.json"\ncheckpoint_every = 1000\n\n'
                    '[api]\nauth_failures_max = 1000000\n')
    return path


def issue_cli_token(config: Path, url: str, person: str, role: str, vault: str = "") -> str:
    """`reserve token issue` as the operator bootstraps it (creates the user too)."""
    import json

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


async def _timed(client: httpx.AsyncClient, tally: Tally, op: str, path: str,
                 body: dict[str, Any] | None) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.post(path, json=body)
    except httpx.HTTPError as error:
        tally.errors[f"{op}: {type(error).__name__}"] += 1
        return None
    if response.status_code >= 400:
        tally.errors[f"{op}: HTTP {response.status_code} {response.text[:120]}"] += 1
        return None
    tally.ok(op, response, time.perf_counter() - started)
    return response


Clients = dict[str, httpx.AsyncClient]  # role -> a client sending that role's token


async def tokens_iteration(clients: Clients, tally: Tally, tag: str) -> None:
    """Propose-like (issue a token) then approve-like (revoke it): two recorded changes."""
    client = clients["admin"]
    issued = await _timed(client, tally, "first", "/api/tokens",
                          {"person": BENCH_PERSON, "role": "viewer",
                           "expires_in_seconds": 3600, "label": tag})
    if issued is not None:
        await _timed(client, tally, "second", f"/api/tokens/{issued.json()['token_id']}/revoke",
                     None)


async def proposals_iteration(clients: Clients, tally: Tally, tag: str) -> None:
    """The operator proposes; the custodian uploads a signed approval of that proposal."""
    from reserve.policy.testkeys import private_key_of
    from reserve.proposals.approval import sign
    from tests.support.workflow import COLD

    created = await _timed(clients["operator"], tally, "first", "/api/proposals", {
        "vault": BENCH_VAULT, "asset": "BTC", "fee_max": "20000", "purpose": "bench",
        "reference": tag, "outputs": [{"destination": COLD, "amount": "1000"}]})
    if created is None:
        return
    digest = created.json()["digest"]
    vote = sign(private_key_of(CUSTODIAN), bytes.fromhex(digest), "approve", CUSTODIAN)
    await _timed(clients["custodian"], tally, "second", f"/api/proposals/{digest}/approvals",
                 vote.document())


async def bare_iteration(clients: Clients, tally: Tally, tag: str) -> None:
    """The same two-POST shape against the trivial route."""
    for op in ("first", "second"):
        await _timed(clients["anonymous"], tally, op, "/api/bare", {"label": tag})


# name -> (endpoints, iteration, domain entry kinds of the first and second request)
WORKLOADS: dict[str, tuple[str, Any, tuple[str, str]]] = {
    "proposals": ("POST /api/proposals, POST /api/proposals/{digest}/approvals",
                  proposals_iteration, ("proposal.created", "proposal.approved")),
    "tokens": ("POST /api/tokens, POST /api/tokens/{id}/revoke", tokens_iteration,
               ("auth.token_issued", "auth.token_revoked")),
    "bare": ("POST /api/bare (x2)", bare_iteration, ("", "")),
}


async def load(base: str, tokens: dict[str, str], workload: str, clients: int,
               seconds: float) -> Tally:
    """`clients` concurrent loops of `workload` for `seconds` against `base`."""
    tally = Tally()
    iteration = WORKLOADS[workload][1]
    # Idle connections are dropped by the client before uvicorn's 5 s keep-alive timeout
    # does it: otherwise a request sent on a connection the server is closing at that
    # moment fails with ReadError (a race of the test client, not a service error).
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients,
                          keepalive_expiry=KEEPALIVE_SECONDS)
    async with AsyncExitStack() as stack:
        by_role = {role: await stack.enter_async_context(httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=60, limits=limits)) for role, token in tokens.items()}
        started = time.perf_counter()
        deadline = started + seconds

        async def one(number: int) -> None:
            count = 0
            while time.perf_counter() < deadline:
                await iteration(by_role, tally, f"bench-c{number}-n{count}")
                count += 1

        await asyncio.gather(*(one(n) for n in range(clients)))
        tally.elapsed = time.perf_counter() - started
    return tally


def pick_workload(chosen: str) -> str:
    """`auto`: proposals when their routes exist in this tree, else tokens."""
    if chosen != "auto":
        return chosen
    return "proposals" if importlib.util.find_spec("reserve.api.routes.proposals") else "tokens"


def prepare(workload: str, config: Path, url: str) -> dict[str, str]:
    """Users, tokens (`reserve token issue`) and, for proposals, the vault's policy."""
    if workload == "tokens":
        issue_cli_token(config, url, BENCH_PERSON, "viewer")  # the user the load issues for
        return {"admin": issue_cli_token(config, url, ADMIN_PERSON, "admin")}
    from reserve.ledger import Ledger
    from reserve.transfers.service import WorkflowService
    from tests.support.api_workflow import OPERATOR, api_policy

    ledger = Ledger.open(url)  # before the server opens it: one writer at a time
    try:
        WorkflowService(ledger).register_policy(api_policy(BENCH_VAULT, CUSTODIAN), "bench")
    finally:
        ledger.close()
    return {"operator": issue_cli_token(config, url, OPERATOR, "operator"),
            "custodian": issue_cli_token(config, url, CUSTODIAN, "custodian",
                                         vault=BENCH_VAULT)}


def audit(url: str, tally: Tally, workload: str) -> list[tuple[str, bool]]:
    """Ledger verifies; each accepted request id in exactly one api.request; domain counts."""
    from reserve.ledger import Ledger
    from reserve.ledger.verify import verify_ledger

    ledger = Ledger.open(url)
    try:
        report = verify_ledger(ledger)
        seen: Counter[str] = Counter()
        domain: Counter[str] = Counter()
        for entry in ledger.entries():
            if entry.kind == "api.request":
                seen[str(entry.payload.get("request_id"))] += 1
            else:
                domain[entry.kind] += 1
    finally:
        ledger.close()
    accepted = [rid for ids in tally.accepted.values() for rid in ids]
    first, second = WORKLOADS[workload][2]
    bootstrap = 2 if workload == "tokens" else 0  # the CLI's own issuances
    return [
        ("ledger verifies (verify_ledger)", report.ok),
        ("every accepted request in the ledger exactly once",
         all(seen[rid] == 1 for rid in accepted) and len(set(accepted)) == len(accepted)),
        ("no api.request entry without an accepted response", sum(seen.values()) == len(accepted)),
        (f"{first} entries = accepted first requests",
         domain[first] == len(tally.accepted.get("first", [])) + bootstrap),
        (f"{second} entries = accepted second requests",
         domain[second] == len(tally.accepted.get("second", []))),
    ]


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder}/ledger.sqlite"
        return
    from tests.support import postgres

    with postgres.server() as server, postgres.database(server, prefix="reserve_bench") as url:
        yield url


@dataclass(frozen=True)
class Result:
    backend: str
    workload: str
    service: Tally
    bare: Tally
    checks: list[tuple[str, bool]]


def run_backend(backend: str, clients: int, seconds: float, workload: str) -> Result:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-api-")))
        url = stack.enter_context(database(backend, folder))
        config = write_config(folder, url)
        tokens = prepare(workload, config, url)
        port = free_port()
        with serving([sys.executable, "-m", "reserve.cli.main", "serve", "--port", str(port),
                      "--config", str(config), "--database-url", url,
                      "--log-level", "warning"], port) as base:
            service = asyncio.run(load(base, tokens, workload, clients, seconds))
        bare_port = free_port()
        with serving([sys.executable, "-m", "uvicorn", "bench.api:bare_app", "--host",
                      "127.0.0.1", "--port", str(bare_port), "--log-level", "warning",
                      "--no-access-log"], bare_port) as base:
            bare_tally = asyncio.run(load(base, {"anonymous": ""}, "bare", clients, seconds))
        checks = [("zero errors", not service.errors and not bare_tally.errors),
                  *audit(url, service, workload)]
        return Result(backend, workload, service, bare_tally, checks)


def _row(label: str, tally: Tally) -> str:
    rate = tally.requests / tally.elapsed if tally.elapsed else 0.0
    return (f"{label:<34}{rate:>10,.0f}{tally.percentile(0.5) * 1000:>11.1f}"
            f"{tally.percentile(0.99) * 1000:>11.1f}{tally.requests:>10,}"
            f"{sum(tally.errors.values()):>8}")


def report(result: Result, clients: int, seconds: float) -> bool:
    durability = ("WAL + synchronous=FULL" if result.backend == "sqlite"
                  else "synchronous_commit=on")
    print(f"\nAPI benchmark: {result.backend} ({durability}), {clients} clients, {seconds:g} s, "
          f"one uvicorn worker each")
    print(f"endpoints exercised: {WORKLOADS[result.workload][0]}")
    print(f"{'':<34}{'req/s':>10}{'p50 ms':>11}{'p99 ms':>11}{'requests':>10}{'errors':>8}")
    print(_row(f"reserve serve ({result.workload})", result.service))
    print(_row("bare FastAPI route", result.bare))
    service_rate = result.service.requests / max(result.service.elapsed, 1e-9)
    bare_rate = result.bare.requests / max(result.bare.elapsed, 1e-9)
    print(f"ratio to bare FastAPI: {service_rate / bare_rate if bare_rate else 0:.2f}x")
    for name, count in sorted(result.service.errors.items()) + sorted(result.bare.errors.items()):
        print(f"  error x{count}: {name}")
    for name, passed in result.checks:
        print(f"check: {name}: {'ok' if passed else 'FAILED'}")
    return all(passed for _, passed in result.checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workload", choices=("auto", "proposals", "tokens"), default="auto",
                        help="auto: proposals when their routes exist, else tokens")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients must be >= 1 and --seconds > 0")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    passed = True
    for backend in backends:
        result = run_backend(backend, args.clients, args.seconds, pick_workload(args.workload))
        passed = report(result, args.clients, args.seconds) and passed
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
