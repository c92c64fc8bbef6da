"""Benchmark: how the service's reads and writes grow with the ledger (issue 14's table).

For each size (1k, 10k and 100k entries; 1M with --full) it builds a fresh SQLite ledger
(WAL + synchronous=FULL) of realistic workflow entries, quickly: the vault's policy is
registered and the operator's and custodian's tokens issued the real way (WorkflowService,
`reserve token issue`), then cycles of what the API writes are bulk-appended through the
ledger API (`Ledger.append_many`, read models attached, so they are kept in step as in the
service): `api.request` + `proposal.created` (a real proposal document with its own
reference and recomputed digest); then, for three proposals in four, two `api.request` +
`proposal.approved` (real Ed25519 votes of two custodians of two institutions, the small
tier's quorum) and the `proposal.state` moves to approved and releasable the workflow
writes; the fourth is cancelled by its proposer (`api.request` + `proposal.cancelled`).

Then it measures, on a freshly started `reserve serve --workers 1`:

- the first workflow request after start-up (`GET /api/proposals/{digest}`: the worker
  loads the proposal state), and the worker's RSS after it;
- GET /api/vaults, GET /dashboard (overview), POST /api/proposals and
  GET /api/proposals/{digest}: the median of `--repeat` requests, one at a time (one
  request when it takes over 5 s; the dashboard last, since a request the client gave up
  on still occupies the worker);

and as separate processes: `reserve proposal list`, `reserve --help`, and the peak RSS of
`reserve ledger verify --export` on the ledger's export. A request that takes longer than
`--timeout` is reported as "times out". The table ends with the ratio of the largest size's
figure to the smallest's (the issue's target: within 2x at 1M).

    .venv/bin/python -m bench.growth                       # 1k, 10k, 100k
    .venv/bin/python -m bench.growth --full                # and 1M
    .venv/bin/python -m bench.growth --sizes 200,2000 --repeat 2     # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.api import (
    BENCH_VAULT,
    CUSTODIAN,
    ROOT,
    _env,
    free_port,
    issue_cli_token,
    proposal_template,
    serving,
    write_config,
)

SIZES_DEFAULT = (1_000, 10_000, 100_000)
SIZE_FULL = 1_000_000
BATCH_ENTRIES = 4_000
# A reserve's history is spread over time: one cycle every CYCLE_STEP, so a velocity window
# holds a day's approvals, not the history's; a releasable transfer nobody released expires
# after LIFETIME (recorded as the service's refresh would), so the open proposals are the
# live week's. Entries are appended an hour of cycles at a time (BATCH_SPAN).
CYCLE_STEP = timedelta(minutes=10)
LIFETIME = timedelta(days=7)
BATCH_SPAN = timedelta(hours=1)
CANCEL_EVERY = 4  # one proposal in four is cancelled
VOTERS = (CUSTODIAN, "central-bank")  # two institutions: the small tier's quorum
KIB = 1024
SLOW_SECONDS = 5.0  # a figure this slow is taken from one request


@dataclass
class Row:
    """One size's figures; None where the figure was not taken, inf where it timed out."""

    size: int
    build_s: float = 0.0
    figures: dict[str, float | None] = field(default_factory=dict)


# (label, unit, key) in the issue's order
FIGURES = (
    ("GET /api/vaults", "ms", "vaults"),
    ("GET /dashboard (overview)", "ms", "dashboard"),
    ("POST /api/proposals", "ms", "propose"),
    ("GET /api/proposals/{digest}", "ms", "detail"),
    ("first workflow request after start-up", "ms", "first"),
    ("server RSS after the first request", "MiB", "rss"),
    ("`reserve proposal list`", "ms", "cli_list"),
    ("`reserve --help`", "ms", "cli_help"),
    ("`reserve ledger verify --export` peak RSS", "MiB", "verify_rss"),
)


