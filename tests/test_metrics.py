"""Evaluation metrics checked against scikit-learn on random data, ties included."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from kernel.components.evaluation.metrics import (
    binary_metrics,
    evaluate,
    multiclass_metrics,
    regression_metrics,
)
from kernel.errors import InvalidArgument

SEEDS = [0, 1, 2, 3]


@pytest.fixture(params=SEEDS)
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    return np.random.default_rng(request.param)


def _binary_sample(
    rng: np.random.Generator, rows: int, decimals: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores that carry signal; rounding the scores creates many ties."""
    labels = rng.integers(0, 2, size=rows)
    scores = 1.0 / (1.0 + np.exp(-(labels * 1.2 - 0.6 + rng.normal(size=rows))))
    if decimals is not None:
        scores = np.round(scores, decimals)
    return labels, scores


def _sklearn_ks(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = sk.roc_curve(labels, scores, drop_intermediate=False)
    return float(np.max(tpr - fpr))


# ---------------------------------------------------------------- binary


@pytest.mark.parametrize("decimals", [None, 2, 1])
def test_binary_metrics_match_sklearn(rng: np.random.Generator, decimals: int | None) -> None:
    # Prepare
    labels, scores = _binary_sample(rng, 2000, decimals)
    predicted = (scores >= 0.5).astype(int)

    # Execute
    result = binary_metrics(labels, scores)

    # Assert
    assert result["auc"] == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)
    assert result["ks"] == pytest.approx(_sklearn_ks(labels, scores), abs=1e-12)
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert result["precision"] == pytest.approx(sk.precision_score(labels, predicted))
    assert result["recall"] == pytest.approx(sk.recall_score(labels, predicted))
    assert result["f1"] == pytest.approx(sk.f1_score(labels, predicted))
    assert result["log_loss"] == pytest.approx(sk.log_loss(labels, scores), rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 1.0])),
        min_size=2,
        max_size=60,
    ),
    threshold=st.sampled_from([0.0, 0.3, 0.5, 0.9, 1.0]),
)
def test_binary_metrics_match_sklearn_on_heavily_tied_scores(
    rows: list[tuple[int, float]], threshold: float
) -> None:
    # Prepare
    labels = np.array([label for label, _ in rows])
    scores = np.array([score for _, score in rows])
    assume(0 < labels.sum() < labels.size)
    predicted = (scores >= threshold).astype(int)

    # Execute
    result = binary_metrics(labels, scores, threshold=threshold)

    # Assert
    assert result["auc"] == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)
    assert result["ks"] == pytest.approx(_sklearn_ks(labels, scores), abs=1e-12)
    assert result["precision"] == pytest.approx(
        sk.precision_score(labels, predicted, zero_division=0.0)
    )
    assert result["recall"] == pytest.approx(sk.recall_score(labels, predicted))
    assert result["f1"] == pytest.approx(sk.f1_score(labels, predicted, zero_division=0.0))
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert result["log_loss"] == pytest.approx(sk.log_loss(labels, scores), rel=1e-9)


def test_full_roc_curve_equals_sklearn_points(rng: np.random.Generator) -> None:
    # Prepare
    labels, scores = _binary_sample(rng, 500, 2)
    fpr, tpr, thresholds = sk.roc_curve(labels, scores, drop_intermediate=False)

    # Execute
    curve = binary_metrics(labels, scores, curve_points=10_000)["roc_curve"]

    # Assert: same points; our first threshold is finite where sklearn's is +inf
    np.testing.assert_allclose(curve["fpr"], fpr)
    np.testing.assert_allclose(curve["tpr"], tpr)
    np.testing.assert_allclose(curve["thresholds"][1:], thresholds[1:])
    assert curve["thresholds"][0] > scores.max()


def test_curves_are_sampled_keeping_ends_and_the_ks_point(rng: np.random.Generator) -> None:
    # Prepare: 3000 distinct scores give about 3000 curve points
    labels, scores = _binary_sample(rng, 3000, None)

    # Execute
    result = binary_metrics(labels, scores, curve_points=25)

    # Assert
    roc, ks_curve = result["roc_curve"], result["ks_curve"]
    assert 2 <= len(roc["fpr"]) <= 25
    assert len(roc["fpr"]) == len(roc["tpr"]) == len(roc["thresholds"])
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0)
    assert (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
    assert np.all(np.diff(roc["thresholds"]) < 0)
    gaps = np.array(ks_curve["tpr"]) - np.array(ks_curve["fpr"])
    assert gaps.max() == pytest.approx(result["ks"], abs=1e-15)
    assert ks_curve["thresholds"] == roc["thresholds"]


def test_binary_result_is_plain_json(rng: np.random.Generator) -> None:
    # Prepare
    labels, scores = _binary_sample(rng, 300, 1)

    # Execute
    text = json.dumps(binary_metrics(labels, scores), allow_nan=False)

    # Assert
    assert json.loads(text)["auc"] == pytest.approx(sk.roc_auc_score(labels, scores))


def test_log_loss_clips_certain_wrong_scores_like_sklearn() -> None:
    # Prepare: a positive scored 0 and a negative scored 1
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.0, 1.0, 0.7, 0.2])

    # Execute
    result = binary_metrics(labels, scores)

    # Assert
    assert np.isfinite(result["log_loss"])
    assert result["log_loss"] == pytest.approx(sk.log_loss(labels, scores), rel=1e-9)


