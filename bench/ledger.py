"""Ledger benchmark: append, verify, proofs and time to integrate, against floors and a peer.

Why it exists: the ledger's claims ("appends are durable", "proofs are O(log n)", "the
verifier keeps up") need figures measured on the machine at hand, each next to what the
hardware allows (a floor) and to a public Merkle-log library doing the same job (pymerkle's
SqliteTree, the peer). Every figure comes from one run, on SQLite in a temporary folder,
at the ledger's production durability: WAL journal with `synchronous=FULL` (the floor and
the peer are set the same way, so every commit is an fsync for all three).

    .venv/bin/python -m bench.ledger [--entries N] [--big N] [--rounds N] [--quick]
    .venv/bin/python -m bench.ledger --backend postgresql [--entries N] [--rounds N] [--quick]

Figures (see docs/benchmarks.md, "Ledger benchmark"):
- append: entries/s over N entries in batches (one transaction each), with a signed
  checkpoint every `checkpoint_every` entries; floor: plain `executemany` of the same
  canonical bytes, no hashing, same batches and pragmas; the peer likewise. The three take
  turns batch by batch, and each figure is the median of `--rounds` such runs.
- verify: entries/s of `verify_ledger`; floor: read the rows and SHA-256 each, nothing else.
- proofs: median and p99 latency of random inclusion and consistency proofs at two sizes.
- time to integrate: from an accepted entry to a signed checkpoint covering it.

With `--backend postgresql` it measures append only, on a throwaway database (the
machine's server or a temporary cluster, tests/support/postgres.py) at
`synchronous_commit=on`, against two floors: `executemany` of the same (seq, body) rows,
and a binary `COPY` of them, each batch one transaction, the three taking turns.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from reserve.events import Event
from reserve.events.chain_btc import BtcDeposit
from reserve.events.chain_evm import EvmConfirmed
from reserve.events.workflow import ProposalApproved, ProposalState
from reserve.ledger import CheckpointSigner, Ledger, merkle
from reserve.ledger.verify import verify_ledger

ORIGIN = "bench.reserve.example/ledger"
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL")
BIG_BATCH = 100_000

Item = tuple[str, str, dict[str, Any]]


@dataclass
class Latency:
    """Median, p99 and first (cold) sample of a latency series, in seconds."""

    median: float
    p99: float
    first: float
    count: int

    @staticmethod
    def of(samples: Sequence[float]) -> Latency:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return Latency(statistics.median(ordered), p99, samples[0], len(samples))


@dataclass
class Results:
    entries: int
    small: int
    big: int
    batch: int
    checkpoint_every: int
    rounds: int
    figures: dict[str, float] = field(default_factory=dict)
    latencies: dict[str, Latency] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)


# ------------------------------------------------------------------- workload
def make_items(count: int, start: int = 0) -> list[Item]:
    """Deterministic, realistic entries (300-450 canonical bytes), each a valid typed event:
    votes, transitions, deposits and confirmations, as the workflow and watchers write."""
    items: list[Item] = []
    for i in range(start, start + count):
        digest = hashlib.sha256(i.to_bytes(8, "big")).hexdigest()
        vault = "national-btc" if i % 3 else "reserve-safe"
        event: Event
        if i % 4 == 0:
            event = ProposalApproved(vault=vault, digest=digest,
                                     custodian=("finance-ministry", "central-bank")[i % 2],
                                     decision="approve", signature=(digest * 2)[:128])
        elif i % 4 == 1:
            event = ProposalState(vault=vault, digest=digest, source="approved",
                                  target="releasable", reason=f"time delay over, tranche "
                                  f"{i % 97} \u00e9ch\u00e9ance")
        elif i % 4 == 2:
            event = BtcDeposit(vault=vault, txid=digest, blockhash=digest[::-1],
                               height=100 + i, confirmations=1 + i % 6,
                               delta_sats=1_000 + (i * 7_919) % 100_000_000,
                               outputs=[{"vout": i % 3, "address":
                                         f"bcrt1q{(i * 2_654_435_761) % 2**64:016x}{i:08x}",
                                         "amount_sats": 1_000 + (i * 7_919) % 100_000_000}],
                               amount_sats=1_000 + (i * 7_919) % 100_000_000)
        else:
            event = EvmConfirmed(tx_hash="0x" + digest, block_number=100 + i,
                                 block_hash="0x" + digest[::-1], confirmations=1 + i % 6,
                                 success=bool(i % 2), vault=vault, digest=digest)
        items.append((event.KIND, f"operator-{i % 7}", event.to_payload()))
    return items


def make_signer() -> CheckpointSigner:
    return CheckpointSigner(ORIGIN, Ed25519PrivateKey.generate())


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        connection.execute(pragma)
    return connection


# -------------------------------------------------------------------- appends
def open_pymerkle(path: Path) -> Any:
    """A pymerkle SqliteTree at the same durability as the ledger (WAL, synchronous=FULL)."""
    from pymerkle import SqliteTree

    tree = SqliteTree(str(path))
    for pragma in PRAGMAS:
        tree.con.execute(pragma)
    return tree


def bench_pymerkle_append(tree: Any, bodies: Sequence[bytes], batch: int) -> float:
    started = time.perf_counter()
    for offset in range(0, len(bodies), batch):
        tree.append_entries(bodies[offset:offset + batch])  # one transaction per call
    return time.perf_counter() - started


def bench_appends_interleaved(directory: Path, label: str, items: Sequence[Item], batch: int,
                              checkpoint_every: int, signer: CheckpointSigner
                              ) -> tuple[dict[str, float], list[float], Path]:
    """Ours, the floor and the peer appending the same batches in turn, batch by batch.

    Returns the seconds each spent, the integrate latencies (on our own clock: from a
    batch's append returning to the commit of the next batch that carried a signed
    checkpoint) and the path of our ledger. Taking turns a batch at a time means a slow
    second of this shared machine slows all three alike.
    """
    path = directory / f"append-{label}.sqlite"
    floor = _connect(directory / f"floor-{label}.sqlite")
    floor.execute("CREATE TABLE floor (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    tree = open_pymerkle(directory / f"pymerkle-append-{label}.sqlite")
    seconds = {"append": 0.0, "append floor": 0.0, "append pymerkle": 0.0}
    ends: list[float] = []
    checkpointed: list[bool] = []
    clock = time.perf_counter
    with Ledger.open(f"sqlite:///{path}", signer=signer,
                     checkpoint_every=checkpoint_every) as ledger:
        for offset in range(0, len(items), batch):
            started = clock()
            entries = ledger.append_many(items[offset:offset + batch])
            seconds["append"] += clock() - started
            ends.append(seconds["append"])
            after = offset + len(entries)
            checkpointed.append(after // checkpoint_every > offset // checkpoint_every)
            bodies = [entry.body for entry in entries]
            rows = list(zip(range(offset, after), bodies))
            started = clock()
            floor.execute("BEGIN IMMEDIATE")
            floor.executemany("INSERT INTO floor (seq, body) VALUES (?, ?)", rows)
            floor.execute("COMMIT")
            seconds["append floor"] += clock() - started
            started = clock()
            tree.append_entries(bodies)  # one transaction per call
            seconds["append pymerkle"] += clock() - started
    floor.close()
    tree.close()
    latencies: list[float] = []
    next_done: float | None = None
    for end, done in zip(reversed(ends), reversed(checkpointed)):
        next_done = end if done else next_done
        if next_done is not None:
            latencies.append(next_done - end)
    latencies.reverse()
    return seconds, latencies, path


# --------------------------------------------------------------------- verify
def bench_verify(path: Path) -> tuple[float, bool, int]:
    with Ledger.open(f"sqlite:///{path}") as ledger:
        started = time.perf_counter()
        report = verify_ledger(ledger)
        seconds = time.perf_counter() - started
    return seconds, report.ok, report.entries


def bench_floor_verify(path: Path) -> tuple[float, int]:
    """Read every body in order and SHA-256 it: the least any verifier must do."""
    connection = _connect(path)
    sha256 = hashlib.sha256
    started = time.perf_counter()
    count = 0
    for (body,) in connection.execute("SELECT body FROM ledger_entries ORDER BY seq"):
        sha256(body).digest()
        count += 1
    seconds = time.perf_counter() - started
    connection.close()
    return seconds, count


# --------------------------------------------------------------------- proofs
def timed(calls: Sequence[Callable[[], object]]) -> list[float]:
    samples: list[float] = []
    for call in calls:
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def build_pair(directory: Path, size: int, signer: CheckpointSigner) -> tuple[Ledger, Any, float,
                                                                             float]:
    """A ledger and a pymerkle tree of `size` identical entries, built in large batches.

    Returns both (open) and the seconds each took to build.
    """
    ledger = Ledger.open(f"sqlite:///{directory / f'ledger-{size}.sqlite'}", signer=signer)
    tree = open_pymerkle(directory / f"pymerkle-{size}.sqlite")
    ours = theirs = 0.0
    for offset in range(0, size, BIG_BATCH):
        items = make_items(min(BIG_BATCH, size - offset), offset)
        started = time.perf_counter()
        bodies = [entry.body for entry in ledger.append_many(items)]
        ours += time.perf_counter() - started
        theirs += bench_pymerkle_append(tree, bodies, len(bodies))
    ledger.checkpoint()
    return ledger, tree, ours, theirs


def bench_proofs(ledger: Ledger, tree: Any, size: int, samples: int,
                 rng: random.Random) -> tuple[dict[str, Latency], dict[str, bool]]:
    """Random inclusion and consistency proofs against the full tree, ours and pymerkle's."""
    leaves = [rng.randrange(size) for _ in range(samples)]
    olds = [rng.randrange(1, size) if size > 1 else 1 for _ in range(samples)]
    latencies = {
        "inclusion": Latency.of(timed(
            [partial(ledger.inclusion_proof, s, size) for s in leaves])),
        "consistency": Latency.of(timed(
            [partial(ledger.consistency_proof, o, size) for o in olds])),
        "pymerkle inclusion": Latency.of(timed(
            [partial(tree.prove_inclusion, s + 1, size) for s in leaves])),
        "pymerkle consistency": Latency.of(timed(
            [partial(tree.prove_consistency, o, size) for o in olds])),
    }
    root = ledger.root_at(size)
    checks = {
        "roots agree with pymerkle": root == tree.get_root(size),
        "inclusion proofs verify": all(
            merkle.verify_inclusion(merkle.leaf_hash(ledger.entry(s).body), s, size,
                                    ledger.inclusion_proof(s), root) for s in leaves[:20]),
        "consistency proofs verify": all(
            merkle.verify_consistency(o, size, ledger.root_at(o), root,
                                      ledger.consistency_proof(o, size)) for o in olds[:20]),
    }
    return latencies, checks


