"""The rows a member trains on: the feature matrix and the quantile bins of each feature.

These work on one block of rows (or on the sample bins are cut from); `rows` applies them
where the rows are."""

from __future__ import annotations

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


def sample_features(count: int, fraction: float, rng: np.random.Generator) -> IntArray:
    """The sorted indices of round(fraction * count) features (at least one), drawn without replacement."""
    if count == 0 or fraction >= 1.0:
        return np.arange(count, dtype=np.int64)
    keep = max(1, int(round(fraction * count)))
    return np.sort(rng.choice(count, size=keep, replace=False)).astype(np.int64)
