"""The offline verifier: recompute everything, trust nothing the server says.

It reads entries in order (from a database or an export file) and recomputes each entry's
canonical form, the hash chain, the Merkle tree and its stored subtree hashes, the root at
every checkpoint, every checkpoint's Ed25519 signature, the consistency proofs between
consecutive checkpoints, and, given checkpoints a reader kept from earlier, that the
ledger still extends them (no rollback, no fork). On a live database it also checks every
stored column the rest of the code never reads back (a checkpoint row's tree size, root
and time beside its signed note; the settings in `ledger_meta`).

It reports the first entry that may be wrong and what is wrong; findings are values, not
exceptions. An entry edited with its hash chain recomputed hashes validly on its own: the
only evidence left is the signed checkpoints (each matching one vouches for every entry
below its size) and the stored subtree hashes (a wrong one points at the entries under
it, narrowed to its wrong descendants). Such an edit is reported at the first entry no
evidence vouches for, with the range the altered entry lies in.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from reserve.errors import CheckpointError, LedgerError, VerificationError
from reserve.ledger import merkle
from reserve.ledger.canonical import (
    is_canonical,
    is_canonical_text,
    loads_canonical,
    nesting_within_limit,
    parse_plain,
)
from reserve.ledger.checkpoint import Checkpoint, VerifierKey, parse_note, verify_note
from reserve.ledger.entry import GENESIS_PREV_HASH
from reserve.ledger.kinds import KINDS
from reserve.ledger.native import core as _native

T = TypeVar("T")
EXPORT_FORMAT = "reserve-ledger-export/1"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # entry.format_time's
TIME_LENGTH = len("2026-01-05T09:00:00.000000Z")


@dataclass(frozen=True)
class Finding:
    seq: int | None
    what: str

    def __str__(self) -> str:
        where = f"entry {self.seq}" if self.seq is not None else "ledger"
        return f"{where}: {self.what}"


@dataclass
class Report:
    entries: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [f.seq for f in self.findings if f.seq is not None]
        return min(seqs) if seqs else None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "checkpoints": self.checkpoints,
                "first_bad_seq": self.first_bad_seq,
                "findings": [{"seq": f.seq, "what": f.what} for f in self.findings],
                "notes": self.notes}


@dataclass(frozen=True)
class ConsistencyClaim:
    """A consistency proof the ledger gave, or, with `error`, could not give."""

    old_size: int
    new_size: int
    proof: tuple[bytes, ...]
    error: str | None = None


def _checkpoints(notes: Iterable[str], key: VerifierKey | None,
                 report: Report) -> dict[int, Checkpoint]:
    by_size: dict[int, Checkpoint] = {}
    for note in notes:
        try:
            if key is None:
                raise CheckpointError("no public key to check checkpoint signatures")
            checkpoint = verify_note(note, key)
        except CheckpointError as error:
            size = _size_of(note)
            report.findings.append(Finding(size - 1 if size else None,
                                           f"checkpoint rejected: {error}"))
            continue
        if checkpoint.tree_size in by_size and by_size[checkpoint.tree_size] != checkpoint:
            report.findings.append(Finding(checkpoint.tree_size - 1,
                                           "two different checkpoints for one tree size (fork)"))
        by_size[checkpoint.tree_size] = checkpoint
        report.checkpoints += 1
    return by_size


def _size_of(note: str) -> int | None:
    lines = note.split("\n")
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None


_ENTRY_KEYS = frozenset({"seq", "time", "kind", "actor", "payload"})


def _check_entry(seq: int, body: bytes, report: Report) -> bool:
    """Report the first problem with entry `seq`'s body; True when it has none.

    Fast path: `loads_canonical` (orjson: one C parse, one C encode) vouches that the body
    is canonical; then only the entry's fields are checked. Anything it cannot vouch for
    takes `_check_entry_plain` (stdlib parser), and any problem `_check_entry_exact`, which
    finds and words it.
    """
    if not nesting_within_limit(body):
        report.findings.append(Finding(seq, "body nests deeper than any accepted entry"))
        return False
    loaded = loads_canonical(body)
    if loaded is None:
        return _check_entry_plain(seq, body, report)
    fields = loaded[0]
    if type(fields) is not dict or fields.keys() != _ENTRY_KEYS or type(fields["seq"]) is not int \
            or fields["seq"] != seq or type(fields["kind"]) is not str \
            or fields["kind"] not in KINDS:
        return _check_entry_exact(seq, body, report)
    return True


def _check_entry_plain(seq: int, body: bytes, report: Report) -> bool:
    """`_check_entry` without orjson: one stdlib parse and one re-encode (`parse_plain`,
    `is_canonical_text`) decide exactly what json.loads plus `is_canonical` would; anything
    unusual (not UTF-8, floats, long integers, astral characters, bad JSON) or any problem
    takes `_check_entry_exact`.
    """
    parsed = parse_plain(body)
    if parsed is None:
        return _check_entry_exact(seq, body, report)
    fields = parsed[1]
    if type(fields) is not dict or fields.keys() != _ENTRY_KEYS or type(fields["seq"]) is not int \
            or fields["seq"] != seq or type(fields["kind"]) is not str \
            or fields["kind"] not in KINDS or not is_canonical_text(*parsed):
        return _check_entry_exact(seq, body, report)
    return True


def _check_entry_exact(seq: int, body: bytes, report: Report) -> bool:
    if not nesting_within_limit(body):
        report.findings.append(Finding(seq, "body nests deeper than any accepted entry"))
        return False
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):  # a body of 100,000 '[' must not crash the verifier
        report.findings.append(Finding(seq, "body is not JSON"))
        return False
    if not isinstance(fields, dict) or set(fields) != {"seq", "time", "kind", "actor", "payload"}:
        report.findings.append(Finding(seq, "body is not an entry object"))
        return False
    if type(fields["seq"]) is not int or fields["seq"] != seq:  # true == 1 in Python
        report.findings.append(Finding(seq, f"body carries sequence number {fields['seq']}: "
                                            "entries reordered or moved"))
        return False
    if not isinstance(fields["kind"], str) or fields["kind"] not in KINDS:  # [] is unhashable
        report.findings.append(Finding(seq, f"unknown kind {fields['kind']!r}"))
        return False
    if not is_canonical(body):
        report.findings.append(Finding(seq, "body is not RFC 8785 canonical JSON"))
        return False
    return True


ROWS_CHUNK = 4096
_KINDS = frozenset(KINDS)


class _Walk:
    """The verifier's pass over the entries, in order: the expected sequence number, the
    hash chain's tip, the Merkle frontier (perfect-subtree roots, largest first), every
    recomputed subtree hash by level from `level_min` up (a level's nodes complete in index
    order, so by_level[level][index] is node (level, index)), and the root at each size a
    checkpoint names.

    `advance` lets the native core (`_native.verify_rows`) run over every row it can vouch
    for and judges each row it stops at with `_step`, the Python path, which finds and
    words what is wrong; without the core, `_step` judges every row.
    """

    def __init__(self, sizes: Iterable[int], level_min: int) -> None:
        self.level_min = level_min  # subtree hashes below this level are not kept
        self.expected = 0
        self.prev = GENESIS_PREV_HASH
        self.frontier: list[bytes] = []
        self.by_level: list[list[bytes]] = [[] for _ in range(64)]
        self.roots: dict[int, bytes] = {0: merkle.EMPTY_ROOT}
        self.sizes = sorted(size for size in set(sizes) if size > 0)
        self.ok = True

    def _next_size(self) -> int:
        """The smallest checkpoint size beyond `expected`, or -1 when none is left."""
        at = bisect_right(self.sizes, self.expected)
        return self.sizes[at] if at < len(self.sizes) else -1

    def _record_root(self) -> None:
        at = bisect_right(self.sizes, self.expected) - 1
        if at >= 0 and self.sizes[at] == self.expected and self.expected not in self.roots:
            self.roots[self.expected] = merkle.fold_frontier(self.frontier)

    def advance(self, chunk: list[tuple[int, bytes, bytes]], report: Report) -> None:
        """Walk the rows of `chunk`; stops (ok False) at the first row with a finding."""
        index, native = 0, _native
        while index < len(chunk) and self.ok:
            if native is not None:
                stop = self._next_size()
                index, self.expected, self.prev = native.verify_rows(
                    chunk, index, self.expected, self.prev, self.frontier, self.by_level,
                    _KINDS, stop, self.level_min)
                self._record_root()
                if index == len(chunk) or self.expected == stop:
                    continue  # done, or a checkpoint's root taken: on with the core
            self.ok = self._step(chunk[index], report)
            self._record_root()
            index += 1

    def _step(self, row: tuple[int, bytes, bytes], report: Report) -> bool:
        """Judge one row with the Python checks; False (with a finding) stops the walk."""
        seq, body, stored_hash = row
        expected = self.expected
        if seq != expected:
            what = (f"entry {expected} is missing (next stored entry is {seq})" if seq > expected
                    else f"entry {seq} appears again or out of order")
            report.findings.append(Finding(expected, what))
            return False
        if not _check_entry(seq, body, report):
            return False
        sha256 = hashlib.sha256
        prev = sha256(self.prev + body).digest()
        if prev != stored_hash:
            report.findings.append(Finding(seq, "stored entry hash differs from "
                                                "SHA-256(previous hash || body): entry altered"))
            return False
        carry, level = sha256(b"\x00" + body).digest(), 0  # merkle.leaf_hash, inlined
        while seq >> level & 1:
            carry = sha256(b"\x01" + self.frontier.pop() + carry).digest()  # merkle.node_hash
            level += 1
            if level >= self.level_min:
                self.by_level[level].append(carry)
        self.frontier.append(carry)
        self.prev, self.expected = prev, seq + 1
        return True


def verify_stream(rows: Iterable[tuple[int, bytes, bytes]], notes: Iterable[str],
                  key: VerifierKey | None, *,
                  stored_nodes: Iterable[tuple[int, int, bytes]] | None = None,
                  claims: Iterable[ConsistencyClaim] = (),
                  trusted: Iterable[str] = (), level_min: int = 1) -> Report:
    """Verify entries (seq, body, stored entry hash) in order against checkpoint notes.

    `stored_nodes` (level, index, hash) are compared with the recomputed tree's subtrees
    from `level_min` up (the levels the ledger stores);
    `claims` are consistency proofs the server published; `trusted` are checkpoint notes
    the reader kept from before, which the ledger must still contain.
    """
    return _verify_chunks(_chunked(rows), notes, key, stored_nodes=stored_nodes,
                          claims=claims, trusted=trusted, level_min=level_min)


def _chunked(rows: Iterable[tuple[int, bytes, bytes]]) -> Iterator[list[tuple[int, bytes, bytes]]]:
    rows_left = iter(rows)
    return iter(lambda: list(islice(rows_left, ROWS_CHUNK)), [])


NodesMatch = Callable[[list[list[bytes]]], bool]


def _verify_chunks(chunks: Iterable[list[tuple[int, bytes, bytes]]], notes: Iterable[str],
                   key: VerifierKey | None, *,
                   stored_nodes: Iterable[tuple[int, int, bytes]] | None,
                   claims: Iterable[ConsistencyClaim], trusted: Iterable[str],
                   nodes_match: NodesMatch | None = None, level_min: int = 1) -> Report:
    """`verify_stream` over the rows a list at a time (each list non-empty).

    `nodes_match(by_level)`, if given, may vouch that the stored subtree hashes are exactly
    the recomputed ones (a quicker read than `stored_nodes`, which is then not read).
    """
    report = Report()
    checkpoints = _checkpoints(notes, key, report)
    trusted_points = _checkpoints(trusted, key, Report()) if trusted else {}
    for note in trusted:
        if _size_of(note) not in trusted_points:
            report.findings.append(Finding(None, "a trusted checkpoint does not verify"))
    # Without stored nodes to compare, no subtree hash needs keeping.
    walk = _Walk(checkpoints.keys() | trusted_points.keys(),
                 level_min if stored_nodes is not None else 64)
    findings_before = len(report.findings)
    for chunk in chunks:
        walk.advance(chunk, report)
        if not walk.ok:
            break
    expected = walk.expected
    report.entries = expected
    vouched = _vouched_prefix((checkpoints, trusted_points), walk.roots, expected)
    if stored_nodes is not None and not (walk.ok and nodes_match is not None
                                         and nodes_match(walk.by_level)):
        _compare_nodes(stored_nodes, walk.by_level, expected,
                       len(report.findings) == findings_before, report, vouched)
    _check_roots(checkpoints, walk.roots, expected, report, vouched, label="checkpoint")
    _check_roots(trusted_points, walk.roots, expected, report, vouched,
                 label="trusted checkpoint")
    # A claim over entries past a broken one cannot be judged (the ledger built it from
    # data already shown bad); reporting it would point before the first bad entry.
    _check_claims(checkpoints, claims, report, expected if not walk.ok else None)
    report.findings.sort(key=lambda f: (f.seq is None, f.seq or 0))
    return report


def _vouched_prefix(point_sets: Iterable[dict[int, Checkpoint]], roots: dict[int, bytes],
                    size: int) -> int:
    """The largest tree size up to which every checkpoint (the ledger's and the trusted
    ones) matches the recomputed roots: the entries below it are as signed. 0 if none."""
    points: dict[int, list[Checkpoint]] = {}
    for chosen in point_sets:
        for tree_size, checkpoint in chosen.items():
            points.setdefault(tree_size, []).append(checkpoint)
    vouched = 0
    for tree_size in sorted(points):
        if tree_size > size or any(roots.get(tree_size) != checkpoint.root_hash
                                   for checkpoint in points[tree_size]):
            break
        vouched = tree_size
    return vouched


def _node_finding(level: int, index: int, wrong: set[tuple[int, int]],
                  vouched: int) -> Finding:
    """The finding for wrong stored subtree hash (level, index), at the first entry it may
    misrepresent.

    A wrong stored hash means an entry under it was altered (its chain hash recomputed) or
    the stored hash was. Its wrong stored descendants narrow where: descend to the leftmost
    wrong child while there is one. Entries a matching checkpoint vouches for are not
    suspects, unless it vouches for all of them: then the stored hash itself is wrong.
    """
    first_level, first_index = level, index
    for _ in range(level):  # at most one step per level
        left, right = (level - 1, 2 * index), (level - 1, 2 * index + 1)
        if left not in wrong and right not in wrong:
            break
        level, index = left if left in wrong else right
    first, end = index << level, (index + 1) << level
    what = f"stored subtree hash at level {first_level} index {first_index} is wrong or missing"
    seq = vouched if first < vouched < end else first
    if (level, index) == (first_level, first_index) and seq == first:
        return Finding(seq, what)
    covered = f"{first_index << first_level}..{((first_index + 1) << first_level) - 1}"
    return Finding(seq, f"{what} for entries {covered}: an entry in {seq}..{end - 1} was "
                        "altered with its chain hash recomputed, or the stored hash was")


def _compare_nodes(stored_nodes: Iterable[tuple[int, int, bytes]], by_level: list[list[bytes]],
                   verified: int, complete: bool, report: Report, vouched: int = 0) -> None:
    # Every stored subtree hash serves proofs; one that differs from the entries would make
    # honest proofs fail, so it is reported with the first entry it may misrepresent
    # (`_node_finding`). When the entry stream broke early, nodes beyond the verified prefix
    # are not judged.
    stored = list(stored_nodes)
    # Fast path, one C-level list comparison: the stored nodes are exactly the recomputed
    # ones, in node order (level, then index), each with the same hash. Then the checks
    # below would find nothing; any difference (or another order) takes them.
    if stored == [(level, index, value) for level, hashes in enumerate(by_level)
                  for index, value in enumerate(hashes)]:
        return
    computed = {(level, index): value for level, hashes in enumerate(by_level)
                for index, value in enumerate(hashes)}
    wrong: list[tuple[int, int]] = []
    for level, index, value in stored:
        first, end = index << level, (index + 1) << level
        if end > verified:
            if complete:
                report.findings.append(Finding(first, f"stored subtree hash at level {level} "
                                                      f"index {index} covers no entries"))
            continue
        expected = computed.pop((level, index), None)
        if expected != value:
            wrong.append((level, index))
    wrong_set = set(wrong)
    report.findings.extend(_node_finding(level, index, wrong_set, vouched)
                           for level, index in wrong)
    if computed and complete:
        level, index = min(computed, key=lambda key: key[1] << key[0])
        report.findings.append(Finding(index << level, "stored subtree hashes are missing"))


def _ledger_nodes_match(ledger: Any, by_level: list[list[bytes]]) -> bool:
    """True when the ledger's stored subtree hashes are exactly `by_level`: per level the
    indexes 0..n-1 (count, lowest and highest index, with the primary key making them
    distinct) and, read a level at a time as bare hashes, the same values. False leaves the
    judgement to `_compare_nodes`, which words each difference."""
    if _native is None:
        return False
    levels = ledger.node_levels()
    wanted = {level: (len(hashes), 0, len(hashes) - 1)
              for level, hashes in enumerate(by_level) if hashes}
    if levels != wanted:
        return False
    for level, (count, _, _) in wanted.items():
        offset = 0
        for rows in ledger.node_hash_chunks(level, count):
            if not _native.hashes_match(rows, by_level[level], offset):
                return False
            offset += len(rows)
        if offset != count:
            return False
    return True


def _check_roots(points: dict[int, Checkpoint], roots: dict[int, bytes], size: int,
                 report: Report, vouched: int, *, label: str) -> None:
    """A checkpoint whose root differs is reported at `vouched`, the first entry no
    checkpoint vouches for: the altered entry is at or after it, before the size."""
    for tree_size, checkpoint in sorted(points.items()):
        if tree_size > size:
            report.findings.append(Finding(size, f"{label} covers {tree_size} entries but the "
                                                 f"ledger holds {size}: entries removed or "
                                                 "ledger rolled back"))
        elif roots.get(tree_size) != checkpoint.root_hash:
            report.findings.append(Finding(vouched, f"{label} at size {tree_size}: root hash "
                                           "does not match the entries (fork or edit of an "
                                           f"entry in {vouched}..{tree_size - 1})"))


def _check_claims(points: dict[int, Checkpoint], claims: Iterable[ConsistencyClaim],
                  report: Report, broken_at: int | None) -> None:
    for claim in claims:
        if broken_at is not None and claim.new_size > broken_at:
            continue
        if claim.error is not None:
            report.findings.append(Finding(claim.old_size, f"the ledger cannot build the "
                                           f"consistency proof from size {claim.old_size} to "
                                           f"{claim.new_size}: {claim.error}"))
            continue
        old, new = points.get(claim.old_size), points.get(claim.new_size)
        if old is None or new is None:
            continue
        if not merkle.verify_consistency(claim.old_size, claim.new_size, old.root_hash,
                                         new.root_hash, list(claim.proof)):
            report.findings.append(Finding(claim.old_size, f"consistency proof from size "
                                           f"{claim.old_size} to {claim.new_size} fails"))


RowWrapper = Callable[[Iterable[tuple[int, bytes, bytes]], int], Iterable[tuple[int, bytes, bytes]]]


def _read_ahead(chunks: Iterable[T]) -> Iterator[T]:
    """`chunks` in order, each next one read on a second thread while the caller walks the
    current one: the database read (SQLite and psycopg release the GIL while they fetch)
    overlaps the core's walk, which releases it while it scans and hashes. One chunk ahead
    at most; closing the iterator early waits for that read and reads no further."""
    source = iter(chunks)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-read") as reader:
        pending = reader.submit(next, source, None)
        while True:
            chunk = pending.result()
            if chunk is None:
                return
            pending = reader.submit(next, source, None)
            yield chunk


def verify_ledger(ledger: Any, key: VerifierKey | None = None, *,
                  trusted: Iterable[str] = (), progress: RowWrapper | None = None) -> Report:
    """Verify a live ledger (database), including its stored subtree hashes.

    `progress(rows, total)` may wrap the row stream (the CLI shows a progress bar with it on
    a terminal); without one the store's lists are read a chunk ahead (`_read_ahead`).
    """
    rows = ledger.checkpoint_rows()
    notes = [note for _, _, note, _ in rows]
    altered = _meta_findings(ledger.meta_rows(), key, bool(rows))
    chosen = key
    if chosen is None:
        try:
            chosen = ledger.verifier_key()
        except CheckpointError:  # _meta_findings words it
            chosen = None
    sizes = sorted(s for s in (_size_of(n) for n in notes) if s is not None)
    claims: list[ConsistencyClaim] = []
    try:
        level_min = ledger.subtree_level_min()
    except LedgerError as error:  # an impossible recorded setting: the database was altered
        altered.append(Finding(None, str(error)))
        level_min = 1
    for old, new in zip(sizes, sizes[1:]):
        if new > ledger.size():
            continue
        try:
            claims.append(ConsistencyClaim(old, new, tuple(ledger.consistency_proof(old, new))))
        except LedgerError as error:  # e.g. a stored subtree hash or an entry was deleted
            claims.append(ConsistencyClaim(old, new, (), str(error)))
    chunks = (_read_ahead(ledger.raw_chunks()) if progress is None  # the store's lists
              else _chunked(progress(ledger.raw_rows(), ledger.size())))
    report = _verify_chunks(chunks, notes, chosen, stored_nodes=ledger.stored_nodes(),
                            claims=claims, trusted=trusted, level_min=level_min,
                            nodes_match=lambda by_level: _ledger_nodes_match(ledger, by_level))
    altered += _checkpoint_row_findings(rows, report.entries, lambda seq: ledger.entry(seq).time)
    report.findings.extend(altered)  # seq None: sorted last, as _verify_chunks does
    if key is None:
        report.notes.append("public key read from the database itself; pass --key to check "
                            "against a key you hold")
    return report


META_KEYS = frozenset({"subtree_level_min", "verifier_key"})


def _meta_findings(rows: Iterable[tuple[str, str]], key: VerifierKey | None,
                   has_checkpoints: bool) -> list[Finding]:
    """`ledger_meta` holds only the keys the store writes; its verifier key parses, is the
    one the reader holds, and exists once a checkpoint does. (subtree_level_min is bounded
    by the store and bound by the stored subtree hashes it selects.)"""
    findings: list[Finding] = []
    values = dict(rows)
    for unknown in sorted(values.keys() - META_KEYS):
        findings.append(Finding(None, f"ledger_meta holds key {unknown!r}, which the ledger "
                                      "never writes: database altered"))
    recorded = values.get("verifier_key")
    if recorded is None:
        if has_checkpoints:
            findings.append(Finding(None, "ledger_meta has no verifier_key although the ledger "
                                          "holds checkpoints: database altered"))
        return findings
    try:
        parsed = VerifierKey.parse(recorded)
    except CheckpointError as error:
        findings.append(Finding(None, f"ledger_meta's verifier_key does not parse ({error}): "
                                      "database altered"))
        return findings
    if key is not None and parsed != key:
        findings.append(Finding(None, f"ledger_meta's verifier_key {recorded} is not the key "
                                      f"you hold ({key.encode()})"))
    return findings


def _is_entry_time(text: str) -> bool:
    """True for a time exactly as `format_time` writes it (YYYY-MM-DDTHH:MM:SS.ffffffZ,
    UTC): read by `fromisoformat` and spelled again. (Not `strptime`: its first call in a
    process imports and compiles its parser, 2.4 ms, a sixth of verifying 10,000 entries.)"""
    if len(text) != TIME_LENGTH or not text.endswith("Z"):
        return False
    try:
        parsed = datetime.fromisoformat(text[:-1])
    except ValueError:
        return False
    return parsed.tzinfo is None and parsed.strftime(TIME_FORMAT) == text


def _checkpoint_row_findings(rows: Iterable[tuple[int, bytes, str, str]], verified: int,
                             entry_time: Callable[[int], Any]) -> list[Finding]:
    """Each checkpoint row's unsigned columns against its note: tree_size and root_hash
    must be the note's, and time a UTC time no earlier than the last entry it covers
    (`entry_time(seq)`, read only for entries the walk verified). Only the note is signed,
    so the time can be bounded, not proven. A note that does not parse is reported by the
    signature check."""
    findings: list[Finding] = []
    for tree_size, root_hash, note, time in rows:
        try:
            checkpoint = parse_note(note)[0]
        except CheckpointError:
            continue
        where = f"ledger_checkpoints row of the checkpoint at size {checkpoint.tree_size}"
        if tree_size != checkpoint.tree_size:
            findings.append(Finding(None, f"{where}: tree_size column says {tree_size}: "
                                          "database altered"))
        if root_hash != checkpoint.root_hash:
            findings.append(Finding(None, f"{where}: root_hash column {root_hash.hex()} is not "
                                          f"the signed root {checkpoint.root_hash.hex()}: "
                                          "database altered"))
        if not _is_entry_time(time):
            findings.append(Finding(None, f"{where}: time column {time!r} is not a UTC time: "
                                          "database altered"))
        elif 0 < checkpoint.tree_size <= verified:
            covered = entry_time(checkpoint.tree_size - 1)
            if isinstance(covered, str) and _is_entry_time(covered) and time < covered:
                findings.append(Finding(None, f"{where}: time column {time} is before entry "
                                              f"{checkpoint.tree_size - 1} ({covered}), the "
                                              "last it covers: database altered"))
    return findings


def export_lines(ledger: Any) -> Iterator[str]:
    """The ledger as JSON lines: a header, every entry, checkpoints, consistency proofs."""
    notes = ledger.checkpoints()
    key = ledger.verifier_key()
    yield json.dumps({"type": "header", "format": EXPORT_FORMAT, "size": ledger.size(),
                      "verifier_key": key.encode() if key else None})
    for seq, body, entry_hash in ledger.raw_rows():
        yield json.dumps({"type": "entry", "seq": seq, "body": body.decode("utf-8"),
                          "entry_hash": entry_hash.hex()}, ensure_ascii=False)
    for note in notes:
        yield json.dumps({"type": "checkpoint", "note": note}, ensure_ascii=False)
    sizes = sorted(s for s in (_size_of(n) for n in notes) if s is not None)
    for old, new in zip(sizes, sizes[1:]):
        yield json.dumps({"type": "consistency", "old_size": old, "new_size": new,
                          "proof": [p.hex() for p in ledger.consistency_proof(old, new)]})


def read_export(path: Path) -> tuple[dict[str, Any], list[tuple[int, bytes, bytes]], list[str],
                                     list[ConsistencyClaim]]:
    """The whole export in memory: header, entry rows, checkpoint notes, consistency claims.

    For small exports (fixtures, reconciliation); `verify_export` streams instead."""
    scan = scan_export(path)
    return scan.header, list(export_rows(path, scan)), scan.notes, scan.claims


# How `export_lines` writes an entry line (json.dumps' default separators): the first pass
# skips such lines without parsing them; the second parses them one at a time.
_ENTRY_PREFIX = '{"type": "entry"'


@dataclass
class ExportScan:
    """An export's first pass: everything but the entries, and where the entries are."""

    header: dict[str, Any]
    notes: list[str]
    claims: list[ConsistencyClaim]
    entries: int  # entry lines
    odd_entry_lines: set[int]  # entry lines not written as `export_lines` writes them


