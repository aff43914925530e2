"""Scorecard arithmetic: log-odds to points with a base score, base odds and points to double the odds.

score = offset - factor * z, where z is the model's log-odds of the event (label 1, "bad"),
factor = pdo / ln 2 and offset = base_score - factor * ln(base_odds): a row scored
base_score has good:bad odds of base_odds, and every pdo points double those odds.
For a logistic regression on standardised inputs, z = b + sum_j w_j (x_j - m_j) / s_j, so a
feature's bin with value x gets -factor * (w_j / s_j) * x points and the constants
factor * w_j * m_j / s_j join the member's base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kernel.blocks.link import sigmoid

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PointScale:
    """The scale of a scorecard."""

    base_score: float
    base_odds: float
    pdo: float

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def points(self, coefficient: float, values: FloatArray) -> FloatArray:
        """Points of feature values (WOE) under an effective coefficient."""
        result: FloatArray = -self.factor * coefficient * np.asarray(values, dtype=np.float64)
        return result

    def base(self, intercept: float) -> float:
        """Base points of an effective intercept."""
        return self.offset - self.factor * intercept

    def probability(self, score: FloatArray) -> FloatArray:
        """The event probability a score stands for."""
        z = (self.offset - np.asarray(score, dtype=np.float64)) / self.factor
        return sigmoid(z)


def rounded(values: FloatArray | float, decimals: int | None) -> FloatArray:
    """Points rounded to `decimals` (None: as they are)."""
    array = np.asarray(values, dtype=np.float64)
    return array if decimals is None else np.round(array, decimals)


def effective_linear(weights: FloatArray, mean: FloatArray, scale: FloatArray) -> tuple[FloatArray, float]:
    """Coefficients on the raw inputs and the constant a standardised linear part adds."""
    coefficients = np.asarray(weights, dtype=np.float64) / np.asarray(scale, dtype=np.float64)
    constant = -float(np.sum(coefficients * np.asarray(mean, dtype=np.float64)))
    return coefficients, constant
