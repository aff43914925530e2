"""The logistic link shared by the logistic models: sigmoid and the log-loss of a raw score."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def sigmoid(z: FloatArray) -> FloatArray:
    """1 / (1 + exp(-z)) without overflow."""
    result: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return result


def log_loss_sum(z: FloatArray, y: FloatArray) -> float:
    """Sum over rows of -log p(y | z) for labels in {0, 1}."""
    return float(np.sum(np.logaddexp(0.0, z) - y * z))


def log_loss_mean(z: FloatArray, y: FloatArray) -> float:
    """Mean over rows of -log p(y | z) for labels in {0, 1}."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z))
