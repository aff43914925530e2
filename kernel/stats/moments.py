"""Mergeable moments of one column up to the fourth: count, mean, M2, M3, M4, min, max.

Each block computes its moments around its own mean; blocks (partitions, members) merge
with the pairwise formulas of Pébay (2008), so the result does not depend on how rows were
split. Skewness and kurtosis are reported as pandas reports them (the bias-corrected G1
and excess G2); the standard deviation is the sample one (n - 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kernel.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ColumnMoments:
    """Moments of the present values of one column and its count of missing values."""

    count: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    m3: float = 0.0
    m4: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    @classmethod
    def of_values(cls, values: FloatArray) -> ColumnMoments:
        """Moments of a float64 vector where NaN marks a missing value."""
        present = values[~np.isnan(values)]
        missing = int(values.size - present.size)
        if present.size == 0:
            return cls(missing=missing)
        if not np.isfinite(present).all():
            raise InvalidArgument("statistics: a column holds infinite values")
        mean = float(present.mean())
        deviation = present - mean
        squared = deviation * deviation
        return cls(
            count=int(present.size), missing=missing, mean=mean, m2=float(squared.sum()),
            m3=float((squared * deviation).sum()), m4=float((squared * squared).sum()),
            min=float(present.min()), max=float(present.max()),
        )

    def merge(self, other: ColumnMoments) -> ColumnMoments:
        """Moments of the union of both row sets."""
        na, nb = self.count, other.count
        n = na + nb
        if na == 0 or nb == 0:
            base = self if nb == 0 else other
            return ColumnMoments(base.count, self.missing + other.missing, base.mean, base.m2, base.m3, base.m4,
                                 min(self.min, other.min), max(self.max, other.max))
        delta = other.mean - self.mean
        delta_n = delta / n
        mean = self.mean + delta_n * nb
        m2 = self.m2 + other.m2 + delta * delta_n * na * nb
        m3 = (self.m3 + other.m3 + delta * delta_n * delta_n * na * nb * (na - nb)
              + 3.0 * delta_n * (na * other.m2 - nb * self.m2))
        m4 = (self.m4 + other.m4
              + delta * delta_n ** 3 * na * nb * (na * na - na * nb + nb * nb)
              + 6.0 * delta_n * delta_n * (na * na * other.m2 + nb * nb * self.m2)
              + 4.0 * delta_n * (na * other.m3 - nb * self.m3))
        return ColumnMoments(n, self.missing + other.missing, mean, m2, m3, m4,
                             min(self.min, other.min), max(self.max, other.max))

    @property
    def rows(self) -> int:
        return self.count + self.missing

    def variance(self) -> float | None:
        """Sample variance (n - 1), None below two values."""
        return self.m2 / (self.count - 1) if self.count > 1 else None

    def std(self) -> float | None:
        variance = self.variance()
        return math.sqrt(variance) if variance is not None else None

    def skewness(self) -> float | None:
        """Bias-corrected sample skewness (pandas' `skew`), None below three values, 0 when constant."""
        n = self.count
        if n < 3:
            return None
        if self.m2 <= 0.0:
            return 0.0
        g1 = math.sqrt(n) * self.m3 / self.m2 ** 1.5
        return float(g1 * math.sqrt(n * (n - 1)) / (n - 2))

    def kurtosis(self) -> float | None:
        """Bias-corrected excess kurtosis (pandas' `kurt`), None below four values, 0 when constant."""
        n = self.count
        if n < 4:
            return None
        if self.m2 <= 0.0:
            return 0.0
        g2 = n * self.m4 / (self.m2 * self.m2) - 3.0
        return ((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3))


TableMoments = dict[str, ColumnMoments]


def block_moments(columns: Mapping[str, FloatArray]) -> TableMoments:
    """Moments of every column of one block."""
    return {name: ColumnMoments.of_values(values) for name, values in columns.items()}


def merge_table_moments(a: TableMoments, b: TableMoments) -> TableMoments:
    """Moments of the union of two blocks' rows, column by column."""
    if list(a) != list(b):
        raise InvalidArgument(f"statistics: cannot merge moments of {list(a)} with {list(b)}")
    return {name: a[name].merge(b[name]) for name in a}
