"""Parameters of HorzLR: local training, regularisation, rounds, stopping rule, scaling and masking."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.constants import BINARY_LABELS
from kernel.errors import ParamError
from kernel.security.constants import SECAGG_MAX_PRECISION_BITS


class HorzLRParam(BaseParam):
    """Logistic regression over rows split between members; an arbiter averages masked updates.

    Each member minimises mean log-loss + alpha * R(w) over its own rows (R = ||w||^2 / 2 for
    L2, ||w||_1 for L1; the intercept is not penalised); the arbiter averages the members'
    weights, weighted by row count. scikit-learn's LogisticRegression(C=c) on the pooled n
    rows is the same objective with alpha = 1 / (c * n).
    """

    need_run: bool = Field(True, description="false passes the data through")
    penalty: Literal["L1", "L2", "none"] = Field("L2", description="regularisation of the weights")
    alpha: float = Field(0.01, ge=0.0, description="regularisation strength")
    optimizer: Literal["sgd", "adam"] = Field("adam", description="update rule of each member's local steps")
    learning_rate: float = Field(0.1, gt=0.0, le=100.0, description="step size")
    decay: float = Field(0.0, ge=0.0, description="learning rate at local step t: lr / (1 + decay * t)")
    decay_sqrt: bool = Field(False, description="use lr / sqrt(1 + decay * t) instead")
    batch_size: int = Field(-1, ge=-1, description="rows per local mini-batch; -1 means all of a member's rows")
    local_epochs: int = Field(1, ge=1, le=10_000, description="passes over its rows a member makes per round")
    max_iter: int = Field(30, ge=1, le=100_000, description="maximum number of aggregation rounds")
    tol: float = Field(1e-4, ge=0.0, description="early-stop threshold")
    early_stop: Literal["diff", "abs", "weight_diff", "none"] = Field(
        "diff",
        description="diff: the round loss changes by less than tol; abs: it is below tol; "
        "weight_diff: the global weights move by less than tol (L2 norm)",
    )
    fit_intercept: bool = Field(True, description="learn an intercept")
    feature_scaling: Literal["standard", "none"] = Field(
        "standard", description="standard: centre and scale by the mean and std of every member's rows (masked sums)"
    )
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="score at or above which predict_result is 1")
    precision_bits: int = Field(
        24, ge=8, le=SECAGG_MAX_PRECISION_BITS,
        description="fixed-point bits of the masked sums (every |value| * 2**bits * members must stay below 2**63)",
    )
    random_seed: int | None = Field(None, ge=0, description="seed of the mini-batch order (default: random)")

    def _check(self) -> None:
        if self.batch_size == 0:
            raise ParamError("HorzLRParam.batch_size: must be -1 (all rows) or at least 1")

    def label_values(self) -> tuple[int, ...] | None:
        return BINARY_LABELS
