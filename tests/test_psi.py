"""ECDH PSI on X25519: commutative blinding and the same intersection on both sides."""

from __future__ import annotations

import threading

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


def test_many_chunks_from_two_threads_at_once_match_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: small chunks so that each call hands the kept processes many of them
    monkeypatch.setattr(psi, "PSI_MIN_ITEMS_PER_PROCESS", 100)
    monkeypatch.setattr(psi, "PSI_CHUNK_POINTS", 37)
    alice, bob = PsiBlinder(), PsiBlinder()
    ids_a, ids_b = [f"a{i}" for i in range(700)], [f"b{i}" for i in range(500)]
    results: dict[str, np.ndarray] = {}

    def blind(name: str, blinder: PsiBlinder, ids: list[str]) -> None:
        results[name] = blinder.blind_ids(ids, workers=2)

    # Execute: both members' chunks interleave on the same worker processes
    threads = [threading.Thread(target=blind, args=("a", alice, ids_a)),
               threading.Thread(target=blind, args=("b", bob, ids_b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Assert
    np.testing.assert_array_equal(results["a"], alice.blind_ids(ids_a, workers=1))
    np.testing.assert_array_equal(results["b"], bob.blind_ids(ids_b, workers=1))


def test_a_low_order_point_in_a_worker_process_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psi, "PSI_MIN_ITEMS_PER_PROCESS", 100)
    points = hash_ids(range(300)).copy()
    points[250] = 0
    with pytest.raises(CryptoError, match="low-order"):
        PsiBlinder().blind(points, workers=2)


def test_points_sharing_a_prefix_are_told_apart() -> None:
    # Prepare: peer points that agree with own points on the first 8 bytes only, and two
    # peer points with one prefix, only the second of which is a real match
    rng = np.random.default_rng(5)
    own = rng.integers(0, 256, size=(6, 32), dtype=np.uint8)
    peer = own.copy()
    peer[[1, 3], 8:] ^= 1  # same prefix, different point
    twin = own[4].copy()
    twin[31] ^= 0xFF
    peer = np.vstack([peer, twin[None, :]])
    peer[[4, 6]] = peer[[6, 4]]  # the impostor now sorts first among the two with that prefix
    # Execute
    found = intersect_indices(own, peer)
    # Assert
    np.testing.assert_array_equal(found, [0, 2, 4, 5])
    assert intersect_indices(own[:0], peer).size == 0 and intersect_indices(own, peer[:0]).size == 0
