"""Population stability index: how far a population's shares over fixed bins moved from a reference.

PSI = sum over bins of (actual share - expected share) * ln(actual share / expected share).
A bin empty in one population counts as a share of 1e-4 there, so the index stays finite.
Readings users act on: below 0.1 stable, 0.1 to 0.25 a minor shift, from 0.25 a major shift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.computing import Table
from kernel.credit.bins import bin_index
from kernel.stats.columns import float_column
from kernel.stats.constants import PSI_EMPTY_SHARE

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

STABLE = "stable"
MINOR_SHIFT = "minor shift"
MAJOR_SHIFT = "major shift"


def shares(counts: Sequence[int] | IntArray) -> FloatArray:
    """Counts as shares of their total, empty bins at the floor share."""
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    result = array / total if total > 0 else np.zeros_like(array)
    return np.where(result > 0, result, PSI_EMPTY_SHARE)


def psi(expected: Sequence[int] | IntArray, actual: Sequence[int] | IntArray) -> tuple[float, FloatArray]:
    """The index and each bin's contribution to it."""
    e, a = shares(expected), shares(actual)
    parts = (a - e) * np.log(a / e)
    return float(parts.sum()), parts


def reading(value: float, stable_below: float, shift_below: float) -> str:
    """stable, minor shift or major shift."""
    if value < stable_below:
        return STABLE
    return MINOR_SHIFT if value < shift_below else MAJOR_SHIFT


def bin_counts(table: Table, edges: Mapping[str, Sequence[float]]) -> dict[str, IntArray]:
    """Rows per bin (missing bin last) of each column, merged across blocks."""
    plan = {name: np.asarray(e, dtype=np.float64) for name, e in edges.items()}

    def count(block: pa.Table) -> dict[str, IntArray]:
        return {name: np.bincount(bin_index(float_column(block, name), e), minlength=len(e) + 2).astype(np.int64)
                for name, e in plan.items()}

    result: dict[str, IntArray] = table.select(list(plan)).reduce(
        count, lambda x, y: {name: x[name] + y[name] for name in x})
    return result
