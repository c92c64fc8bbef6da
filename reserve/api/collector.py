"""The service's one rule for Python's cyclic garbage collector, while an app is serving.

A started worker holds a large heap of long-lived objects (imported modules, FastAPI's
routes and schemas, the read models' caches) that the collector would otherwise walk again
and again: with CPython's default thresholds (700, 10, 10) a write route under load ran a
full (oldest-generation) collection every second or so, each a pause of about 100 ms that
every request in flight waited out, which made most of the writes' p99 and cost a tenth
of their throughput (docs/benchmarks.md, "SQLite writes, fourth pass").

So, once an app has started, `serving()`:

- freezes what is alive then (`gc.freeze()`): start-up objects leave the collector's
  generations and are never walked again (they still free normally by reference count);
- raises the youngest generation's threshold to `YOUNG_THRESHOLD`: a request allocates
  and frees its objects by reference count, so a higher threshold runs fewer collections
  without letting garbage pile up (only reference cycles wait for one, a bounded count).

When the last app serving in the process stops, both are undone (`gc.unfreeze()`, the
thresholds as they were), so a process that starts many apps (the tests) does not keep
the frozen objects of apps long gone.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Net allocations of container objects between two young collections (CPython: 700).
YOUNG_THRESHOLD = 50_000

_LOCK = threading.Lock()
_serving = 0  # apps serving in this process (started, not stopped)
_thresholds_before: tuple[int, int, int] | None = None


@contextmanager
def serving() -> Iterator[None]:
    """The collector tuned as the module doc says while the block runs (an app's life)."""
    _start()
    try:
        yield
    finally:
        _stop()


def _start() -> None:
    global _serving, _thresholds_before
    with _LOCK:
        _serving += 1
        if _serving == 1:
            _thresholds_before = gc.get_threshold()
            young, middle, old = _thresholds_before
            gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
        gc.freeze()  # what this app built at start-up too


def _stop() -> None:
    global _serving, _thresholds_before
    with _LOCK:
        if _serving <= 0:
            raise RuntimeError("collector: stopped more often than started")
        _serving -= 1
        if _serving == 0:
            gc.unfreeze()
            if _thresholds_before is not None:
                gc.set_threshold(*_thresholds_before)
            _thresholds_before = None
