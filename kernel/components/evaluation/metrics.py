"""Evaluation metrics (binary, regression, multiclass) in pure numpy, returned as JSON-able dicts.

Every function takes numpy arrays and returns a dict of plain Python floats, ints, strings
and lists, so the result can go to the tracker or across the codec unchanged. The numbers
agree with scikit-learn (the tests check each one against it); scikit-learn is not needed
at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np

from kernel.errors import InvalidArgument

EVAL_BINARY: Final = "binary"
EVAL_REGRESSION: Final = "regression"
EVAL_MULTI: Final = "multi"
EVAL_TYPES: Final[tuple[str, ...]] = (EVAL_BINARY, EVAL_REGRESSION, EVAL_MULTI)

DEFAULT_THRESHOLD: Final = 0.5
DEFAULT_CURVE_POINTS: Final = 100
MIN_CURVE_POINTS: Final = 2
# Scores are clipped to [eps, 1 - eps] before the log, as scikit-learn does for float64.
LOG_LOSS_EPS: Final = float(np.finfo(np.float64).eps)

_NUMERIC_KINDS: Final = "biuf"


def _as_vector(values: Any, name: str) -> np.ndarray:
    """Return `values` as a non-empty 1-D array, or raise naming `name`."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InvalidArgument(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise InvalidArgument(f"{name} is empty: there is nothing to evaluate")
    return array


def _as_finite_floats(values: Any, name: str) -> np.ndarray:
    """Return `values` as a float64 vector with no NaN or infinity, or raise naming `name`."""
    array = _as_vector(values, name)
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise InvalidArgument(f"{name} must hold numbers, got dtype {array.dtype}")
    floats = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(floats)
    if bad.any():
        raise InvalidArgument(
            f"{name} holds {int(bad.sum())} missing or infinite values "
            f"(first at position {int(np.argmax(bad))})"
        )
    return floats


def _check_same_length(y_true: np.ndarray, other: np.ndarray, other_name: str) -> None:
    if len(y_true) != len(other):
        raise InvalidArgument(
            f"y_true has {len(y_true)} rows but {other_name} has {len(other)}: "
            "they must describe the same rows"
        )


def _binary_labels(y_true: Any) -> np.ndarray:
    """Return labels as a bool vector (True = positive), refusing anything but 0/1."""
    floats = _as_finite_floats(y_true, "y_true")
    outside = (floats != 0.0) & (floats != 1.0)
    if outside.any():
        found = np.unique(floats[outside])[:5].tolist()
        raise InvalidArgument(
            f"y_true must hold binary labels 0 and 1 for binary evaluation, found {found}"
        )
    positive: np.ndarray = floats == 1.0
    if positive.all() or not positive.any():
        only = 1 if positive.all() else 0
        raise InvalidArgument(
            f"y_true holds only class {only}: AUC and KS need both classes 0 and 1"
        )
    return positive


