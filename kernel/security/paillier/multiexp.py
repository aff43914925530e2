"""Multi-exponentiation prod_i c_i**x_ij mod m for every column j (Pippenger bucket method)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import gmpy2
import numpy as np
import numpy.typing as npt
from gmpy2 import mpz

from kernel.security.constants import (
    MULTIEXP_INVERSION_COST,
    MULTIEXP_PROCESS_MIN_TERMS,
    MULTIEXP_ROW_BLOCK,
)
from kernel.security.paillier.parallel import map_chunks, resolve_workers, split_even
from kernel.security.processes import SHARED_PROCESSES

IntArray = npt.NDArray[np.int64]


class Plan(NamedTuple):
    """How to run one block: `merged` precomputes powers and uses one bucket pass."""

    merged: bool
    window_bits: int
    windows: int


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def choose_plan(rows: int, columns: int, exponent_bits: int) -> Plan:
    """The cheapest plan by a count of modular multiplications.

    windowed: per column and window, one product per row plus two bucket aggregations (one
      per sign) and c squarings; no precomputation.
    merged: base**(2**(c*t)) and its inverse precomputed for every row and window t (shared
      by all columns), signed digits, then per column one product per nonzero digit and a
      single aggregation over 2**(c-1) buckets.
    """
    best: tuple[int, Plan] | None = None
    for c in range(1, 21):
        w = _ceil_div(exponent_bits, c)
        cost = columns * (w * (rows + 2 * (1 << c)) + 2 * c * w)
        if best is None or cost < best[0]:
            best = (cost, Plan(False, c, w))
        w = _ceil_div(exponent_bits + 1, c)
        cost = columns * (rows * w + (1 << c)) + 2 * rows * c * (w - 1) + MULTIEXP_INVERSION_COST * rows
        if cost < best[0]:
            best = (cost, Plan(True, c, w))
    return best[1] if best is not None else Plan(False, 1, exponent_bits)


def bucket_product(
    sources: Sequence[mpz], buckets: IntArray, indices: IntArray, modulus: mpz
) -> mpz:
    """prod over v of (prod of sources[indices[k]] with buckets[k] == v) ** v, for v >= 1."""
    keep = buckets > 0
    if not np.any(keep):
        return mpz(1)
    b = buckets[keep]
    order = np.argsort(-b, kind="stable")
    b_sorted = b[order]
    idx_sorted = indices[keep][order].tolist()
    values, starts = np.unique(-b_sorted, return_index=True)  # ascending in -v = descending v
    values_l = (-values).tolist()
    bounds = starts.tolist() + [len(idx_sorted)]
    running = mpz(1)
    total = mpz(1)
    for g, v in enumerate(values_l):
        start, stop = bounds[g], bounds[g + 1]
        acc = sources[idx_sorted[start]]
        for k in range(start + 1, stop):
            acc = acc * sources[idx_sorted[k]] % modulus
        running = running * acc % modulus
        gap = v - (values_l[g + 1] if g + 1 < len(values_l) else 0)
        step = running if gap == 1 else gmpy2.powmod(running, gap, modulus)
        total = total * step % modulus
    return total


def _digits(magnitudes: npt.NDArray[np.uint64], c: int, w: int) -> IntArray:
    """Unsigned base-2**c digits, shape (w, *magnitudes.shape)."""
    mask = np.uint64((1 << c) - 1)
    return np.stack(
        [((magnitudes >> np.uint64(c * t)) & mask).astype(np.int64) for t in range(w)]
    )


def _signed_digits(magnitudes: npt.NDArray[np.uint64], c: int, w: int) -> IntArray:
    """Signed digits in [-(2**(c-1) - 1), 2**(c-1)], shape (w, *magnitudes.shape)."""
    unsigned = _digits(magnitudes, c, w)
    half = 1 << (c - 1)
    carry = np.zeros(magnitudes.shape, dtype=np.int64)
    for t in range(w):
        d = unsigned[t] + carry
        carry = (d > half).astype(np.int64)
        unsigned[t] = d - (carry << c)
    return unsigned


def _windowed_block(
    bases: list[mpz], exponents: IntArray, modulus: mpz, plan: Plan, workers: int | None
) -> list[mpz]:
    rows, columns = exponents.shape
    c, w = plan.window_bits, plan.windows
    magnitudes = np.abs(exponents).astype(np.uint64)
    digits = _digits(magnitudes, c, w)  # (w, rows, columns)
    negative = exponents < 0
    row_index = np.arange(rows, dtype=np.int64)
    shift = mpz(1) << c

    def run(cols: Sequence[int]) -> list[mpz]:
        out = []
        for j in cols:
            neg = negative[:, j]
            acc_pos, acc_neg = mpz(1), mpz(1)
            for t in range(w - 1, -1, -1):
                if t != w - 1:
                    acc_pos = gmpy2.powmod(acc_pos, shift, modulus)
                    acc_neg = gmpy2.powmod(acc_neg, shift, modulus)
                d = digits[t, :, j]
                acc_pos = acc_pos * bucket_product(bases, np.where(neg, 0, d), row_index, modulus) % modulus
                if neg.any():
                    acc_neg = acc_neg * bucket_product(bases, np.where(neg, d, 0), row_index, modulus) % modulus
            if acc_neg != 1:
                acc_pos = acc_pos * gmpy2.invert(acc_neg, modulus) % modulus
            out.append(acc_pos)
        return out

    return map_chunks(run, range(columns), workers, min_per_worker=1)


def _merged_block(
    bases: list[mpz], exponents: IntArray, modulus: mpz, plan: Plan, workers: int | None
) -> list[mpz]:
    rows, columns = exponents.shape
    c, w = plan.window_bits, plan.windows
    step = mpz(1) << c

    def inverses(chunk: Sequence[mpz]) -> list[mpz]:
        return list(gmpy2.powmod_base_list(list(chunk), -1, modulus))

    def raise_step(chunk: Sequence[mpz]) -> list[mpz]:
        return list(gmpy2.powmod_base_list(list(chunk), step, modulus))

    # sources[(s * w + t) * rows + i] = base_i ** ((-1)**s * 2**(c*t))
    levels_pos = [bases]
    levels_neg = [map_chunks(inverses, bases, workers)]
    for _ in range(1, w):
        levels_pos.append(map_chunks(raise_step, levels_pos[-1], workers))
        levels_neg.append(map_chunks(raise_step, levels_neg[-1], workers))
    sources: list[mpz] = []
    for level in levels_pos + levels_neg:
        sources.extend(level)
    magnitudes = np.abs(exponents).astype(np.uint64)
    digits = _signed_digits(magnitudes, c, w)  # (w, rows, columns)
    sign = np.where(exponents < 0, -1, 1).astype(np.int64)
    window_offset = (np.arange(w, dtype=np.int64) * rows)[:, None]
    row_index = np.arange(rows, dtype=np.int64)[None, :]

    def run(cols: Sequence[int]) -> list[mpz]:
        out = []
        for j in cols:
            eff = digits[:, :, j] * sign[None, :, j]  # (w, rows)
            index = (np.where(eff < 0, w * rows, 0) + window_offset + row_index).ravel()
            out.append(bucket_product(sources, np.abs(eff).ravel(), index, modulus))
        return out

    return map_chunks(run, range(columns), workers, min_per_worker=1)


def _columns_in_one_process(bases: list[mpz], exponents: IntArray, modulus: mpz) -> list[mpz]:
    return multi_exponentiate(bases, exponents, modulus, workers=1)


def multi_exponentiate(
    bases: Sequence[mpz], exponents: IntArray, modulus: mpz, workers: int | None = None
) -> list[mpz]:
    """prod_i bases[i] ** exponents[i, j] mod modulus for each column j.

    Exponents are int64 and may be negative (the base's inverse is used, never a
    modulus-sized exponent). The modulus must be such that every base is invertible.
    With several workers and at least MULTIEXP_PROCESS_MIN_TERMS terms the columns are
    split over worker processes (threads for smaller products).
    """
    if exponents.ndim != 2 or exponents.shape[0] != len(bases):
        raise ValueError(
            f"exponents must have shape ({len(bases)}, columns), got {exponents.shape}"
        )
    rows, columns = exponents.shape
    processes = min(resolve_workers(workers), columns)
    if processes > 1 and rows * columns >= MULTIEXP_PROCESS_MIN_TERMS:
        pool = SHARED_PROCESSES.pool(processes)
        base_list = list(bases)
        futures = [
            pool.submit(_columns_in_one_process, base_list, np.ascontiguousarray(exponents[:, a:b]), modulus)
            for a, b in split_even(columns, processes)
        ]
        return [value for future in futures for value in future.result()]
    result = [mpz(1)] * columns
    n_blocks = max(1, _ceil_div(rows, MULTIEXP_ROW_BLOCK))
    block_rows = max(1, _ceil_div(rows, n_blocks))
    for start in range(0, rows, block_rows):
        block = exponents[start : start + block_rows]
        bits = int(np.abs(block).max()).bit_length() if block.size else 0
        if bits == 0:
            continue
        block_bases = list(bases[start : start + block_rows])
        plan = choose_plan(block.shape[0], columns, bits)
        runner = _merged_block if plan.merged else _windowed_block
        partial = runner(block_bases, np.ascontiguousarray(block), modulus, plan, workers)
        result = [a * b % modulus for a, b in zip(result, partial, strict=True)]
    return result
