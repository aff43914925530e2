"""Binary metrics of a distributed table from aggregates: no row reaches the driver.

Each split's scores are counted in a histogram where the rows are (`Table.reduce`): per
bin, positives, negatives and the lowest and highest score, plus the exact sums of
`EXACT_SUMS`. The first pass uses the federation's bins (`FEDERATION_BINS` over [0, 1]),
so its counts are also what a horizontal job's federation sums. A bin whose rows are
all of one class, or all of one score, orders its pairs exactly; a bin holding both
classes at different scores is split again into sub-bins between its lowest and highest
score in the next pass, until none is left. The metrics are then exact: AUC equals the
pooled rows' (ties count half, as scikit-learn does) and KS is the maximum of tpr - fpr
over every threshold, because inside a one-class bin tpr - fpr moves one way only.

What travels per pass is fixed by the bin count (at most `MAX_CELLS` cells of four
numbers), not by the rows; a pass narrows a bin's width by `MAX_CELLS` / (open bins), so
float scores need few passes (two on continuous scores, usually).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.components.evaluation.constants import EXACT_SUMS, FEDERATION_BINS
from kernel.components.evaluation.federation import Scored, split_sums
from kernel.components.evaluation.metrics import MIN_CURVE_POINTS, _sample_indices
from kernel.computing import Table
from kernel.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]

#: The most cells (bins and sub-bins) one pass counts.
MAX_CELLS = 1 << 20
#: Passes before giving up narrowing (floats run out of distinct values long before).
MAX_PASSES = 12

Cells = tuple[FloatArray, FloatArray]  # the low and high score of each open cell


def _scored(block: pa.Table, label: str, score: str, pos_label: Any) -> Scored:
    truth = block.column(label).to_numpy(zero_copy_only=False)
    scores = pc.cast(block.column(score), "float64").to_numpy(zero_copy_only=False)
    return Scored(np.asarray(truth == pos_label), np.asarray(scores, dtype=np.float64))


def _first_pass(label: str, score: str, pos_label: Any, threshold: float, block: pa.Table) -> dict[str, Any]:
    """Federation sums (histograms + exact sums), per-bin min/max, and the score range of a block."""
    scored = _scored(block, label, score, pos_label)
    scores = scored.scores
    if scores.size and not np.isfinite(scores).all():
        raise InvalidArgument(f"y_score holds {int((~np.isfinite(scores)).sum())} missing or infinite values")
    bins = np.minimum((np.clip(scores, 0.0, 1.0) * FEDERATION_BINS).astype(np.int64), FEDERATION_BINS - 1)
    low = np.full(FEDERATION_BINS, np.inf)
    high = np.full(FEDERATION_BINS, -np.inf)
    np.minimum.at(low, bins, scores)
    np.maximum.at(high, bins, scores)
    return {"sums": split_sums(scored, threshold), "low": low, "high": high,
            "min": float(scores.min()) if scores.size else np.inf,
            "max": float(scores.max()) if scores.size else -np.inf}


def _merge_first(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {"sums": a["sums"] + b["sums"], "low": np.minimum(a["low"], b["low"]),
            "high": np.maximum(a["high"], b["high"]), "min": min(a["min"], b["min"]), "max": max(a["max"], b["max"])}


def _narrow_pass(label: str, score: str, pos_label: Any, cells: Cells, width: int, block: pa.Table) -> FloatArray:
    """Per open cell and sub-bin: positives, negatives, lowest and highest score (shape (4, n, width))."""
    scored = _scored(block, label, score, pos_label)
    lows, highs = cells
    out = np.zeros((4, len(lows), width))
    out[2], out[3] = np.inf, -np.inf
    cell = np.searchsorted(lows, scored.scores, side="right") - 1
    inside = (cell >= 0) & (scored.scores <= highs[np.maximum(cell, 0)])
    cell, scores, positive = cell[inside], scored.scores[inside], scored.positive[inside]
    span = highs[cell] - lows[cell]
    sub = np.minimum(((scores - lows[cell]) / np.where(span > 0, span, 1.0) * width).astype(np.int64), width - 1)
    flat = cell * width + sub
    size = len(lows) * width
    out[0] = np.bincount(flat[positive], minlength=size).reshape(len(lows), width)
    out[1] = np.bincount(flat[~positive], minlength=size).reshape(len(lows), width)
    np.minimum.at(out[2].reshape(-1), flat, scores)
    np.maximum.at(out[3].reshape(-1), flat, scores)
    return out


def _merge_narrow(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.stack([a[0] + b[0], a[1] + b[1], np.minimum(a[2], b[2]), np.maximum(a[3], b[3])])


def binary_split_metrics(
    table: Table, label: str, score: str, pos_label: Any, threshold: float, curve_points: int,
) -> tuple[dict[str, Any], FloatArray]:
    """The binary metrics of one split's rows (same keys as `binary_metrics`) and its federation sums."""
    if curve_points < MIN_CURVE_POINTS:
        raise InvalidArgument(f"curve_points must be at least {MIN_CURVE_POINTS}, got {curve_points}")
    first = table.reduce(functools.partial(_first_pass, label, score, pos_label, threshold), _merge_first)
    sums: FloatArray = first["sums"]
    pos, neg = sums[:FEDERATION_BINS], sums[FEDERATION_BINS:2 * FEDERATION_BINS]
    exact = dict(zip(EXACT_SUMS, sums[2 * FEDERATION_BINS:].tolist(), strict=True))
    if exact["rows"] == 0:
        raise InvalidArgument("y_true is empty: there is nothing to evaluate")
    if exact["positives"] in (0, exact["rows"]):
        only = 1 if exact["positives"] else 0
        raise InvalidArgument(f"y_true holds only class {only}: AUC and KS need both classes 0 and 1")
    if first["min"] < 0.0 or first["max"] > 1.0:
        raise InvalidArgument(
            f"y_score must be probabilities in [0, 1] for binary evaluation, found values in "
            f"[{first['min']:g}, {first['max']:g}]"
        )
    # Final cells, as (low, high, positives, negatives); open ones are narrowed pass by pass.
    final: list[FloatArray] = []
    cells = np.stack([first["low"], first["high"], pos, neg])
    for _ in range(MAX_PASSES):
        held = (cells[2] + cells[3]) > 0
        cells = cells[:, held]
        mixed = (cells[2] > 0) & (cells[3] > 0) & (cells[0] < cells[1])
        final.append(cells[:, ~mixed])
        if not mixed.any():
            break
        lows, highs = cells[0, mixed], cells[1, mixed]
        width = max(2, MAX_CELLS // len(lows))
        counted = table.reduce(
            functools.partial(_narrow_pass, label, score, pos_label, (lows, highs), width), _merge_narrow)
        cells = np.stack([counted[2].reshape(-1), counted[3].reshape(-1),
                          counted[0].reshape(-1), counted[1].reshape(-1)])
    else:
        final.append(cells)  # scores too close to split further: their pairs count half
    ordered = np.concatenate(final, axis=1)
    ordered = ordered[:, np.argsort(-ordered[0], kind="stable")]  # highest scores first
    metrics = _ranked_metrics(ordered, exact, threshold, curve_points)
    return metrics, sums


def _ranked_metrics(cells: FloatArray, exact: dict[str, float], threshold: float, curve_points: int) -> dict[str, Any]:
    low, pos, neg = cells[0], cells[2], cells[3]
    positives, negatives = float(pos.sum()), float(neg.sum())
    above = np.cumsum(pos) - pos
    auc = float(np.sum(neg * (above + 0.5 * pos)) / (positives * negatives))
    tpr = np.concatenate(([0.0], np.cumsum(pos) / positives))
    fpr = np.concatenate(([0.0], np.cumsum(neg) / negatives))
    thresholds = np.concatenate(([cells[1].max() + 1.0], low))
    gaps = tpr - fpr
    ks_index = int(np.argmax(gaps))
    rows = exact["rows"]
    precision = exact["true_positive"] / exact["predicted_positive"] if exact["predicted_positive"] else 0.0
    recall = exact["true_positive"] / exact["positives"]
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    keep = _sample_indices(tpr.size, curve_points, ks_index)
    fpr_points, tpr_points, threshold_points = fpr[keep].tolist(), tpr[keep].tolist(), thresholds[keep].tolist()
    return {
        "auc": auc, "ks": float(gaps[ks_index]), "accuracy": exact["correct"] / rows,
        "precision": float(precision), "recall": float(recall), "f1": float(f1),
        "log_loss": exact["log_loss_sum"] / rows, "threshold": float(threshold),
        "roc_curve": {"fpr": fpr_points, "tpr": tpr_points, "thresholds": threshold_points},
        "ks_curve": {"thresholds": threshold_points, "tpr": tpr_points, "fpr": fpr_points},
    }
