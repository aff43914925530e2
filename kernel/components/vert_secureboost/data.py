"""The rows a member trains on: the feature matrix and the quantile bins of each feature.

These work on one block of rows (or on the sample bins are cut from); `rows` applies them
where the rows are."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.features import feature_matrix as shared_feature_matrix

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# Bin indices are stored in 16 bits (max_bin is at most 1024): a quarter of int64's memory.
BinArray = npt.NDArray[np.uint16]


def feature_matrix(rows: pa.Table, features: list[str]) -> FloatArray:
    """The features of `rows` as a float matrix; a missing value is refused, naming the feature."""
    return shared_feature_matrix(rows, features, "VertSecureBoost")



def bin_thresholds(values: FloatArray, max_bin: int) -> FloatArray:
    """Increasing thresholds cutting `values` into at most `max_bin` bins.

    Few distinct values: the midpoints between them; otherwise the quantiles at
    1/max_bin, ..., (max_bin-1)/max_bin (the same rule as scikit-learn's histogram boosting).
    Bin b holds thresholds[b-1] < x <= thresholds[b].
    """
    distinct = np.unique(values)
    if len(distinct) <= 1:
        return np.zeros(0)
    if len(distinct) <= max_bin:
        return (distinct[:-1] + distinct[1:]) / 2.0
    levels = np.linspace(0.0, 100.0, max_bin + 1)[1:-1]
    thresholds: FloatArray = np.unique(np.percentile(values, levels, method="averaged_inverted_cdf"))
    return thresholds


def fit_bins(matrix: FloatArray, max_bin: int) -> list[FloatArray]:
    """The thresholds of every column of `matrix`."""
    return [bin_thresholds(matrix[:, j], max_bin) for j in range(matrix.shape[1])]


def bin_matrix(matrix: FloatArray, thresholds: list[FloatArray]) -> BinArray:
    """Bin index of every value: the number of thresholds strictly below it."""
    binned = np.empty(matrix.shape, dtype=np.uint16)
    for j, cuts in enumerate(thresholds):
        binned[:, j] = np.searchsorted(cuts, matrix[:, j], side="left")
    return binned


def bin_counts(thresholds: list[FloatArray]) -> IntArray:
    """Number of bins of every feature."""
    return np.array([len(cuts) + 1 for cuts in thresholds], dtype=np.int64)


_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finalizer, element-wise (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    result: npt.NDArray[np.uint64] = x ^ (x >> np.uint64(31))
    return result


def row_draws(seed: int, tree: int, index: IntArray) -> FloatArray:
    """A uniform draw in [0, 1) for every row index of `index`, a hash of (seed, tree, row index):
    the same wherever the row is, so drawing a tree's rows needs no permutation of all of them."""
    key = _mix(np.array([seed % (1 << 64)], dtype=np.uint64) + _GOLDEN)
    key = _mix(key ^ np.array([tree % (1 << 64)], dtype=np.uint64))
    mixed = _mix(np.asarray(index, dtype=np.int64).astype(np.uint64) * _GOLDEN + key)
    draws: FloatArray = np.ldexp((mixed >> np.uint64(11)).astype(np.float64), -53)
    return draws


def sample_features(count: int, fraction: float, rng: np.random.Generator) -> IntArray:
    """The sorted indices of round(fraction * count) features (at least one), drawn without replacement."""
    if count == 0 or fraction >= 1.0:
        return np.arange(count, dtype=np.int64)
    keep = max(1, int(round(fraction * count)))
    return np.sort(rng.choice(count, size=keep, replace=False)).astype(np.int64)
