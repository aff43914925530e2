"""Credit-risk views of a binary score: lift, gain and KS by score group, precision/recall, confusion.

Computed from a Table with per-block aggregates: exact score quantiles cut the rows into
`groups` groups (deciles by default; tied scores stay in one group, so groups may differ in
size), then each block counts rows and events per group, above each precision/recall
threshold and in each cell of the confusion matrix. Groups run from the highest score down,
so with a probability of the event the first group is the riskiest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.computing import Table
from kernel.errors import InvalidArgument
from kernel.stats.columns import float_column
from kernel.stats.moments import block_moments, merge_table_moments
from kernel.stats.order import quantiles
from kernel.stats.psi import bin_counts, psi, reading

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SCORE = "__weft_score"
EVENT = "__weft_event"


def scored_rows(table: Table, label: str, score: str, positive: int) -> Table:
    """(id, score, event 0/1) of every row."""
    id_column = table.id_column

    def pick(block: pa.Table) -> pa.Table:
        events = (float_column(block, label) == positive).astype(np.int64)
        return pa.table({id_column: block.column(id_column), SCORE: pa.array(float_column(block, score)),
                         EVENT: pa.array(events)})

    schema = pa.schema([table.schema.field(id_column), pa.field(SCORE, pa.float64()), pa.field(EVENT, pa.int64())])
    return table.map_partitions(pick, schema=schema)


def score_cuts(rows: Table, levels: list[float]) -> tuple[int, list[float]]:
    """Row count and the exact score quantiles at `levels`."""
    moments = rows.reduce(lambda block: block_moments({SCORE: float_column(block, SCORE)}), merge_table_moments)[SCORE]
    if moments.count == 0:
        raise InvalidArgument("Evaluation: no scored row to build the tables from")
    found = quantiles(rows, {SCORE: levels}, {SCORE: moments.count}, {SCORE: moments.min}, {SCORE: moments.max})
    return moments.count, [float(v) for v in found[SCORE] if v is not None]


def performance_tables(rows: Table, threshold: float, groups: int, curve_points: int) -> dict[str, Any]:
    """The gain/lift/KS table, the precision/recall curve and the confusion matrix at `threshold`."""
    levels = (np.arange(1, groups) / groups).tolist()
    pr_levels = np.linspace(0.0, 1.0, curve_points).tolist()
    _, cuts = score_cuts(rows, levels + pr_levels)
    edges = np.unique(np.asarray(cuts[: len(levels)], dtype=np.float64))
    pr_thresholds = np.unique(np.asarray(cuts[len(levels):], dtype=np.float64))[::-1]

    def count(block: pa.Table) -> dict[str, IntArray]:
        score, event = float_column(block, SCORE), np.asarray(block.column(EVENT).to_numpy(), dtype=np.int64)
        group = np.searchsorted(edges, score, side="right")
        above = score[:, None] >= pr_thresholds[None, :]
        predicted = score >= threshold
        return {
            "rows": np.bincount(group, minlength=len(edges) + 1).astype(np.int64),
            "events": np.bincount(group, weights=event, minlength=len(edges) + 1).astype(np.int64),
            "above": above.sum(axis=0).astype(np.int64),
            "events_above": (above & (event[:, None] == 1)).sum(axis=0).astype(np.int64),
            "confusion": np.array([np.sum(predicted & (event == 1)), np.sum(predicted & (event == 0)),
                                   np.sum(~predicted & (event == 0)), np.sum(~predicted & (event == 1))],
                                  dtype=np.int64),
        }

    totals = rows.reduce(count, lambda a, b: {k: a[k] + b[k] for k in a})
    bounds = [-np.inf, *edges.tolist(), np.inf]
    table = _group_table(totals["rows"][::-1], totals["events"][::-1], bounds[::-1])
    tp, fp, tn, fn = (int(v) for v in totals["confusion"])
    events_total = int(totals["events"].sum())
    above, events_above = totals["above"], totals["events_above"]
    precision = np.divide(events_above, above, out=np.ones(len(above)), where=above > 0)
    recall = events_above / events_total if events_total else np.zeros(len(above))
    return {
        "gain_table": table,
        "ks_table": {"group": table["group"], "ks": table["ks"], "max_ks": max(table["ks"], default=0.0)},
        "pr_curve": {"thresholds": pr_thresholds.tolist(), "precision": precision.tolist(),
                     "recall": recall.tolist()},
        "confusion_matrix": {"threshold": threshold, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
                             "labels": ["event predicted, event", "event predicted, no event",
                                        "no event predicted, no event", "no event predicted, event"]},
    }


def _group_table(rows: IntArray, events: IntArray, bounds: list[float]) -> dict[str, list[Any]]:
    """Per group from the highest scores down: rows, events, rate, cumulative gain, lift, KS."""
    kept = rows > 0
    rows, events = rows[kept], events[kept]
    upper = np.asarray(bounds[:-1])[kept]
    lower = np.asarray(bounds[1:])[kept]
    non_events = rows - events
    total_rows, total_events, total_non = rows.sum(), events.sum(), non_events.sum()
    base_rate = total_events / total_rows if total_rows else 0.0
    cum_events, cum_non, cum_rows = np.cumsum(events), np.cumsum(non_events), np.cumsum(rows)
    gain = cum_events / total_events if total_events else np.zeros(len(rows))
    non_gain = cum_non / total_non if total_non else np.zeros(len(rows))
    rate = events / rows
    return {
        "group": list(range(1, len(rows) + 1)),
        "score_from": [float(v) if np.isfinite(v) else None for v in lower],
        "score_to": [float(v) if np.isfinite(v) else None for v in upper],
        "rows": rows.tolist(), "events": events.tolist(), "event_rate": rate.tolist(),
        "cumulative_rows_share": (cum_rows / total_rows).tolist(),
        "gain": gain.tolist(),
        "lift": (rate / base_rate if base_rate else np.zeros(len(rows))).tolist(),
        "cumulative_lift": ((cum_events / cum_rows) / base_rate if base_rate else np.zeros(len(rows))).tolist(),
        "ks": np.abs(gain - non_gain).tolist(),
    }


def score_psi(reference: Table, other: Table, groups: int, stable_below: float, shift_below: float) -> dict[str, Any]:
    """PSI of the score of `other` over the reference's score groups."""
    _, cuts = score_cuts(reference, (np.arange(1, groups) / groups).tolist())
    edges = np.unique(np.asarray(cuts, dtype=np.float64))
    expected = bin_counts(reference, {SCORE: edges.tolist()})[SCORE]
    actual = bin_counts(other, {SCORE: edges.tolist()})[SCORE]
    value, _ = psi(expected, actual)
    return {"psi": value, "reading": reading(value, stable_below, shift_below)}
