"""Where the ledger finds its native core (`_native.c`): one place decides whether it is built.

`core` is the compiled module, or None when the build had no C compiler or no OpenSSL
headers; every caller then runs its pure-Python loop, which gives the same answers (the
tests compare the two) at a fraction of the speed. `scripts/setup.sh` builds the core and
tests/unit/test_native.py fails when it is missing, so a test run never silently measures
or exercises only the fallback.
"""

from __future__ import annotations

from types import ModuleType

core: ModuleType | None
try:
    from reserve.ledger import _native as core
except ImportError:  # pragma: no cover - exercised only on a machine without a compiler
    core = None
