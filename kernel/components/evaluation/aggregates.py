"""Regression and multiclass metrics of a distributed table from aggregates: no row reaches the driver.

Regression: each partition reports its row count, the means and summed squared deviations
of y_true and of the residual (merged across partitions with Chan's update), the sums of
squared and absolute residuals, and the lowest and highest y_true and residual (so that a
constant column has a variance of exactly 0, as on gathered rows). MSE, MAE, RMSE, R2 and
explained variance follow exactly (to float rounding) from these; none needs an order
statistic. Multiclass: each partition counts its (true, predicted) label pairs; the
confusion counts, of size classes x classes, give every metric. The numbers are those of
`metrics.regression_metrics` and `metrics.multiclass_metrics` on the pooled rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.components.evaluation.metrics import (
    _NUMERIC_KINDS,
    _class_labels,
    _explained_fraction,
    multiclass_from_confusion,
)
from kernel.computing import Table
from kernel.errors import InvalidArgument
from kernel.stats.columns import is_numeric

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Spread:
    """Row count, mean, summed squared deviation, lowest and highest value of one column."""

    rows: int
    mean: float
    squares: float
    low: float
    high: float

    @staticmethod
    def of(values: FloatArray) -> Spread:
        if not len(values):
            return Spread(0, 0.0, 0.0, np.inf, -np.inf)
        mean = float(values.mean())
        return Spread(len(values), mean, float(((values - mean) ** 2).sum()), float(values.min()), float(values.max()))

    def merge(self, other: Spread) -> Spread:
        if self.rows == 0 or other.rows == 0:
            return self if other.rows == 0 else other
        rows = self.rows + other.rows
        delta = other.mean - self.mean
        return Spread(rows, self.mean + delta * other.rows / rows,
                      self.squares + other.squares + delta * delta * self.rows * other.rows / rows,
                      min(self.low, other.low), max(self.high, other.high))

    def variance(self) -> float:
        """The population variance; exactly 0 when every value is the same."""
        return 0.0 if self.low == self.high else self.squares / self.rows


@dataclass(frozen=True)
class RegressionSums:
    truth: Spread
    residual: Spread
    squared: float
    absolute: float
    bad_truth: int
    bad_pred: int

    def merge(self, other: RegressionSums) -> RegressionSums:
        return RegressionSums(self.truth.merge(other.truth), self.residual.merge(other.residual),
                              self.squared + other.squared, self.absolute + other.absolute,
                              self.bad_truth + other.bad_truth, self.bad_pred + other.bad_pred)


def _floats(values: np.ndarray, name: str) -> tuple[FloatArray, int]:
    if values.dtype.kind not in _NUMERIC_KINDS:
        raise InvalidArgument(f"{name} must hold numbers, got dtype {values.dtype}")
    floats = values.astype(np.float64, copy=False)
    return floats, int((~np.isfinite(floats)).sum())


def _regression_sums(label: str, predicted: str, block: pa.Table) -> RegressionSums:
    truth, bad_truth = _floats(np.asarray(block.column(label).to_numpy(zero_copy_only=False)), "y_true")
    pred, bad_pred = _floats(np.asarray(pc.cast(block.column(predicted), "float64").to_numpy(zero_copy_only=False)),
                             "y_pred")
    if bad_truth or bad_pred:
        return RegressionSums(Spread.of(np.zeros(0)), Spread.of(np.zeros(0)), 0.0, 0.0, bad_truth, bad_pred)
    residual = truth - pred
    return RegressionSums(Spread.of(truth), Spread.of(residual), float((residual ** 2).sum()),
                          float(np.abs(residual).sum()), 0, 0)


def regression_split_metrics(table: Table, label: str, predicted: str) -> dict[str, Any]:
    """The keys of `metrics.regression_metrics` over every row of `table`, from aggregates."""
    sums: RegressionSums = table.reduce(functools.partial(_regression_sums, label, predicted),
                                        lambda a, b: a.merge(b))
    for bad, name in ((sums.bad_truth, "y_true"), (sums.bad_pred, "y_pred")):
        if bad:
            raise InvalidArgument(f"{name} holds {bad} missing or infinite values")
    rows = sums.truth.rows
    if rows == 0:
        raise InvalidArgument("y_true is empty: there is nothing to evaluate")
    mse = sums.squared / rows
    total_variance = sums.truth.variance()
    residual_variance = sums.residual.variance()
    return {
        "mse": mse,
        "mae": sums.absolute / rows,
        "rmse": float(np.sqrt(mse)),
        "r2": _explained_fraction(mse, total_variance) if rows > 1 else None,
        "explained_variance": _explained_fraction(residual_variance, total_variance),
    }


@dataclass(frozen=True)
class PairCounts:
    """The distinct true and predicted labels of some rows and how often each pair occurs."""

    truth: np.ndarray
    pred: np.ndarray
    counts: npt.NDArray[np.int64]  # (len(truth), len(pred))

    def merge(self, other: PairCounts) -> PairCounts:
        truth = np.union1d(self.truth, other.truth)
        pred = np.union1d(self.pred, other.pred)
        counts = np.zeros((len(truth), len(pred)), dtype=np.int64)
        for part in (self, other):
            rows = np.searchsorted(truth, part.truth)
            columns = np.searchsorted(pred, part.pred)
            counts[np.ix_(rows, columns)] += part.counts
        return PairCounts(truth, pred, counts)


def _pair_counts(label: str, predicted: str, block: pa.Table) -> PairCounts | None:
    if not block.num_rows:
        return None
    truth = _class_labels(block.column(label).to_numpy(zero_copy_only=False), "y_true")
    column = block.column(predicted)
    # Numeric predictions are read as floats (classes 0.0, 1.0, ...), text ones as they are.
    pred = _class_labels((pc.cast(column, "float64") if is_numeric(column.type) else column)
                         .to_numpy(zero_copy_only=False), "y_pred")
    true_values, true_index = np.unique(truth, return_inverse=True)
    pred_values, pred_index = np.unique(pred, return_inverse=True)
    counts = np.bincount(true_index * len(pred_values) + pred_index, minlength=len(true_values) * len(pred_values))
    return PairCounts(true_values, pred_values, counts.reshape(len(true_values), len(pred_values)).astype(np.int64))


def _merge_pairs(a: PairCounts | None, b: PairCounts | None) -> PairCounts | None:
    if a is None:
        return b
    if b is None:
        return a
    return a.merge(b)


def multiclass_split_metrics(table: Table, label: str, predicted: str) -> dict[str, Any]:
    """The keys of `metrics.multiclass_metrics` over every row of `table`, from pair counts."""
    pairs: PairCounts | None = table.reduce(functools.partial(_pair_counts, label, predicted), _merge_pairs)
    if pairs is None:
        raise InvalidArgument("y_true is empty: there is nothing to evaluate")
    if (pairs.truth.dtype.kind in "US") != (pairs.pred.dtype.kind in "US"):
        raise InvalidArgument(
            f"y_true ({pairs.truth.dtype}) and y_pred ({pairs.pred.dtype}) hold labels of different kinds: "
            "both must be numbers or both strings"
        )
    classes = np.unique(np.concatenate((pairs.truth, pairs.pred)))
    rows = np.searchsorted(classes, pairs.truth)
    columns = np.searchsorted(classes, pairs.pred)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    confusion[np.ix_(rows, columns)] += pairs.counts
    return multiclass_from_confusion(classes, confusion)
