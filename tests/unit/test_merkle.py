"""RFC 9162 Merkle tree: known vectors, a recursive reference, and attacked proofs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reserve.ledger import merkle

# Leaves and roots of the Certificate Transparency reference test vectors (RFC 6962 tree,
# identical hashing in RFC 9162), as used by transparency-dev/merkle and Trillian.
LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243",
                                     "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
ROOTS = {
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
INCLUSION_0_OF_8 = ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]
LEAF_HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]


# --- a reference that reads like the RFC (recursive, slow, obviously right) ---------------
def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return ref_path(m, leaves[:k]) + [ref_mth(leaves[k:])]
    return ref_path(m - k, leaves[k:]) + [ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [ref_mth(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return ref_subproof(m, leaves[:k], complete) + [ref_mth(leaves[k:])]
    return ref_subproof(m - k, leaves[k:], False) + [ref_mth(leaves[:k])]


def leaves_of(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle.root_hash([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_known_roots(size: int) -> None:
    assert merkle.root_hash(LEAF_HASHES[:size]).hex() == ROOTS[size]


def test_known_inclusion_proof() -> None:
    proof = merkle.inclusion_proof(LEAF_HASHES, 0)
    assert [p.hex() for p in proof] == INCLUSION_0_OF_8
    assert merkle.verify_inclusion(LEAF_HASHES[0], 0, 8, proof, bytes.fromhex(ROOTS[8]))


def test_matches_recursive_reference_for_every_small_tree() -> None:
    for n in range(1, 40):
        leaves = leaves_of(n)
        root = merkle.root_hash(leaves)
        assert root == ref_mth(leaves)
        for m in range(n):
            proof = merkle.inclusion_proof(leaves, m)
            assert proof == ref_path(m, leaves)
            assert merkle.verify_inclusion(leaves[m], m, n, proof, root)
        for old in range(1, n + 1):
            proof = merkle.consistency_proof(leaves, old)
            assert proof == ref_subproof(old, leaves, True)
            assert merkle.verify_consistency(old, n, merkle.root_hash(leaves[:old]), root, proof)


@given(st.integers(1, 300), st.data())
def test_property_proofs_verify_and_flips_fail(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    root = merkle.root_hash(leaves)
    m = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(leaves, m)
    assert merkle.verify_inclusion(leaves[m], m, n, proof, root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        flipped = list(proof)
        flipped[i] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b
                           for j, b in enumerate(proof[i]))
        assert not merkle.verify_inclusion(leaves[m], m, n, flipped, root)
        assert not merkle.verify_inclusion(leaves[m], m, n, proof[:-1], root)
        assert not merkle.verify_inclusion(leaves[m], m, n, [*proof, proof[0]], root)
        assert not merkle.verify_inclusion(leaves[m], m, n, list(reversed(proof)), root) \
            or proof == list(reversed(proof))
    other = data.draw(st.integers(0, n - 1))
    if other != m and leaves[other] != leaves[m]:
        assert not merkle.verify_inclusion(leaves[other], m, n, proof, root)
    old = data.draw(st.integers(1, n))
    cproof = merkle.consistency_proof(leaves, old)
    old_root = merkle.root_hash(leaves[:old])
    assert merkle.verify_consistency(old, n, old_root, root, cproof)
    if old < n:
        assert not merkle.verify_consistency(old, n, root, old_root, cproof)
        wrong_root = hashlib.sha256(old_root).digest()
        assert not merkle.verify_consistency(old, n, wrong_root, root, cproof)
        if cproof:
            assert not merkle.verify_consistency(old, n, old_root, root, cproof[1:])


@given(st.integers(2, 300), st.data())
def test_property_consistency_flips_and_lengths_fail(n: int, data: st.DataObject) -> None:
    leaves = leaves_of(n)
    root = merkle.root_hash(leaves)
    old = data.draw(st.integers(1, n - 1))
    old_root = merkle.root_hash(leaves[:old])
    proof = merkle.consistency_proof(leaves, old)
    assert proof == ref_subproof(old, leaves, True)
    i = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    flipped = list(proof)
    flipped[i] = bytes(b ^ (1 << (bit % 8)) if j == bit // 8 else b
                       for j, b in enumerate(proof[i]))
    assert not merkle.verify_consistency(old, n, old_root, root, flipped)
    assert not merkle.verify_consistency(old, n, old_root, root, proof[:-1])
    assert not merkle.verify_consistency(old, n, old_root, root, [*proof, proof[0]])
    assert not merkle.verify_consistency(old, n, old_root, root, [old_root, *proof])


def test_sorted_pair_hashing_is_not_accepted() -> None:
    # A tree built with sorted pairs (as some libraries do) must not verify as RFC 9162.
    leaves = leaves_of(2)
    swapped = hashlib.sha256(b"\x01" + leaves[1] + leaves[0]).digest()
    assert merkle.root_hash(leaves) != swapped
    assert not merkle.verify_inclusion(leaves[0], 0, 2, [leaves[1]], swapped)


@pytest.mark.parametrize(("index", "size"), [(-1, 4), (4, 4), (0, 0)])
def test_inclusion_bounds(index: int, size: int) -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_path(index, size, lambda b, e: b"")
    assert not merkle.verify_inclusion(bytes(32), index, size, [], bytes(32))


def test_consistency_edge_cases() -> None:
    leaves = leaves_of(5)
    root = merkle.root_hash(leaves)
    assert merkle.consistency_proof(leaves, 5) == []
    assert merkle.verify_consistency(5, 5, root, root, [])
    assert not merkle.verify_consistency(5, 5, root, bytes(32), [])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, root, [])
    assert not merkle.verify_consistency(6, 5, root, root, [])
    with pytest.raises(ValueError):
        merkle.consistency_proof(leaves, 6)


def test_perfect_subtrees_cover_range_exactly() -> None:
    for begin, end in [(0, 1), (0, 7), (4, 7), (8, 13), (0, 1 << 20), (6, 7)]:
        parts = merkle.perfect_subtrees(begin, end)
        covered = [(i << level, (i + 1) << level) for level, i in parts]
        assert covered[0][0] == begin and covered[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(covered, covered[1:]))