def _export_record(line: str, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or not isinstance(record["type"], str):
            raise TypeError("not a typed record")
        return record
    except (ValueError, KeyError, TypeError) as error:
        raise VerificationError(f"export line {number} is malformed: {error}") from None


def scan_export(path: Path) -> ExportScan:
    """Read the header, checkpoint notes and consistency proofs; count the entry lines
    (not decoded: `export_rows` reads them). Memory grows with checkpoints, not entries."""
    header: dict[str, Any] | None = None
    notes: list[str] = []
    claims: list[ConsistencyClaim] = []
    entries, odd = 0, set[int]()
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.startswith(_ENTRY_PREFIX):
                entries += 1
                continue
            record = _export_record(line, number)
            try:
                kind = record["type"]
                if kind == "header":
                    header = record
                elif kind == "entry":
                    entries += 1
                    odd.add(number)
                elif kind == "checkpoint":
                    notes.append(record["note"])
                elif kind == "consistency":
                    claims.append(ConsistencyClaim(int(record["old_size"]),
                                                   int(record["new_size"]),
                                                   tuple(bytes.fromhex(p) for p in record["proof"])))
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise VerificationError(f"export line {number} is malformed: {error}") from None
    if header is None or header.get("format") != EXPORT_FORMAT:
        raise VerificationError(f"not a ledger export of format {EXPORT_FORMAT}")
    return ExportScan(header, notes, claims, entries, odd)


def export_rows(path: Path, scan: ExportScan) -> Iterator[tuple[int, bytes, bytes]]:
    """The export's entries (seq, body, entry hash) in file order, one line at a time."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.startswith(_ENTRY_PREFIX) and number not in scan.odd_entry_lines:
                continue
            record = _export_record(line, number)
            try:
                if record["type"] != "entry":  # a prefix-shaped line with a second "type"
                    raise TypeError(f"an entry line of type {record['type']!r}")
                yield (int(record["seq"]), record["body"].encode("utf-8"),
                       bytes.fromhex(record["entry_hash"]))
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                raise VerificationError(f"export line {number} is malformed: {error}") from None


def verify_export(path: Path, key: VerifierKey | None = None, *,
                  trusted: Iterable[str] = (), progress: RowWrapper | None = None) -> Report:
    """Verify an export file offline, with only the file and the ledger's public key.

    Two passes over the file, memory bounded independently of the number of entries: the
    first reads the checkpoints and proofs (after the entries in the file, but the walk
    needs their sizes beforehand), the second streams the entries through the walk, whose
    Merkle state is a frontier of at most 64 subtree hashes.
    """
    scan = scan_export(path)
    header = scan.header
    chosen = key
    self_attested = False
    if chosen is None and header.get("verifier_key"):
        chosen = VerifierKey.parse(header["verifier_key"])
        self_attested = True
    rows = export_rows(path, scan)
    report = verify_stream(rows if progress is None else progress(rows, scan.entries), scan.notes, chosen,
                           claims=scan.claims, trusted=trusted)
    if report.entries == scan.entries and header.get("size") != scan.entries:
        report.findings.append(Finding(scan.entries, f"export header says {header.get('size')} "
                                                     f"entries but holds {scan.entries}"))
    if self_attested:
        report.notes.append("public key taken from the export itself; pass --key to check "
                            "against a key you hold")
    return report
