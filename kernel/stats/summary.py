"""Per-feature statistics computed per block and merged, so they span partitions and members.

The flow for several members holding rows of the same columns:

1. each member computes `block_moments` over its blocks and merges them (`merge_moments`);
   it sends the per-feature min/max (or the whole moments) to the arbiter;
2. the arbiter calls `common_edges` on every member's min/max and returns the edges;
3. each member computes `block_histogram` with those edges, merged by `merge_histograms`;
4. the arbiter merges the members' moments and histograms and calls `summarize`.

Count, mean, standard deviation, min and max are exact after merging (means and squared
deviations are merged with Chan's parallel formula, not as raw sums of squares, so large
offsets do not cancel). Quantiles come from the merged histogram, interpolated linearly
inside a bin, so they are off by at most one bin width; a single member can pass
`exact_quantiles` instead. ("Exact" means up to float64 rounding of the block means: for a
column whose spread is 1e-12 of its magnitude the merged std can differ from a two-pass
std over all rows in the sixth digit.)

Missing values are NaN in float columns and None (or NaN) in object columns. Only numeric
columns are accepted (bool, integer, float, or object columns holding numbers and None):
any other column raises InvalidArgument naming it, so a caller chooses the columns to
describe rather than finding some silently dropped. Infinite values are refused too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import numpy as np

from kernel.errors import InvalidArgument

MIN_BINS: Final = 1
QUANTILE_METHOD_EXACT: Final = "exact"
QUANTILE_METHOD_HISTOGRAM: Final = "histogram"
# Sample standard deviation (n - 1 in the denominator), as pandas reports it.
STD_DDOF: Final = 1

_NUMERIC_KINDS: Final = "biuf"
_WIRE_FIELDS: Final[tuple[str, ...]] = ("count", "missing", "mean", "m2", "min", "max")


@dataclass(frozen=True)
class FeatureMoments:
    """Mergeable summary of one feature's values over some rows.

    `mean` and `m2` (sum of squared deviations from `mean`) are 0.0 when `count` is 0;
    `min` is +inf and `max` is -inf then, the identities of their merge.
    """

    count: int
    missing: int
    mean: float
    m2: float
    min: float
    max: float

    @classmethod
    def of_values(cls, values: np.ndarray) -> FeatureMoments:
        """Moments of a float64 vector where NaN marks a missing value."""
        present = values[~np.isnan(values)]
        missing = int(values.size - present.size)
        if present.size == 0:
            return cls(count=0, missing=missing, mean=0.0, m2=0.0, min=math.inf, max=-math.inf)
        mean = float(present.mean())
        return cls(
            count=int(present.size),
            missing=missing,
            mean=mean,
            m2=float(np.sum((present - mean) ** 2)),
            min=float(present.min()),
            max=float(present.max()),
        )

    def merge(self, other: FeatureMoments) -> FeatureMoments:
        """Moments of the union of both row sets (Chan et al.'s pairwise update)."""
        count = self.count + other.count
        if count == 0:
            mean, m2 = 0.0, 0.0
        else:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / count
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        return FeatureMoments(
            count=count,
            missing=self.missing + other.missing,
            mean=mean,
            m2=m2,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
        )

    @property
    def total(self) -> float:
        """Sum of the present values."""
        return self.mean * self.count

    @property
    def sum_squares(self) -> float:
        """Sum of the squares of the present values."""
        return self.m2 + self.count * self.mean * self.mean

    def variance(self, ddof: int = STD_DDOF) -> float | None:
        """Variance with `ddof` degrees of freedom removed; None when count <= ddof."""
        if self.count <= ddof:
            return None
        return self.m2 / (self.count - ddof)

    def std(self, ddof: int = STD_DDOF) -> float | None:
        """Standard deviation (sample by default); None when count <= ddof."""
        variance = self.variance(ddof)
        return None if variance is None else math.sqrt(variance)

    def to_wire(self) -> dict[str, int | float]:
        """A dict of plain numbers the federation codec can carry."""
        return {field: getattr(self, field) for field in _WIRE_FIELDS}

    @classmethod
    def from_wire(cls, message: Mapping[str, Any], feature: str) -> FeatureMoments:
        """Rebuild moments a peer sent, checking every field (the peer is not trusted)."""
        if not isinstance(message, Mapping) or set(message) != set(_WIRE_FIELDS):
            raise InvalidArgument(
                f"moments of feature {feature!r} must have exactly the fields "
                f"{', '.join(_WIRE_FIELDS)}"
            )
        count, missing = message["count"], message["missing"]
        for name, value in (("count", count), ("missing", missing)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidArgument(
                    f"moments of feature {feature!r}: {name} must be a non-negative integer, "
                    f"got {value!r}"
                )
        floats: dict[str, float] = {}
        for name in ("mean", "m2", "min", "max"):
            value = message[name]
            if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
                raise InvalidArgument(
                    f"moments of feature {feature!r}: {name} must be a number, got {value!r}"
                )
            floats[name] = float(value)
        if floats["m2"] < 0 or (count > 0 and floats["min"] > floats["max"]):
            raise InvalidArgument(f"moments of feature {feature!r} are inconsistent: {message}")
        return cls(count=count, missing=missing, **floats)


Moments: TypeAlias = dict[str, FeatureMoments]


def numeric_column(name: str, values: Any) -> np.ndarray:
    """Return a column as float64 with NaN for missing, or raise InvalidArgument naming it."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgument(f"column {name!r} must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind == "O":
        array = _object_column(name, array)
    elif array.dtype.kind not in _NUMERIC_KINDS:
        raise InvalidArgument(
            f"column {name!r} is not numeric (dtype {array.dtype}); "
            "describe only numeric columns or encode it first"
        )
    floats = array.astype(np.float64, copy=False)
    if np.isinf(floats).any():
        raise InvalidArgument(f"column {name!r} holds infinite values")
    return floats


def _object_column(name: str, array: np.ndarray) -> np.ndarray:
    converted = np.empty(array.size, dtype=np.float64)
    for position, value in enumerate(array):
        if value is None:
            converted[position] = np.nan
        elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        ):
            converted[position] = value
        elif isinstance(value, bool | np.bool_):
            converted[position] = float(value)
        else:
            raise InvalidArgument(
                f"column {name!r} is not numeric: row {position} holds {type(value).__name__} "
                f"{value!r}; describe only numeric columns or encode it first"
            )
    return converted


def block_moments(columns: Mapping[str, Any]) -> Moments:
    """Moments of every column of one block (one partition of rows)."""
    return {
        name: FeatureMoments.of_values(numeric_column(name, values))
        for name, values in columns.items()
    }


def _check_same_features(a: Mapping[str, Any], b: Mapping[str, Any], what: str) -> None:
    if a.keys() != b.keys():
        differing = sorted(set(a) ^ set(b))
        raise InvalidArgument(
            f"cannot merge {what} over different columns: {differing[0]!r} is in only one of "
            "them (every block and member must describe the same columns)"
        )


def merge_moments(a: Moments, b: Moments) -> Moments:
    """Moments of the union of the rows behind `a` and `b` (associative and commutative)."""
    _check_same_features(a, b, "moments")
    return {name: a[name].merge(b[name]) for name in a}


def moments_to_wire(moments: Moments) -> dict[str, dict[str, int | float]]:
    """Moments as nested dicts of plain numbers, for the federation codec."""
    return {name: feature.to_wire() for name, feature in moments.items()}


def moments_from_wire(message: Mapping[str, Any]) -> Moments:
    """Moments rebuilt from what `moments_to_wire` produced at a peer, checked field by field."""
    if not isinstance(message, Mapping):
        raise InvalidArgument(f"moments must be a dict of features, got {type(message).__name__}")
    return {
        str(name): FeatureMoments.from_wire(feature, str(name)) for name, feature in message.items()
    }


def _check_bins(bins: int) -> None:
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < MIN_BINS:
        raise InvalidArgument(f"bins must be an integer of at least {MIN_BINS}, got {bins!r}")


def common_edges(
    mins: Mapping[str, Any], maxs: Mapping[str, Any], bins: int
) -> dict[str, np.ndarray]:
    """Equal-width bin edges per feature spanning every member's range.

    `mins[feature]` and `maxs[feature]` are one member's min/max or a sequence of every
    member's; infinite or NaN entries (a member with no value in that column) are ignored.
    A feature with `bins + 1` edges from the global min to the global max; a feature whose
    values are all equal gets the single bin [v, v]; a feature with no value anywhere gets
    an empty array of edges.
    """
    _check_bins(bins)
    _check_same_features(mins, maxs, "min/max ranges")
    edges: dict[str, np.ndarray] = {}
    for name in mins:
        low_values = np.asarray(mins[name], dtype=np.float64).ravel()
        high_values = np.asarray(maxs[name], dtype=np.float64).ravel()
        low_values = low_values[np.isfinite(low_values)]
        high_values = high_values[np.isfinite(high_values)]
        if low_values.size == 0 or high_values.size == 0:
            edges[name] = np.empty(0, dtype=np.float64)
            continue
        low, high = float(low_values.min()), float(high_values.max())
        if low > high:
            raise InvalidArgument(f"feature {name!r}: min {low:g} is above max {high:g}")
        edges[name] = np.array([low, high]) if low == high else np.linspace(low, high, bins + 1)
    return edges


def block_histogram(
    columns: Mapping[str, Any], edges: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Counts per bin (int64) of every column of one block, missing values left out.

    Bins are [e_i, e_i+1) except the last, which also holds its right edge (as
    `numpy.histogram`). A value outside the edges is counted in the nearest end bin, so
    every present value is counted exactly once.
    """
    counts: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        if name not in edges:
            raise InvalidArgument(f"column {name!r} has no bin edges; compute common_edges first")
        present = numeric_column(name, values)
        present = present[~np.isnan(present)]
        column_edges = np.asarray(edges[name], dtype=np.float64)
        if column_edges.size == 0:
            if present.size:
                raise InvalidArgument(
                    f"column {name!r} has values but its edges are empty (edges were computed "
                    "from data where the column was entirely missing)"
                )
            counts[name] = np.zeros(0, dtype=np.int64)
            continue
        n_bins = column_edges.size - 1
        if n_bins < 1:
            raise InvalidArgument(f"edges of column {name!r} must hold at least two values")
        index = np.clip(np.searchsorted(column_edges, present, side="right") - 1, 0, n_bins - 1)
        counts[name] = np.bincount(index, minlength=n_bins).astype(np.int64)
    return counts


def merge_histograms(
    a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Counts of the union of both row sets (histograms over the same edges add up)."""
    _check_same_features(a, b, "histograms")
    merged: dict[str, np.ndarray] = {}
    for name in a:
        left, right = np.asarray(a[name], dtype=np.int64), np.asarray(b[name], dtype=np.int64)
        if left.shape != right.shape:
            raise InvalidArgument(
                f"histograms of column {name!r} have {left.size} and {right.size} bins: "
                "they must come from the same edges"
            )
        merged[name] = left + right
    return merged


def _check_qs(qs: Sequence[float] | np.ndarray) -> np.ndarray:
    levels = np.asarray(qs, dtype=np.float64)
    if levels.ndim != 1:
        raise InvalidArgument(f"qs must be a list of quantile levels, got shape {levels.shape}")
    if not np.all((levels >= 0.0) & (levels <= 1.0)):
        raise InvalidArgument(f"qs must lie in [0, 1], got {levels.tolist()}")
    return levels


def quantiles_from_histogram(
    hist: np.ndarray, edges: np.ndarray, qs: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Quantiles of one feature from its histogram, interpolated linearly inside a bin.

    The rows of a bin are taken as spread evenly across it, so each result lies in the bin
    holding the true quantile: the error is at most that bin's width. q = 0 and q = 1 give
    the first and last occupied bin's outer edges (the exact min and max when the edges
    come from `common_edges`). With no counted value the result is NaN.
    """
    levels = _check_qs(qs)
    counts = np.asarray(hist, dtype=np.int64)
    bounds = np.asarray(edges, dtype=np.float64)
    if counts.size == 0 and bounds.size == 0:
        return np.full(levels.size, np.nan)
    if counts.ndim != 1 or bounds.size != counts.size + 1:
        raise InvalidArgument(
            f"a histogram of {counts.size} bins needs {counts.size + 1} edges, got {bounds.size}"
        )
    total = int(counts.sum())
    if total == 0:
        return np.full(levels.size, np.nan)
    cumulative = np.cumsum(counts)
    ranks = levels * total
    # The first bin whose cumulative count reaches the rank; rank 0 means the first occupied bin.
    bins = np.where(
        ranks > 0,
        np.searchsorted(cumulative, ranks, side="left"),
        np.searchsorted(cumulative, 0, side="right"),
    )
    bins = np.minimum(bins, counts.size - 1)
    in_bin = counts[bins]
    below = cumulative[bins] - in_bin
    fraction = np.divide(ranks - below, in_bin, out=np.zeros_like(ranks), where=in_bin > 0)
    fraction = np.clip(fraction, 0.0, 1.0)
    values: np.ndarray = bounds[bins] + fraction * (bounds[bins + 1] - bounds[bins])
    return values


def exact_quantiles(
    columns: Mapping[str, Any], qs: Sequence[float] | np.ndarray
) -> dict[str, np.ndarray]:
    """Exact quantiles of each column over all its rows (numpy's linear method), NaN if empty.

    Needs every row in one place, so it serves the single-member case.
    """
    levels = _check_qs(qs)
    result: dict[str, np.ndarray] = {}
    for name, values in columns.items():
        present = numeric_column(name, values)
        present = present[~np.isnan(present)]
        result[name] = (
            np.quantile(present, levels) if present.size else np.full(levels.size, np.nan)
        )
    return result


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def summarize(
    moments: Moments,
    hist: Mapping[str, np.ndarray],
    edges: Mapping[str, np.ndarray],
    qs: Sequence[float] | np.ndarray,
    exact_quantiles: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict[str, Any]]:
    """The JSON-able description of every feature in `moments`, in its order.

    Per feature: count (present values), missing, missing_ratio, mean, std (the sample
    standard deviation, ddof=1), min, max, quantiles {str(q): value}, quantile_method
    ("exact" when `exact_quantiles` is given, else "histogram") and histogram
    {edges, counts}. A statistic that does not exist for the data (the mean of an
    all-missing column, the std of one value) is None.
    """
    levels = _check_qs(qs)
    summary: dict[str, dict[str, Any]] = {}
    for name, feature in moments.items():
        if name not in hist or name not in edges:
            raise InvalidArgument(f"feature {name!r} has moments but no histogram or edges")
        counts = np.asarray(hist[name], dtype=np.int64)
        if int(counts.sum()) != feature.count:
            raise InvalidArgument(
                f"feature {name!r}: the histogram counts {int(counts.sum())} values but the "
                f"moments count {feature.count}; both must cover the same rows"
            )
        if exact_quantiles is not None:
            if name not in exact_quantiles:
                raise InvalidArgument(f"feature {name!r} has no exact quantiles")
            values = np.asarray(exact_quantiles[name], dtype=np.float64)
            if values.shape != levels.shape:
                raise InvalidArgument(
                    f"feature {name!r}: {values.size} exact quantiles for {levels.size} levels"
                )
            method = QUANTILE_METHOD_EXACT
        else:
            values = quantiles_from_histogram(counts, edges[name], levels)
            method = QUANTILE_METHOD_HISTOGRAM
        rows = feature.count + feature.missing
        summary[name] = {
            "count": feature.count,
            "missing": feature.missing,
            "missing_ratio": feature.missing / rows if rows else None,
            "mean": feature.mean if feature.count else None,
            "std": feature.std(STD_DDOF),
            "min": _finite_or_none(feature.min),
            "max": _finite_or_none(feature.max),
            "quantiles": {
                str(level): _finite_or_none(value)
                for level, value in zip(levels.tolist(), values.tolist(), strict=True)
            },
            "quantile_method": method,
            "histogram": {
                "edges": np.asarray(edges[name], dtype=np.float64).tolist(),
                "counts": counts.tolist(),
            },
        }
    return summary