class Cycles:
    """The entries of one propose (and, mostly, approve) cycle as the API writes them."""

    def __init__(self, now: datetime) -> None:
        from reserve.policy.testkeys import private_key_of
        from reserve.proposals.proposal import format_time
        from tests.support.api_workflow import OPERATOR
        from tests.support.workflow import COLD

        self.keys = {custodian: private_key_of(custodian) for custodian in VOTERS}
        self.operator = OPERATOR
        chain_network = self._chain_network()
        self.base = {"action": "transfer", "asset": "BTC", "chain": chain_network[0],
                     "created_at": format_time(now),
                     "expires_at": format_time(now + timedelta(days=7)),
                     "fee_max": "20000", "format": "reserve-proposal/1",
                     "network": chain_network[1],
                     "outputs": [{"amount": "1000", "destination": COLD}],
                     "policy_version": 1, "proposer": OPERATOR, "purpose": "bench growth",
                     "vault": BENCH_VAULT}
        self.token_ids = {"operator": secrets.token_hex(8), "custodian": secrets.token_hex(8)}

    @staticmethod
    def _chain_network() -> tuple[str, str]:
        from tests.support.api_workflow import api_policy

        policy = api_policy(BENCH_VAULT, CUSTODIAN)
        return str(policy.chain), str(policy.network)

    def _request(self, role: str, path: str, summary: dict[str, Any]) -> dict[str, Any]:
        return {"method": "POST", "path": path, "request_id": secrets.token_hex(8),
                "role": role, "token_id": self.token_ids[role], "vault": BENCH_VAULT,
                "summary": summary}

    def _vote(self, custodian: str, digest: str) -> list[tuple[str, str, dict[str, Any]]]:
        from reserve.proposals.approval import sign

        vote = sign(self.keys[custodian], bytes.fromhex(digest), "approve", custodian)
        return [("api.request", custodian, self._request(
                    "custodian", f"/api/proposals/{digest}/approvals",
                    {"digest": digest, "vault": BENCH_VAULT, "decision": "approve"})),
                ("proposal.approved", custodian, {
                    "custodian": custodian, "decision": "approve", "digest": digest,
                    "signature": vote.signature.hex(), "vault": BENCH_VAULT})]

    def _moved(self, digest: str, source: str, target: str,
               reason: str) -> tuple[str, str, dict[str, Any]]:
        return ("proposal.state", "workflow", {"digest": digest, "from": source,
                                                "reason": reason, "to": target,
                                                "vault": BENCH_VAULT})

    def expired(self, digest: str) -> tuple[str, str, dict[str, Any]]:
        return self._moved(digest, "releasable", "expired", "expired unreleased")

    def items(self, number: int, at: datetime | None = None
              ) -> tuple[list[tuple[str, str, dict[str, Any]]], str]:
        """The entries of cycle `number` (created at `at`, default the base time) and its
        proposal's digest: proposed, then approved by two custodians of two institutions
        (quorum met, no delay: releasable), or, one cycle in four, cancelled by its
        proposer."""
        from reserve.proposals.proposal import format_time, from_document

        document = {**self.base, "reference": f"GROWTH-{number:08d}"}
        if at is not None:
            document.update(created_at=format_time(at),
                            expires_at=format_time(at + timedelta(days=7)))
        digest = from_document(document).digest_hex
        items: list[tuple[str, str, dict[str, Any]]] = [
            ("api.request", self.operator, self._request(
                "operator", "/api/proposals", {"action": "transfer", "vault": BENCH_VAULT})),
            ("proposal.created", self.operator, {"action": "transfer", "digest": digest,
                                                 "proposal": document, "vault": BENCH_VAULT})]
        if number % CANCEL_EVERY == CANCEL_EVERY - 1:
            items += [("api.request", self.operator, self._request(
                          "operator", f"/api/proposals/{digest}/cancel",
                          {"digest": digest, "vault": BENCH_VAULT})),
                      ("proposal.cancelled", self.operator, {
                          "digest": digest, "from": "proposed", "reason": "no longer needed",
                          "to": "cancelled", "vault": BENCH_VAULT})]
            return items, digest
        first, second = VOTERS
        items += self._vote(first, digest)
        items += self._vote(second, digest)
        items += [self._moved(digest, "proposed", "approved", f"quorum met: {first}, {second}"),
                  self._moved(digest, "approved", "releasable", "time delay over")]
        return items, digest


def history_steps(size: int) -> int:
    """How many CYCLE_STEPs before now the history of `size` entries starts, so that it
    ends about now (the velocity window and the open proposals are the live week's at every
    size): 7 entries a cycle in the first week, 7.75 after it (a week on, each releasable
    transfer's expiry is recorded too)."""
    week = LIFETIME // CYCLE_STEP
    if size <= 7 * week:
        return size // 7 + 2
    return week + (size - 7 * week) * 4 // 31 + 2


