"""The update rule each member applies to its own weights: SGD or Adam, L1/L2, learning-rate decay.

Every rule here is elementwise, so members updating their own slices of the weight vector
give exactly the update one party holding every feature would make.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from kernel.blocks.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON

FloatArray = npt.NDArray[np.float64]


class MemberOptimizer:
    """Updates one member's weights; `penalized` marks the entries the penalty applies to."""

    def __init__(
        self, method: str, learning_rate: float, decay: float, decay_sqrt: bool,
        penalty: str, alpha: float, penalized: npt.NDArray[np.bool_],
    ) -> None:
        self.method = method
        self.learning_rate = learning_rate
        self.decay = decay
        self.decay_sqrt = decay_sqrt
        self.penalty = penalty
        self.alpha = alpha
        self.penalized = penalized
        self.steps = 0
        self.first_moment = np.zeros(penalized.shape)
        self.second_moment = np.zeros(penalized.shape)

    def current_rate(self) -> float:
        """The learning rate of the next step after decay."""
        factor = 1.0 + self.decay * self.steps
        return self.learning_rate / (math.sqrt(factor) if self.decay_sqrt else factor)

    def penalty_value(self, weights: FloatArray) -> float:
        """alpha * R(w) over the penalised entries."""
        w = weights[self.penalized]
        if self.penalty == "L2":
            return 0.5 * self.alpha * float(w @ w)
        if self.penalty == "L1":
            return self.alpha * float(np.abs(w).sum())
        return 0.0

    def step(self, weights: FloatArray, loss_gradient: FloatArray) -> FloatArray:
        """New weights from the gradient of the mean loss (the penalty is added here)."""
        rate = self.current_rate()
        gradient = loss_gradient.copy()
        if self.penalty == "L2":
            gradient += np.where(self.penalized, self.alpha * weights, 0.0)
        elif self.penalty == "L1" and self.method == "adam":
            gradient += np.where(self.penalized, self.alpha * np.sign(weights), 0.0)
        self.steps += 1
        if self.method == "adam":
            self.first_moment = ADAM_BETA1 * self.first_moment + (1 - ADAM_BETA1) * gradient
            self.second_moment = ADAM_BETA2 * self.second_moment + (1 - ADAM_BETA2) * gradient * gradient
            m_hat = self.first_moment / (1 - ADAM_BETA1 ** self.steps)
            v_hat = self.second_moment / (1 - ADAM_BETA2 ** self.steps)
            return weights - rate * m_hat / (np.sqrt(v_hat) + ADAM_EPSILON)
        updated = weights - rate * gradient
        if self.penalty == "L1":
            # Proximal step of the L1 term: shrink towards zero, exact zeros where it crosses.
            shrunk = np.sign(updated) * np.maximum(np.abs(updated) - rate * self.alpha, 0.0)
            updated = np.where(self.penalized, shrunk, updated)
        return updated
