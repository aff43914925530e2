"""Parameters of Evaluation: the kind of task and which columns hold truth and prediction."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam


class EvaluationParam(BaseParam):
    """Scores predictions against labels, per split (train / validate) when the data is tagged."""

    need_run: bool = Field(True, description="false skips evaluation")
    eval_type: Literal["binary", "regression", "multi"] = Field("binary", description="kind of prediction task")
    label_column: str | None = Field(None, description="label column (default: the data's label)")
    score_column: str = Field("predict_score", min_length=1, description="score column (binary, regression)")
    prediction_column: str = Field("predict_result", min_length=1, description="predicted class (multi)")
    pos_label: int = Field(1, description="the positive class of a binary task")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="score at or above which a row is positive")
    curve_points: int = Field(100, ge=2, le=10_000, description="points kept of the ROC and KS curves")
    groups: int = Field(
        10, ge=2, le=100,
        description="binary: score groups of the gain, lift and KS tables (deciles), also the bins of the score PSI",
    )
    psi_reference: str = Field(
        "train", min_length=1, description="binary: the split whose scores the other splits' score PSI is measured against"
    )
