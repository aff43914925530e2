"""Bin edges, bin indices, and WOE / IV from per-bin event counts (plain numpy).

A feature with inner edges e_1 < ... < e_{B-1} has B value bins, bin i holding
e_i <= x < e_{i+1} (bin 0 everything below e_1, the last everything from e_{B-1} up), and
one more bin, index B, for missing values (NaN). So a feature has len(edges) + 2 bins.

WOE of bin i is ln(event share / non-event share), where the event share is the bin's
events over all events (label 1) and the non-event share likewise for label 0. A bin with
no events or no non-events gets `adjustment` added to both of its counts first. Empty bins
have WOE 0 and add nothing to IV = sum over bins of (event share - non-event share) * WOE.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def bin_edges(values: FloatArray, method: str, bin_num: int) -> FloatArray:
    """Inner edges: equal-frequency ("quantile") or equal-width ("bucket"); duplicates merged."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return np.zeros(0)
    levels = np.arange(1, bin_num) / bin_num
    if method == "quantile":
        edges = np.quantile(present, levels)
    else:
        low, high = float(present.min()), float(present.max())
        edges = low + (high - low) * levels
    edges = np.unique(edges)
    # An edge at the minimum would leave bin 0 empty.
    result: FloatArray = edges[edges > present.min()]
    return result


def bin_indices(values: FloatArray, edges: FloatArray) -> IntArray:
    """The bin of every value; NaN goes to the missing bin, len(edges) + 1."""
    index = np.searchsorted(edges, values, side="right").astype(np.int64)
    index[np.isnan(values)] = len(edges) + 1
    return index


def woe_iv(events: IntArray, counts: IntArray, adjustment: float) -> tuple[FloatArray, float]:
    """WOE per bin and the feature's IV from event and row counts per bin."""
    events_f = events.astype(np.float64)
    non_events_f = (counts - events).astype(np.float64)
    total_events, total_non_events = events_f.sum(), non_events_f.sum()
    if total_events == 0 or total_non_events == 0:
        return np.zeros(len(counts)), 0.0
    needs = (events_f == 0) | (non_events_f == 0)
    adjusted_events = np.where(needs, events_f + adjustment, events_f)
    adjusted_non_events = np.where(needs, non_events_f + adjustment, non_events_f)
    event_share = adjusted_events / total_events
    non_event_share = adjusted_non_events / total_non_events
    occupied = counts > 0
    woe = np.where(occupied, np.log(event_share / non_event_share), 0.0)
    iv = float(np.sum(np.where(occupied, (event_share - non_event_share) * woe, 0.0)))
    return woe, iv
