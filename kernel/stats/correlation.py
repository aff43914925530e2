"""Pearson correlation of one member's columns from co-moments merged across blocks.

Each block gives its row count, column means and the matrix of summed products of
deviations; blocks merge with Chan's pairwise update (C = Ca + Cb + d d^T na nb / n), so the
matrix is exact whatever the partitioning and only p x p numbers reach the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.computing import Table
from kernel.errors import InvalidArgument
from kernel.stats.columns import float_columns

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CoMoments:
    rows: int
    mean: FloatArray
    products: FloatArray

    def merge(self, other: CoMoments) -> CoMoments:
        n = self.rows + other.rows
        if self.rows == 0 or other.rows == 0:
            return self if other.rows == 0 else other
        delta = other.mean - self.mean
        mean = self.mean + delta * other.rows / n
        products = self.products + other.products + np.outer(delta, delta) * self.rows * other.rows / n
        return CoMoments(n, mean, products)

    def correlation(self) -> FloatArray:
        """The Pearson matrix; a constant column correlates 0 with the others (1 with itself)."""
        spread = np.sqrt(np.diag(self.products))
        safe = np.where(spread > 0, spread, 1.0)
        matrix = self.products / np.outer(safe, safe)
        matrix[spread == 0, :] = 0.0
        matrix[:, spread == 0] = 0.0
        np.fill_diagonal(matrix, 1.0)
        result: FloatArray = np.clip(matrix, -1.0, 1.0)
        return result


def block_comoments(block: pa.Table, columns: Sequence[str], what: str) -> CoMoments:
    matrix = np.column_stack([v for v in float_columns(block, columns).values()]) if columns else \
        np.zeros((block.num_rows, 0))
    if np.isnan(matrix).any():
        raise InvalidArgument(f"{what}: the columns have missing values; fill them first (FillMissing)")
    if not len(matrix):
        return CoMoments(0, np.zeros(len(columns)), np.zeros((len(columns), len(columns))))
    mean = matrix.mean(axis=0)
    deviation = matrix - mean
    return CoMoments(len(matrix), mean, deviation.T @ deviation)


def table_comoments(table: Table, columns: Sequence[str], what: str) -> CoMoments:
    """The co-moments of `columns` over every row of `table` (rows, means, summed products)."""
    names = list(columns)
    merged: CoMoments = table.select(names).reduce(lambda block: block_comoments(block, names, what),
                                                   lambda a, b: a.merge(b))
    return merged
