"""Additive per-feature sums that a member can mask, and the moments rebuilt from their total.

Chan's merge of (mean, M2) is not a sum, so it cannot travel under additive masks. Instead
every member sends, per feature and around a centre c and scale s shared by all (the
midpoint and half-width of the common bin edges):

    count, missing, S1 = sum((x - c) / s), S2 = sum(((x - c) / s) ** 2), histogram counts

all of which add up across members. From the totals, mean = c + s * S1 / n and
M2 = s**2 * (S2 - S1**2 / n). Centring on the middle of the global range keeps |x - c| <= s,
so every summed value is bounded by the row count and the fixed point keeps its precision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from kernel.components.distribution.constants import SUMS_PER_FEATURE
from kernel.errors import InvalidArgument
from kernel.stats.summary import FeatureMoments, Moments

FloatArray = npt.NDArray[np.float64]


def centre_and_scale(edges: np.ndarray) -> tuple[float, float]:
    """The midpoint and half-width of a feature's edges (0 and 1 when there are none or one value)."""
    if edges.size == 0:
        return 0.0, 1.0
    low, high = float(edges[0]), float(edges[-1])
    half = (high - low) / 2.0
    return low + half, half if half > 0 else 1.0


def vector_length(features: Sequence[str], edges: Mapping[str, np.ndarray]) -> int:
    """Entries of the masked vector: four sums and the histogram counts per feature."""
    return sum(SUMS_PER_FEATURE + max(edges[f].size - 1, 0) for f in features)


def member_sums(
    features: Sequence[str], moments: Moments, histogram: Mapping[str, np.ndarray], edges: Mapping[str, np.ndarray]
) -> FloatArray:
    """One member's additive sums, feature after feature in `features` order."""
    parts: list[FloatArray] = []
    for name in features:
        feature = moments[name]
        centre, scale = centre_and_scale(edges[name])
        offset = (feature.mean - centre) / scale if feature.count else 0.0
        first = feature.count * offset
        second = feature.m2 / (scale * scale) + feature.count * offset * offset
        counts = np.asarray(histogram[name], dtype=np.float64)
        parts.append(np.concatenate([[feature.count, feature.missing, first, second], counts]))
    return np.concatenate(parts) if parts else np.zeros(0)


def moments_from_sums(
    features: Sequence[str], total: FloatArray, edges: Mapping[str, np.ndarray],
    mins: Mapping[str, float], maxs: Mapping[str, float],
) -> tuple[Moments, dict[str, np.ndarray]]:
    """Global moments and histograms from the summed vector and the global min/max."""
    if total.shape != (vector_length(features, edges),):
        raise InvalidArgument(f"the summed statistics hold {total.size} values, expected "
                              f"{vector_length(features, edges)}")
    moments: Moments = {}
    histograms: dict[str, np.ndarray] = {}
    position = 0
    for name in features:
        bins = max(edges[name].size - 1, 0)
        block = total[position:position + SUMS_PER_FEATURE + bins]
        position += SUMS_PER_FEATURE + bins
        count, missing = int(np.rint(block[0])), int(np.rint(block[1]))
        counts = np.rint(block[SUMS_PER_FEATURE:]).astype(np.int64)
        if count < 0 or missing < 0 or (counts < 0).any():
            raise InvalidArgument(f"feature {name!r}: the summed counts are negative")
        centre, scale = centre_and_scale(edges[name])
        if count:
            mean = centre + scale * float(block[2]) / count
            m2 = max(scale * scale * (float(block[3]) - float(block[2]) ** 2 / count), 0.0)
        else:
            mean, m2 = 0.0, 0.0
        moments[name] = FeatureMoments(count=count, missing=missing, mean=mean, m2=m2,
                                       min=float(mins[name]), max=float(maxs[name]))
        histograms[name] = counts
    return moments, histograms
