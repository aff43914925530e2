"""Thread fan-out for big-integer work: gmpy2 releases the GIL, so threads use every core."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import gmpy2

from kernel.errors import CryptoError
from kernel.security.constants import CHUNKS_PER_WORKER, MIN_ITEMS_PER_WORKER

T = TypeVar("T")
R = TypeVar("R")


def resolve_workers(workers: int | None) -> int:
    """The number of threads to use: `None` means one per core available to this process."""
    if workers is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not every platform has affinity masks
            return max(1, os.cpu_count() or 1)
    if workers < 1:
        raise CryptoError(f"workers must be at least 1, got {workers}")
    return workers


def _released(fn: Callable[[Sequence[T]], list[R]], chunk: Sequence[T]) -> list[R]:
    # The gmpy2 context is per thread: each worker opts in to releasing the GIL itself.
    with gmpy2.context(allow_release_gil=True):
        return fn(chunk)


def split_even(count: int, parts: int) -> list[tuple[int, int]]:
    """`parts` contiguous [start, stop) ranges covering range(count), sizes differing by <= 1."""
    parts = max(1, min(parts, count)) if count else 1
    base, extra = divmod(count, parts)
    ranges = []
    start = 0
    for i in range(parts):
        stop = start + base + (1 if i < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


def map_chunks(
    fn: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    workers: int | None,
    min_per_worker: int = MIN_ITEMS_PER_WORKER,
) -> list[R]:
    """Apply `fn` to contiguous chunks of `items` on threads; results come back in order.

    `fn` maps a chunk to a list of the same length (or any list: results are concatenated).
    """
    n_workers = min(resolve_workers(workers), max(1, len(items) // max(1, min_per_worker)))
    if n_workers <= 1:
        return _released(fn, items)
    # A few chunks per thread, so that a core slowed by other work does not hold up the rest.
    n_chunks = min(n_workers * CHUNKS_PER_WORKER, max(1, len(items) // max(1, min_per_worker)))
    chunks = [items[a:b] for a, b in split_even(len(items), n_chunks)]
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="weft-paillier") as pool:
        parts = list(pool.map(lambda chunk: _released(fn, chunk), chunks))
    out: list[R] = []
    for part in parts:
        out.extend(part)
    return out