# ----------------------------------------------------------- time to integrate
def bench_integrate(path: Path, signer: CheckpointSigner, rounds: int,
                    batch: int) -> list[float]:
    """Append a batch, then sign a checkpoint covering it; time from accept to signed."""
    latencies: list[float] = []
    with Ledger.open(f"sqlite:///{path}", signer=signer) as ledger:
        for round_ in range(rounds):
            ledger.append_many(make_items(batch, round_ * batch))
            accepted = time.perf_counter()
            ledger.checkpoint()
            latencies.append(time.perf_counter() - accepted)
    return latencies


# ------------------------------------------------------------------------ run
def run(entries: int, big: int, *, small: int = 1000, batch: int = 1000,
        checkpoint_every: int = 10_000, samples: int = 200, integrate_rounds: int = 50,
        seed: int = 8785, rounds: int = 3, directory: Path | None = None) -> Results:
    """Measure every figure in one run; `directory` defaults to a fresh temporary folder."""
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as temp:
            return run(entries, big, small=small, batch=batch, checkpoint_every=checkpoint_every,
                       samples=samples, integrate_rounds=integrate_rounds, seed=seed,
                       rounds=rounds, directory=Path(temp))
    results = Results(entries, small, big, batch, checkpoint_every, rounds)
    figures, signer, rng = results.figures, make_signer(), random.Random(seed)
    items = make_items(entries)
    # Appends take turns batch by batch (bench_appends_interleaved); verify and its floor
    # alternate round by round. Each figure is the median of its rounds: fsync latency and
    # CPU speed on this shared machine swing by 2-3x from one second to the next.
    timings: dict[str, list[float]] = {name: [] for name in
                                       ("append", "append floor", "append pymerkle",
                                        "verify", "verify floor")}
    integrate: list[float] = []
    kept = directory / "append-0.sqlite"
    for round_ in range(rounds):
        seconds, latencies, path = bench_appends_interleaved(
            directory, str(round_), items, batch, checkpoint_every, signer)
        for name, value in seconds.items():
            timings[name].append(value)
        integrate.extend(latencies)
        for used in (path, directory / f"floor-{round_}.sqlite",
                     directory / f"pymerkle-append-{round_}.sqlite"):
            if used != kept:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{used}{suffix}").unlink(missing_ok=True)
    for _ in range(rounds):
        verify_seconds, results.checks["ledger verifies"], verified = bench_verify(kept)
        results.checks["verifier saw every entry"] = verified == entries
        timings["verify"].append(verify_seconds)
        timings["verify floor"].append(bench_floor_verify(kept)[0])
    for name, seconds_each in timings.items():
        figures[name] = entries / statistics.median(seconds_each)
    if integrate:
        results.latencies["integrate (load)"] = Latency.of(integrate)
    results.latencies["integrate (explicit)"] = Latency.of(bench_integrate(
        directory / "integrate.sqlite", signer, integrate_rounds, max(1, batch // 10)))
    for label, size in (("small", small), ("big", big)):
        ledger, tree, ours, theirs = build_pair(directory, size, signer)
        figures[f"build {label}"] = size / ours
        figures[f"build {label} pymerkle"] = size / theirs
        latencies, checks = bench_proofs(ledger, tree, size, samples, rng)
        for name, latency in latencies.items():
            results.latencies[f"{name} @{size}"] = latency
        for name, ok in checks.items():
            results.checks[f"{name} @{size}"] = ok
        ledger.close()
        tree.close()
    return results


# ----------------------------------------------------------------- PostgreSQL
def _pg_floor(url: str, table: str) -> Any:
    import psycopg

    connection = psycopg.connect(url, autocommit=True)
    connection.execute("SET synchronous_commit = on")
    connection.execute(f"CREATE TABLE {table} (seq BIGINT PRIMARY KEY, body BYTEA NOT NULL)")
    return connection


def bench_pg_round(url: str, items: Sequence[Item], batch: int, checkpoint_every: int,
                   signer: CheckpointSigner) -> tuple[dict[str, float], bool]:
    """Ours, the executemany floor and the COPY floor, batch by batch, on a fresh database.

    Returns the seconds each spent and whether the ledger verifies afterwards."""
    seconds = {"append": 0.0, "append floor": 0.0, "append copy floor": 0.0}
    clock = time.perf_counter
    many, copying = _pg_floor(url, "floor_many"), _pg_floor(url, "floor_copy")
    with Ledger.open(url, signer=signer, checkpoint_every=checkpoint_every) as ledger:
        for offset in range(0, len(items), batch):
            started = clock()
            entries = ledger.append_many(items[offset:offset + batch])
            seconds["append"] += clock() - started
            rows = [(entry.seq, entry.body) for entry in entries]
            started = clock()
            with many.transaction(), many.cursor() as cursor:
                cursor.executemany("INSERT INTO floor_many (seq, body) VALUES (%s, %s)", rows)
            seconds["append floor"] += clock() - started
            started = clock()
            with copying.transaction(), copying.cursor() as cursor, cursor.copy(
                    "COPY floor_copy (seq, body) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "bytea"])
                for row in rows:
                    copy.write_row(row)
            seconds["append copy floor"] += clock() - started
        ok = verify_ledger(ledger).ok
    many.close()
    copying.close()
    return seconds, ok


def run_postgresql(entries: int, *, batch: int = 1000, checkpoint_every: int = 10_000,
                   rounds: int = 3) -> Results:
    """Append figures on PostgreSQL, each round on a fresh throwaway database."""
    from tests.support import postgres

    results = Results(entries, 0, 0, batch, checkpoint_every, rounds)
    signer, items = make_signer(), make_items(entries)
    timings: dict[str, list[float]] = {}
    with postgres.server() as server:
        for round_ in range(rounds):
            with postgres.database(server, prefix="reserve_bench") as url:
                seconds, ok = bench_pg_round(url, items, batch, checkpoint_every, signer)
            results.checks[f"ledger verifies (round {round_ + 1})"] = ok
            for name, value in seconds.items():
                timings.setdefault(name, []).append(value)
    for name, seconds_each in timings.items():
        results.figures[name] = entries / statistics.median(seconds_each)
    return results


def format_postgresql(results: Results) -> str:
    f = results.figures
    lines = [
        f"Ledger benchmark: PostgreSQL, synchronous_commit=on, {results.entries} entries in "
        f"batches of {results.batch}, signed checkpoint every {results.checkpoint_every}; "
        f"median of {results.rounds} interleaved rounds, each on a fresh database",
        "",
        f"{'throughput':<44}{'entries/s':>12}{'ratio':>10}",
        f"{'append (ledger.append_many)':<44}{f['append']:>12,.0f}",
        f"{'  floor: executemany of same bytes':<44}{f['append floor']:>12,.0f}"
        f"{f['append'] / f['append floor']:>9.2f}x",
        f"{'  floor: binary COPY of same bytes':<44}{f['append copy floor']:>12,.0f}"
        f"{f['append'] / f['append copy floor']:>9.2f}x",
        "",
    ]
    lines += [f"check: {name}: {'ok' if ok else 'FAILED'}" for name, ok in results.checks.items()]
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.3f} ms"


def format_results(results: Results) -> str:
    """The table printed by main(): rates with ratios, latencies, sanity checks."""
    f = results.figures
    lines = [
        f"Ledger benchmark: SQLite, WAL journal + synchronous=FULL (every commit fsynced), "
        f"{results.entries} entries in batches of {results.batch}, signed checkpoint every "
        f"{results.checkpoint_every}; append and verify figures are the median of "
        f"{results.rounds} interleaved rounds",
        "",
        f"{'throughput':<44}{'entries/s':>12}{'ratio':>10}",
        f"{'append (ledger.append_many)':<44}{f['append']:>12,.0f}",
        f"{'  floor: executemany of same bytes':<44}{f['append floor']:>12,.0f}"
        f"{f['append'] / f['append floor']:>9.2f}x",
        f"{'  peer: pymerkle SqliteTree.append_entries':<44}{f['append pymerkle']:>12,.0f}"
        f"{f['append'] / f['append pymerkle']:>9.2f}x",
        f"{'verify (verify_ledger)':<44}{f['verify']:>12,.0f}",
        f"{'  floor: read rows + SHA-256 each':<44}{f['verify floor']:>12,.0f}"
        f"{f['verify'] / f['verify floor']:>9.2f}x",
    ]
    for label, size in (("small", results.small), ("big", results.big)):
        lines.append(f"{f'build {size:,} entries (batches <= {BIG_BATCH:,})':<44}"
                     f"{f[f'build {label}']:>12,.0f}")
        lines.append(f"{'  peer: pymerkle':<44}{f[f'build {label} pymerkle']:>12,.0f}"
                     f"{f[f'build {label}'] / f[f'build {label} pymerkle']:>9.2f}x")
    lines += ["", f"{'latency':<44}{'median':>13}{'p99':>13}{'first':>13}{'n':>6}"]
    for name, latency in results.latencies.items():
        lines.append(f"{name:<44}{_ms(latency.median):>13}{_ms(latency.p99):>13}"
                     f"{_ms(latency.first):>13}{latency.count:>6}")
    lines += ["", "ratios are ours / theirs (higher is better for throughput)", ""]
    lines += [f"check: {name}: {'ok' if ok else 'FAILED'}" for name, ok in results.checks.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000, help="entries for append/verify")
    parser.add_argument("--big", type=int, default=1_000_000, help="size of the big proof tree")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of append and verify (median reported)")
    parser.add_argument("--quick", action="store_true", help="small run (about 10 s)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite",
                        help="postgresql: append only, against executemany and COPY floors")
    args = parser.parse_args(argv)
    if args.backend == "postgresql":
        entries, rounds = args.entries, max(1, args.rounds)
        if args.quick:
            entries, rounds = min(entries, 10_000), 1
        pg = run_postgresql(entries, rounds=rounds)
        print(format_postgresql(pg))
        return 0 if all(pg.checks.values()) else 1
    entries, big, samples, rounds = args.entries, args.big, 200, max(1, args.rounds)
    if args.quick:
        entries, big, samples, rounds = min(entries, 10_000), min(big, 50_000), 100, 1
    results = run(entries, big, samples=samples, rounds=rounds)
    print(format_results(results))
    return 0 if all(results.checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