def _roc_points(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Exact ROC points at every distinct score, highest first, like scikit-learn.

    Returns (fpr, tpr, thresholds) where point i counts rows with score >= thresholds[i];
    point 0 is (0, 0) with a threshold one above the highest score (no row predicted
    positive), so every threshold stays a finite number.
    """
    order = np.argsort(scores, kind="mergesort")[::-1]
    sorted_scores = scores[order]
    sorted_positive = positive[order]
    # Tied scores form one step of the curve: keep only the last row of each run of ties.
    run_ends = np.flatnonzero(np.diff(sorted_scores))
    run_ends = np.append(run_ends, sorted_scores.size - 1)
    true_positives = np.cumsum(sorted_positive, dtype=np.int64)[run_ends]
    false_positives = (run_ends + 1) - true_positives
    total_positive = true_positives[-1]
    total_negative = false_positives[-1]
    fpr = np.concatenate(([0.0], false_positives / total_negative))
    tpr = np.concatenate(([0.0], true_positives / total_positive))
    thresholds = np.concatenate(([sorted_scores[0] + 1.0], sorted_scores[run_ends]))
    return fpr, tpr, thresholds


def _sample_indices(size: int, curve_points: int, keep: int) -> np.ndarray:
    """At most `curve_points` sorted indices into a curve of `size`: both ends and `keep`."""
    if size <= curve_points:
        return np.arange(size)
    spread = np.rint(np.linspace(0, size - 1, curve_points - 1)).astype(np.int64)
    return np.unique(np.append(spread, keep))


def binary_metrics(
    y_true: Any,
    y_score: Any,
    threshold: float = DEFAULT_THRESHOLD,
    curve_points: int = DEFAULT_CURVE_POINTS,
) -> dict[str, Any]:
    """Metrics of a binary classifier from labels (0/1) and scores (probabilities in [0, 1]).

    AUC and KS are exact: computed over every distinct score, with tied scores treated as
    one step (AUC equals scikit-learn's `roc_auc_score`). KS is max(tpr - fpr). A row is
    predicted positive when its score is >= `threshold`; precision, recall and F1 are 0.0
    when their denominator is zero. `log_loss` clips scores to [eps, 1 - eps].

    `roc_curve` ({fpr, tpr, thresholds}) and `ks_curve` ({thresholds, tpr, fpr}) hold the
    same points sampled down to at most `curve_points`, always keeping both ends and the
    point where KS is reached; thresholds decrease along the curve, and the first point
    is (0, 0) at a threshold one above the highest score.

    Raises InvalidArgument for empty input, a length mismatch, labels other than 0/1,
    labels of one class only, scores outside [0, 1], or NaN/infinite values.
    """
    if curve_points < MIN_CURVE_POINTS:
        raise InvalidArgument(
            f"curve_points must be at least {MIN_CURVE_POINTS}, got {curve_points}"
        )
    positive = _binary_labels(y_true)
    scores = _as_finite_floats(y_score, "y_score")
    _check_same_length(positive, scores, "y_score")
    if scores.min() < 0.0 or scores.max() > 1.0:
        raise InvalidArgument(
            f"y_score must be probabilities in [0, 1] for binary evaluation, found values in "
            f"[{scores.min():g}, {scores.max():g}]"
        )

    fpr, tpr, thresholds = _roc_points(positive, scores)
    auc = float(np.trapezoid(tpr, fpr))
    gaps = tpr - fpr
    ks_index = int(np.argmax(gaps))
    ks = float(gaps[ks_index])

    predicted = scores >= threshold
    true_positive = int(np.count_nonzero(predicted & positive))
    predicted_positive = int(np.count_nonzero(predicted))
    actual_positive = int(np.count_nonzero(positive))
    precision = true_positive / predicted_positive if predicted_positive else 0.0
    recall = true_positive / actual_positive
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    accuracy = float(np.count_nonzero(predicted == positive)) / positive.size

    clipped = np.clip(scores, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    log_loss = float(-np.mean(np.where(positive, np.log(clipped), np.log1p(-clipped))))

    keep = _sample_indices(fpr.size, curve_points, ks_index)
    fpr_points, tpr_points, threshold_points = (
        fpr[keep].tolist(),
        tpr[keep].tolist(),
        thresholds[keep].tolist(),
    )
    return {
        "auc": auc,
        "ks": ks,
        "accuracy": accuracy,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "log_loss": log_loss,
        "threshold": float(threshold),
        "roc_curve": {"fpr": fpr_points, "tpr": tpr_points, "thresholds": threshold_points},
        "ks_curve": {"thresholds": threshold_points, "tpr": tpr_points, "fpr": fpr_points},
    }


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """MSE, MAE, RMSE, R2 and explained variance of predictions, as scikit-learn computes them.

    When y_true is constant, R2 and explained variance are 1.0 for a perfect prediction and
    0.0 otherwise (scikit-learn's `force_finite` convention), so the result stays finite.
    R2 of a single row is None (scikit-learn returns NaN: it is not defined).
    """
    truth = _as_finite_floats(y_true, "y_true")
    pred = _as_finite_floats(y_pred, "y_pred")
    _check_same_length(truth, pred, "y_pred")

    residual = truth - pred
    mse = float(np.mean(residual**2))
    mae = float(np.mean(np.abs(residual)))
    total_variance = float(np.mean((truth - truth.mean()) ** 2))
    residual_variance = float(np.mean((residual - residual.mean()) ** 2))
    return {
        "mse": mse,
        "mae": mae,
        "rmse": float(np.sqrt(mse)),
        "r2": _explained_fraction(mse, total_variance) if truth.size > 1 else None,
        "explained_variance": _explained_fraction(residual_variance, total_variance),
    }


def _explained_fraction(unexplained: float, total: float) -> float:
    if total == 0.0:
        return 1.0 if unexplained == 0.0 else 0.0
    return 1.0 - unexplained / total


def _class_labels(values: Any, name: str) -> np.ndarray:
    """Labels as a 1-D array of numbers or strings; a 2-D score matrix becomes its argmax."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] > 1:
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise InvalidArgument(f"{name} as a score matrix must hold numbers, got {array.dtype}")
        array = np.argmax(array, axis=1)
    array = _as_vector(array, name)
    if array.dtype.kind == "O":
        if any(value is None for value in array):
            raise InvalidArgument(f"{name} holds missing (None) labels")
        if all(isinstance(value, str) for value in array):
            return array.astype(str)
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise InvalidArgument(
                f"{name} mixes labels of different kinds; use all numbers or all strings"
            ) from err
    if array.dtype.kind not in _NUMERIC_KINDS + "US":
        raise InvalidArgument(f"{name} must hold numbers or strings as labels, got {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidArgument(f"{name} holds missing or infinite labels")
    return array


def multiclass_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """Accuracy, macro F1 and per-class precision/recall/F1/support of predicted labels.

    `y_pred` holds labels, or a 2-D score matrix (one column per class index 0..k-1) whose
    row-wise argmax is the predicted label. Classes are the union of the labels seen in
    `y_true` and `y_pred`, as scikit-learn does; a zero denominator gives 0.0. `per_class`
    is keyed by the label written as a string.
    """
    truth = _class_labels(y_true, "y_true")
    pred = _class_labels(y_pred, "y_pred")
    _check_same_length(truth, pred, "y_pred")
    if (truth.dtype.kind in "US") != (pred.dtype.kind in "US"):
        raise InvalidArgument(
            f"y_true ({truth.dtype}) and y_pred ({pred.dtype}) hold labels of different kinds: "
            "both must be numbers or both strings"
        )

    classes, inverse = np.unique(np.concatenate((truth, pred)), return_inverse=True)
    true_index, pred_index = inverse[: truth.size], inverse[truth.size :]
    n_classes = classes.size
    confusion = np.bincount(
        true_index * n_classes + pred_index, minlength=n_classes * n_classes
    ).reshape(n_classes, n_classes)
    return multiclass_from_confusion(classes, confusion)


def multiclass_from_confusion(classes: np.ndarray, confusion: np.ndarray) -> dict[str, Any]:
    """`multiclass_metrics` from the sorted classes and the confusion counts (true x predicted)."""
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)

    per_class = {
        str(label): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(classes.tolist())
    }
    return {
        "accuracy": float(hits.sum() / confusion.sum()),
        "macro_f1": float(f1.mean()),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "per_class": per_class,
    }


_EVALUATORS: Final[dict[str, tuple[Callable[..., dict[str, Any]], frozenset[str]]]] = {
    EVAL_BINARY: (binary_metrics, frozenset({"threshold", "curve_points"})),
    EVAL_REGRESSION: (regression_metrics, frozenset()),
    EVAL_MULTI: (multiclass_metrics, frozenset()),
}


def evaluate(eval_type: str, y_true: Any, y_score_or_pred: Any, **options: Any) -> dict[str, Any]:
    """Compute the metrics of `eval_type` ("binary", "regression" or "multi").

    `options` are passed to the metric function (binary accepts `threshold` and
    `curve_points`); an unknown type or option raises InvalidArgument naming it.
    """
    if eval_type not in _EVALUATORS:
        raise InvalidArgument(
            f"eval_type must be one of {', '.join(EVAL_TYPES)}, got {eval_type!r}"
        )
    metric_function, accepted = _EVALUATORS[eval_type]
    unknown = sorted(set(options) - accepted)
    if unknown:
        allowed = ", ".join(sorted(accepted)) or "none"
        raise InvalidArgument(
            f"option {unknown[0]!r} does not apply to eval_type {eval_type!r} (accepted: {allowed})"
        )
    return metric_function(y_true, y_score_or_pred, **options)