def test_threshold_above_every_score_gives_zero_precision() -> None:
    # Prepare
    labels = np.array([0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.3, 0.2, 0.45])

    # Execute
    result = binary_metrics(labels, scores, threshold=0.9)

    # Assert
    assert result["precision"] == 0.0
    assert result["recall"] == 0.0
    assert result["f1"] == 0.0
    assert result["auc"] == 1.0


def test_boolean_and_float_labels_are_accepted() -> None:
    # Prepare
    scores = np.array([0.2, 0.8, 0.6, 0.1])

    # Execute
    from_bool = binary_metrics(np.array([False, True, True, False]), scores)
    from_float = binary_metrics(np.array([0.0, 1.0, 1.0, 0.0]), scores)

    # Assert
    assert from_bool == from_float
    assert from_bool["auc"] == 1.0


@pytest.mark.parametrize(
    ("labels", "scores", "fragment"),
    [
        ([0, 1, 1], [0.1, 0.2], "y_true has 3 rows but y_score has 2"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "binary labels 0 and 1"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "only class 1"),
        ([], [], "y_true is empty"),
        ([0, 1], [0.1, float("nan")], "y_score holds 1 missing"),
        ([0, 1], [-0.5, 2.0], "y_score must be probabilities in [0, 1]"),
        ([0, 1], ["a", "b"], "y_score must hold numbers"),
    ],
)
def test_binary_metrics_refuse_bad_input(
    labels: list[object], scores: list[object], fragment: str
) -> None:
    # Execute / Assert
    with pytest.raises(InvalidArgument, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        binary_metrics(np.array(labels), np.array(scores))


def test_binary_metrics_refuse_too_few_curve_points() -> None:
    with pytest.raises(InvalidArgument, match="curve_points"):
        binary_metrics(np.array([0, 1]), np.array([0.2, 0.7]), curve_points=1)


# ---------------------------------------------------------------- regression


def _assert_regression_matches_sklearn(truth: np.ndarray, pred: np.ndarray) -> None:
    result = regression_metrics(truth, pred)
    mse = sk.mean_squared_error(truth, pred)
    assert result["mse"] == pytest.approx(mse, rel=1e-9, abs=1e-12)
    assert result["mae"] == pytest.approx(sk.mean_absolute_error(truth, pred), rel=1e-9, abs=1e-12)
    assert result["rmse"] == pytest.approx(
        sk.root_mean_squared_error(truth, pred), rel=1e-9, abs=1e-12
    )
    assert result["r2"] == pytest.approx(sk.r2_score(truth, pred), rel=1e-9, abs=1e-9)
    assert result["explained_variance"] == pytest.approx(
        sk.explained_variance_score(truth, pred), rel=1e-9, abs=1e-9
    )


def test_regression_metrics_match_sklearn(rng: np.random.Generator) -> None:
    # Prepare
    truth = rng.normal(10.0, 3.0, size=1000)
    pred = truth * 0.8 + rng.normal(1.0, 1.0, size=1000)

    # Execute / Assert
    _assert_regression_matches_sklearn(truth, pred)


@settings(max_examples=150, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
            st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
        ),
        min_size=2,
        max_size=40,
    )
)
def test_regression_metrics_match_sklearn_on_any_floats(pairs: list[tuple[float, float]]) -> None:
    # Prepare
    truth = np.array([t for t, _ in pairs])
    pred = np.array([p for _, p in pairs])
    # R2 is ill-conditioned when y_true's variance is rounding noise; sklearn and a
    # different summation order may then disagree in every digit.
    spread = np.ptp(truth)
    assume(spread == 0.0 or spread > 1e-6 * max(1.0, float(np.abs(truth).max())))

    # Execute / Assert
    _assert_regression_matches_sklearn(truth, pred)


def test_regression_on_constant_truth_follows_sklearn_convention() -> None:
    # Prepare
    truth = np.full(5, 3.0)

    # Execute
    perfect = regression_metrics(truth, truth.copy())
    off = regression_metrics(truth, truth + np.arange(5))

    # Assert
    assert perfect["r2"] == sk.r2_score(truth, truth) == 1.0
    assert off["r2"] == sk.r2_score(truth, truth + np.arange(5)) == 0.0