def build(folder: Path, size: int) -> tuple[Path, str, dict[str, str], str]:
    """A ledger of about `size` entries: (config, url, tokens, an open proposal's digest)."""
    from reserve.cli.common import load_settings, open_ledger
    from reserve.transfers.service import WorkflowService
    from tests.support.api_workflow import api_policy

    url = f"sqlite:///{folder}/ledger.sqlite"
    config = write_config(folder, url)
    settings = load_settings(str(config))
    now = datetime.now(UTC).replace(microsecond=0)
    cycles = Cycles(now)
    open_digest = ""
    at = now - CYCLE_STEP * history_steps(size)
    with open_ledger(settings, url) as ledger:  # read models attached, as in the service
        WorkflowService(ledger).register_policy(api_policy(BENCH_VAULT, CUSTODIAN), "bench",
                                                now=at - CYCLE_STEP)
    pending: deque[tuple[datetime, str]] = deque()  # (expiry, digest) of releasable ones
    with open_ledger(settings, url) as ledger:
        number = 0
        batch: list[tuple[str, str, dict[str, Any]]] = []
        batch_start = at
        while ledger.size() + len(batch) < size and at < now:
            while pending and pending[0][0] <= at:
                batch.append(cycles.expired(pending.popleft()[1]))
            items, digest = cycles.items(number, at)
            if number % CANCEL_EVERY != CANCEL_EVERY - 1:
                open_digest = digest  # the latest releasable proposal, for its detail
                pending.append((at + LIFETIME, digest))
            batch += items
            number += 1
            if len(batch) >= BATCH_ENTRIES or at - batch_start >= BATCH_SPAN:
                ledger.append_many(batch, now=at)
                batch, batch_start = [], at + CYCLE_STEP
            at += CYCLE_STEP
        if batch:
            ledger.append_many(batch, now=at - CYCLE_STEP)
    from tests.support.api_workflow import OPERATOR

    tokens = {"operator": issue_cli_token(config, url, OPERATOR, "operator"),
              "custodian": issue_cli_token(config, url, CUSTODIAN, "custodian",
                                           vault=BENCH_VAULT)}
    return config, url, tokens, open_digest


def _timed(call: Callable[[], httpx.Response], timeout_s: float) -> float:
    started = time.perf_counter()
    try:
        response = call()
    except httpx.TimeoutException:
        return float("inf")
    elapsed = time.perf_counter() - started
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: HTTP "
                           f"{response.status_code} {response.text[:200]}")
    return elapsed if elapsed < timeout_s else float("inf")


def _median_ms(call: Callable[[], httpx.Response], repeat: int, timeout_s: float) -> float:
    first = _timed(call, timeout_s)
    if first >= SLOW_SECONDS:
        return first * 1000  # one slow (or timed-out) request is the answer: no need for more
    return statistics.median([first, *(_timed(call, timeout_s) for _ in range(repeat - 1))]) * 1000


def worker_rss_mib(parent: int) -> float:
    """The RSS of `reserve serve`'s worker process (the supervising parent's child)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    total = 0
    for child in children or [str(parent)]:
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / KIB


def _serve_pid(port: int) -> int:
    """The pid of the process listening on `port` that runs `reserve ... serve`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in command and str(port).encode() in command:
            return int(entry.name)
    raise RuntimeError(f"no reserve serve process on port {port}")


def measure_server(row: Row, config: Path, url: str, tokens: dict[str, str], digest: str,
                   repeat: int, timeout_s: float, folder: Path) -> None:
    from reserve.api.deps import COOKIE_NAME

    port = free_port()
    command = [sys.executable, "-m", "reserve.cli.main", "serve", "--port", str(port),
               "--workers", "1", "--config", str(config), "--database-url", url,
               "--log-level", "warning"]
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    body = json.loads(proposal_template().replace("bench-t%d-n%d", "REF"))
    with serving(command, port, folder / "serve.log") as base, \
            httpx.Client(base_url=base, timeout=timeout_s, headers=operator) as client:
        row.figures["first"] = _timed(lambda: client.get(f"/api/proposals/{digest}"),
                                      timeout_s) * 1000
        row.figures["rss"] = worker_rss_mib(_serve_pid(port))
        row.figures["vaults"] = _median_ms(lambda: client.get("/api/vaults"), repeat, timeout_s)
        references = iter(range(10**6))
        row.figures["propose"] = _median_ms(lambda: client.post("/api/proposals", json={
            **body, "reference": f"growth-post-{next(references)}"}), repeat, timeout_s)
        row.figures["detail"] = _median_ms(lambda: client.get(f"/api/proposals/{digest}"),
                                           repeat, timeout_s)
        # Last: a page the client gave up on keeps the one worker busy after the time-out.
        with httpx.Client(base_url=base, timeout=timeout_s,
                          cookies={COOKIE_NAME: tokens["operator"]}) as browser:
            row.figures["dashboard"] = _median_ms(lambda: browser.get("/dashboard"), repeat,
                                                  timeout_s)


