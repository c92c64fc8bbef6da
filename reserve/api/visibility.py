"""Which ledger entries a custodian may see: those that concern only their own vaults.

Entries name the vault they concern under the key `vault` (or `vault_id`, or a list under
`vaults`), at any depth of the payload (a proposal document nested in an entry counts).
An entry that names a vault outside the custodian's set is hidden in full, so no field of
another vault's entry reaches them; entries that name no vault (ledger notes, anchors) are
visible to all. The scan is bounded in depth and in nodes visited; an entry too deep or too
large to scan is treated as naming an unknown vault and hidden.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

VAULT_KEYS = ("vault", "vault_id")
VAULT_LIST_KEYS = ("vaults",)
DEPTH_MAX = 12
NODES_MAX = 20_000
UNKNOWN_VAULT = "\x00unknown"


def vaults_named(payload: Any) -> frozenset[str]:
    """Every vault id the payload names (UNKNOWN_VAULT if it is too deep or too big)."""
    found: set[str] = set()
    stack: list[tuple[Any, int]] = [(payload, 0)]
    visited = 0
    while stack:
        value, depth = stack.pop()
        visited += 1
        if depth > DEPTH_MAX or visited > NODES_MAX:
            return frozenset({UNKNOWN_VAULT})
        if isinstance(value, dict):
            for key, item in value.items():
                if key in VAULT_KEYS and isinstance(item, str):
                    found.add(item)
                elif key in VAULT_LIST_KEYS and isinstance(item, list):
                    found.update(v for v in item if isinstance(v, str))
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return frozenset(found)


def visible_to(payload: Any, member_vaults: Iterable[str]) -> bool:
    """True when every vault the payload names is one of `member_vaults`."""
    return vaults_named(payload) <= frozenset(member_vaults)