def test_r2_of_one_row_is_none() -> None:
    # Execute
    result = regression_metrics(np.array([2.0]), np.array([3.5]))

    # Assert: sklearn returns NaN (undefined); the rest is still computed
    assert result["r2"] is None
    assert result["mse"] == 2.25
    assert result["mae"] == 1.5


@pytest.mark.parametrize(
    ("truth", "pred", "fragment"),
    [
        ([1.0, 2.0], [1.0], "y_true has 2 rows but y_pred has 1"),
        ([], [], "y_true is empty"),
        ([1.0, float("inf")], [1.0, 2.0], "y_true holds 1 missing or infinite"),
    ],
)
def test_regression_metrics_refuse_bad_input(
    truth: list[float], pred: list[float], fragment: str
) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        regression_metrics(np.array(truth), np.array(pred))


# ---------------------------------------------------------------- multiclass


def _assert_multiclass_matches_sklearn(truth: np.ndarray, pred: np.ndarray) -> None:
    result = multiclass_metrics(truth, pred)
    labels = np.unique(np.concatenate((truth, pred)))
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        truth, pred, labels=labels, zero_division=0.0
    )
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(truth, pred))
    assert result["macro_f1"] == pytest.approx(
        sk.f1_score(truth, pred, average="macro", zero_division=0.0)
    )
    assert list(result["per_class"]) == [str(label) for label in labels.tolist()]
    per_class = list(result["per_class"].values())
    np.testing.assert_allclose([c["precision"] for c in per_class], precision)
    np.testing.assert_allclose([c["recall"] for c in per_class], recall)
    np.testing.assert_allclose([c["f1"] for c in per_class], f1)
    assert [c["support"] for c in per_class] == support.tolist()


def test_multiclass_metrics_match_sklearn(rng: np.random.Generator) -> None:
    # Prepare: class 4 appears only among predictions
    truth = rng.integers(0, 4, size=800)
    pred = np.where(rng.random(800) < 0.6, truth, rng.integers(0, 5, size=800))

    # Execute / Assert
    _assert_multiclass_matches_sklearn(truth, pred)


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(["cat", "dog", "owl"]), st.sampled_from(["cat", "dog", "yak"])),
        min_size=1,
        max_size=50,
    )
)
def test_multiclass_metrics_match_sklearn_on_string_labels(pairs: list[tuple[str, str]]) -> None:
    # Prepare
    truth = np.array([t for t, _ in pairs])
    pred = np.array([p for _, p in pairs])

    # Execute / Assert
    _assert_multiclass_matches_sklearn(truth, pred)


def test_multiclass_accepts_a_score_matrix(rng: np.random.Generator) -> None:
    # Prepare
    truth = rng.integers(0, 3, size=200)
    scores = rng.random((200, 3))

    # Execute
    result = multiclass_metrics(truth, scores)

    # Assert
    assert result == multiclass_metrics(truth, scores.argmax(axis=1))
    assert result["accuracy"] == pytest.approx(sk.accuracy_score(truth, scores.argmax(axis=1)))


@pytest.mark.parametrize(
    ("truth", "pred", "fragment"),
    [
        (np.array([0, 1, 2]), np.array([0, 1]), "y_true has 3 rows but y_pred has 2"),
        (np.array([0, 1]), np.array(["a", "b"]), "different kinds"),
        (np.array([0, None], dtype=object), np.array([0, 1]), "missing"),
        (np.array([0.0, np.nan]), np.array([0, 1]), "missing"),
        (np.array([], dtype=int), np.array([], dtype=int), "empty"),
    ],
)
def test_multiclass_metrics_refuse_bad_input(
    truth: np.ndarray, pred: np.ndarray, fragment: str
) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        multiclass_metrics(truth, pred)


# ---------------------------------------------------------------- dispatch


def test_evaluate_dispatches_on_eval_type(rng: np.random.Generator) -> None:
    # Prepare
    labels, scores = _binary_sample(rng, 200, 2)
    values = rng.normal(size=200)

    # Execute / Assert
    assert evaluate("binary", labels, scores, threshold=0.4) == binary_metrics(
        labels, scores, threshold=0.4
    )
    assert evaluate("regression", values, values * 2) == regression_metrics(values, values * 2)
    assert evaluate("multi", labels, 1 - labels) == multiclass_metrics(labels, 1 - labels)


def test_evaluate_refuses_unknown_eval_type() -> None:
    with pytest.raises(InvalidArgument, match=r"eval_type must be one of .* got 'clustering'"):
        evaluate("clustering", np.array([0, 1]), np.array([0.1, 0.9]))


def test_evaluate_refuses_an_option_the_type_does_not_take() -> None:
    with pytest.raises(InvalidArgument, match="option 'threshold' does not apply"):
        evaluate("regression", np.array([0.0, 1.0]), np.array([0.1, 0.9]), threshold=0.5)