def _run_cli(arguments: list[str], timeout_s: float) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one `reserve` process, or inf on time-out."""
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "reserve"), *arguments],
                               cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    started = time.perf_counter()
    deadline = started + timeout_s
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            os.wait4(process.pid, 0)
            return float("inf"), float("inf")
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        error = process.stderr.read().decode()[-500:] if process.stderr else ""
        raise RuntimeError(f"reserve {' '.join(arguments[:3])} failed: {error}")
    return elapsed, usage.ru_maxrss / KIB


def measure_cli(row: Row, config: Path, url: str, timeout_s: float, folder: Path) -> None:
    where = ["--config", str(config), "--database-url", url]
    row.figures["cli_list"] = _run_cli(["proposal", "list", *where], timeout_s)[0] * 1000
    row.figures["cli_help"] = min(_run_cli(["--help"], timeout_s)[0] for _ in range(3)) * 1000
    export = folder / "export.jsonl"
    _run_cli(["ledger", "export", "-o", str(export), *where], timeout_s * 10)
    key = folder / "verifier.txt"
    from reserve.cli.common import load_settings, open_ledger

    with open_ledger(load_settings(str(config)), url, with_signer=False) as ledger:
        verifier = ledger.verifier_key()
    key_option = []
    if verifier is not None:  # none before the first checkpoint (every 1,000 entries)
        key.write_text(verifier.encode())
        key_option = ["--key", str(key)]
    row.figures["verify_rss"] = _run_cli(["ledger", "verify", "--export", str(export),
                                          *key_option], timeout_s * 10)[1]


def run_size(size: int, repeat: int, timeout_s: float) -> Row:
    row = Row(size)
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as name:
        folder = Path(name)
        started = time.perf_counter()
        config, url, tokens, digest = build(folder, size)
        row.build_s = time.perf_counter() - started
        measure_server(row, config, url, tokens, digest, repeat, timeout_s, folder)
        measure_cli(row, config, url, timeout_s, folder)
    return row


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "times out"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value / 1000:,.2f} s" if value >= 1000 else f"{value:,.1f} ms"


def table(rows: list[Row], timeout_s: float) -> str:
    def size_label(size: int) -> str:
        return f"{size // 1_000_000}M" if size >= 1_000_000 and size % 1_000_000 == 0 else (
            f"{size // 1000}k" if size % 1000 == 0 else str(size))

    first, last = rows[0], rows[-1]
    head = ["", *(f"{size_label(row.size)} entries" for row in rows),
            f"{size_label(last.size)}/{size_label(first.size)}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, unit, key in FIGURES:
        cells = [_cell(row.figures.get(key), unit) for row in rows]
        low, high = first.figures.get(key), last.figures.get(key)
        ratio = ("-" if not low or high is None or high == float("inf") or low == float("inf")
                 else f"{high / low:.1f}x")
        lines.append("| " + " | ".join([label, *cells, ratio]) + " |")
    lines.append("| build (bulk append, read models attached) | "
                 + " | ".join(f"{row.build_s:,.1f} s" for row in rows) + " | - |")
    lines.append(f"\n(medians; 'times out' = over {timeout_s:g} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", help="comma-separated entry counts (default 1k,10k,100k)")
    parser.add_argument("--full", action="store_true", help="also 1M entries")
    parser.add_argument("--repeat", type=int, default=5, help="requests per figure")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    args = parser.parse_args(argv)
    try:
        sizes = ([int(part) for part in args.sizes.split(",")] if args.sizes
                 else list(SIZES_DEFAULT))
    except ValueError:
        parser.error("--sizes is a comma-separated list of entry counts")
    if args.full:
        sizes.append(SIZE_FULL)
    if not sizes or any(size < 10 for size in sizes) or args.repeat < 1 or args.timeout <= 0:
        parser.error("sizes must be >= 10 entries, --repeat >= 1, --timeout > 0")
    rows = []
    for size in sorted(set(sizes)):
        row = run_size(size, args.repeat, args.timeout)
        print(f"built {row.size:,} entries in {row.build_s:,.1f} s; measured", flush=True)
        rows.append(row)
    print(f"\nGrowth benchmark: SQLite (WAL + synchronous=FULL), reserve serve --workers 1, "
          f"{args.repeat} requests a figure\n")
    print(table(rows, args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
