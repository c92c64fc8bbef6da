"""RFC 9162 (Certificate Transparency 2.0) Merkle trees, section 2.1, as pure functions.

The public functions take a sequence of leaf hashes, exactly as the outside test vectors
use them. The proof algorithms are written once, against a `RangeHash` callable that
returns MTH(D[begin:end]); the in-memory functions pass one that hashes leaves, and the
store-backed log passes one that composes stored perfect-subtree hashes, so both produce
proofs by the very same code. Hashing keeps left/right order (never sorted pairs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

RangeHash = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly smaller than size. Requires size >= 2."""
    if size < 2:
        raise ValueError(f"split point needs size >= 2, got {size}")
    return 1 << ((size - 1).bit_length() - 1)


def fold_frontier(frontier: Sequence[bytes]) -> bytes:
    """Root of a tree from its perfect subtrees' roots, largest (leftmost) first.

    The rightmost (smallest) subtrees combine first, which is what RFC 9162's recursive
    definition yields for a tree that is not a power of two.
    """
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the tree with these leaf hashes; SHA-256 of the empty string for no leaves."""
    frontier: list[bytes] = []
    levels: list[int] = []
    for index, leaf in enumerate(leaf_hashes):
        carry, level = leaf, 0
        while index & (1 << level):
            carry = node_hash(frontier.pop(), carry)
            levels.pop()
            level += 1
        frontier.append(carry)
        levels.append(level)
    return fold_frontier(frontier)


def inclusion_path(index: int, size: int, range_hash: RangeHash) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1. Requires 0 <= index < size."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} not in tree of size {size}")
    path: list[bytes] = []
    begin, end, m = 0, size, index
    while end - begin > 1:  # bounded: the range halves at least every step
        k = split_point(end - begin)
        if m < k:
            path.append(range_hash(begin + k, end))
            end = begin + k
        else:
            path.append(range_hash(begin, begin + k))
            begin, m = begin + k, m - k
    path.reverse()
    return path


def consistency_path(old_size: int, new_size: int, range_hash: RangeHash) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1. Requires 0 <= old_size <= new_size.

    The proof between an empty tree or equal sizes is empty.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    path: list[bytes] = []
    begin, end, m, complete = 0, new_size, old_size, True
    while m != end - begin:  # bounded: the range shrinks every step
        k = split_point(end - begin)
        if m <= k:
            path.append(range_hash(begin + k, end))
            end = begin + k
        else:
            path.append(range_hash(begin, begin + k))
            begin, m, complete = begin + k, m - k, False
    if not complete:
        path.append(range_hash(begin, end))
    path.reverse()
    return path


def _leaf_range_hash(leaf_hashes: Sequence[bytes]) -> RangeHash:
    def range_hash(begin: int, end: int) -> bytes:
        return root_hash(leaf_hashes[begin:end])

    return range_hash


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf `index` in the tree of all `leaf_hashes`."""
    return inclusion_path(index, len(leaf_hashes), _leaf_range_hash(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Consistency proof from the first `old_size` leaves to all of `leaf_hashes`."""
    return consistency_path(old_size, len(leaf_hashes), _leaf_range_hash(leaf_hashes))


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


# --- verification, from small helpers (after transparency-dev/merkle proof/verify.go) -----
#
# An audit path for leaf `index` in a tree of `size` leaves splits in two parts. The inner
# part climbs from the leaf to where its path meets the path of the last leaf, size - 1:
# there each step's side is the matching bit of `index`. The border part climbs the tree's
# right border from there, where every sibling stands on the left. A consistency proof from
# size m is the upper part of the audit path for leaf m - 1, so both verifiers chain the
# same two parts.

def _inner_proof_size(index: int, size: int) -> int:
    """Levels below the point where the paths to `index` and `size - 1` join.

    Requires 0 <= index < size.
    """
    return (index ^ (size - 1)).bit_length()


def _decompose_inclusion_proof(index: int, size: int) -> tuple[int, int]:
    """Lengths (inner, border) of the audit path for leaf `index` of a tree of `size`.

    Their sum is the one length a valid audit path has. Requires 0 <= index < size.
    """
    inner = _inner_proof_size(index, size)
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash of the subtree above `seed`, at `index` on its level, climbed by `proof`.

    `proof` runs from the lowest level up; bit i of `index` tells whether the sibling at
    step i is on the right (0) or on the left (1).
    """
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(sibling, seed)
        else:
            seed = node_hash(seed, sibling)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like `_chain_inner`, but only the left siblings count.

    The result is the hash of that subtree as it was before the leaves to the right of the
    path were added: the older tree's view of it.
    """
    for level, sibling in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Climb the right border: every sibling in `proof` is a left subtree."""
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def _root_from_inclusion_proof(leaf_hash: bytes, index: int, size: int,
                               proof: Sequence[bytes]) -> bytes | None:
    """The root that `proof` yields for leaf `index`, or None when its length is wrong.

    Requires 0 <= index < size.
    """
    inner, border = _decompose_inclusion_proof(index, size)
    if len(proof) != inner + border:
        return None
    return _chain_border_right(_chain_inner(leaf_hash, proof[:inner], index), proof[inner:])


def _root_from_consistency_proof(old_size: int, new_size: int, old_root: bytes,
                                 proof: Sequence[bytes]) -> bytes | None:
    """The new tree's root that `proof` yields, or None when it does not rebuild `old_root`.

    Requires 0 < old_size < new_size.
    """
    inner, border = _decompose_inclusion_proof(old_size - 1, new_size)
    shift = (old_size & -old_size).bit_length() - 1  # trailing zero bits of old_size
    inner -= shift  # the levels below `shift` lie inside one perfect subtree of both trees
    # The proof starts with the root of the perfect subtree of 2**shift leaves that holds
    # leaf old_size - 1, unless that subtree is the whole old tree: then old_root is it.
    seed, rest = (old_root, proof) if old_size == 1 << shift else (proof[0], proof[1:])
    if len(rest) != inner + border:
        return None
    index = (old_size - 1) >> shift
    old = _chain_border_right(_chain_inner_right(seed, rest[:inner], index), rest[inner:])
    if old != old_root:
        return None
    return _chain_border_right(_chain_inner(seed, rest[:inner], index), rest[inner:])


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 2.1.3.2: does `proof` show leaf `index` with `leaf_hash` under `root`?

    False, never an exception, for anything that does not: an index outside the tree, a
    hash that is not 32 bytes, a proof longer than 64 hashes or of the wrong length.
    """
    if not (0 <= index < tree_size) or not _is_hash(leaf_hash) or not _is_hash(root):
        return False
    if not all(_is_hash(p) for p in proof) or len(proof) > 64:
        return False
    return _root_from_inclusion_proof(leaf_hash, index, tree_size, proof) == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: is the tree of `old_size` a prefix of the tree of `new_size`?

    False, never an exception, for anything that does not show it: sizes out of order, a
    hash that is not 32 bytes, a proof longer than 128 hashes or of the wrong length. Equal
    sizes need an empty proof and equal roots; from the empty tree the proof is empty (any
    tree extends it).
    """
    if not _is_hash(old_root) or not _is_hash(new_root) or not 0 <= old_size <= new_size:
        return False
    if not all(_is_hash(p) for p in proof) or len(proof) > 128:
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if old_size == 0:
        return len(proof) == 0
    if not proof:
        return False
    return _root_from_consistency_proof(old_size, new_size, old_root, proof) == new_root


def perfect_subtrees(begin: int, end: int) -> list[tuple[int, int]]:
    """Decompose D[begin:end] into maximal aligned perfect subtrees, left to right.

    Returns (level, index) pairs: the subtree at `level` with `index` covers leaves
    [index << level, (index + 1) << level). Requires 0 <= begin < end and that D[begin:end]
    is a range RFC 9162's recursion produces (begin aligned to a power of two >= end-begin's
    split), which every range passed to a RangeHash is.
    """
    if not 0 <= begin < end:
        raise ValueError(f"empty or negative range [{begin}, {end})")
    parts: list[tuple[int, int]] = []
    position = begin
    while position < end:  # bounded: at most 2 * 64 iterations
        level = (position & -position).bit_length() - 1 if position else 63
        while position + (1 << level) > end:
            level -= 1
        parts.append((level, position >> level))
        position += 1 << level
    return parts
