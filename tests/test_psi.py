"""ECDH PSI on X25519: commutative blinding and the same intersection on both sides."""

from __future__ import annotations

import numpy as np
import pytest

from kernel.errors import CryptoError
from kernel.security import psi
from kernel.security.psi import PsiBlinder, hash_ids, intersect_indices


def run_psi(ids_a: list[str], ids_b: list[str], workers: int = 1) -> tuple[set[str], set[str]]:
    """Both members' view of the intersection, with messages passed as arrays."""
    alice, bob = PsiBlinder(), PsiBlinder()
    a_once = alice.blind_ids(ids_a, workers)  # A -> B
    b_once = bob.blind_ids(ids_b, workers)  # B -> A
    a_twice = bob.blind(a_once, workers)  # B -> A (A's ids, both secrets)
    b_twice = alice.blind(b_once, workers)  # A -> B (B's ids, both secrets)
    found_a = intersect_indices(a_twice, b_twice)
    found_b = intersect_indices(b_twice, a_twice)
    return {ids_a[i] for i in found_a}, {ids_b[i] for i in found_b}


def test_blinding_commutes() -> None:
    # Prepare
    points = hash_ids(["alice", "bob", 7, b"raw"])
    a, b = PsiBlinder(), PsiBlinder()
    # Execute
    ab = a.blind(b.blind(points))
    ba = b.blind(a.blind(points))
    # Assert
    np.testing.assert_array_equal(ab, ba)
    assert not np.array_equal(a.blind(points), b.blind(points))


def test_int_and_text_ids_hash_alike() -> None:
    np.testing.assert_array_equal(hash_ids([42, np.int64(5)]), hash_ids(["42", "5"]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_both_sides_find_the_known_overlap(seed: int) -> None:
    # Prepare: random sets with a known common part
    rng = np.random.default_rng(seed)
    pool = [f"id-{v}" for v in rng.choice(10**9, size=900, replace=False)]
    common, only_a, only_b = pool[:200], pool[200:550], pool[550:]
    ids_a = list(rng.permutation(common + only_a))
    ids_b = list(rng.permutation(common + only_b))
    # Execute
    seen_a, seen_b = run_psi(ids_a, ids_b)
    # Assert
    assert seen_a == seen_b == set(common)


def test_process_pool_gives_the_same_points(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: lower the per-process threshold so that two processes share 300 points
    monkeypatch.setattr(psi, "PSI_MIN_ITEMS_PER_PROCESS", 100)
    blinder = PsiBlinder()
    points = hash_ids(range(300))
    # Execute
    pooled = blinder.blind(points, workers=2)
    # Assert
    np.testing.assert_array_equal(pooled, blinder.blind(points, workers=1))


def test_empty_and_disjoint_sets() -> None:
    assert run_psi([], ["x"]) == (set(), set())
    assert run_psi(["a", "b"], ["c"]) == (set(), set())


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        PsiBlinder(b"short")
    with pytest.raises(CryptoError, match="shape"):
        PsiBlinder().blind(np.zeros((3, 31), dtype=np.uint8))
    with pytest.raises(CryptoError, match="str, bytes or int"):
        hash_ids([1.5])
    with pytest.raises(CryptoError, match="low-order"):
        PsiBlinder().blind(np.zeros((1, 32), dtype=np.uint8))
