"""Parameters of ScoreCard: the points scale and rounding."""

from __future__ import annotations

from pydantic import Field

from kernel.base_param import BaseParam


class ScoreCardParam(BaseParam):
    """Points per bin at the member owning each feature, and a score per row at the promoter (score = offset - factor * log-odds)."""

    need_run: bool = Field(True, description="false passes the data through")
    base_score: float = Field(600.0, gt=0.0, description="the score whose good:bad odds are base_odds")
    base_odds: float = Field(50.0, gt=0.0, description="good:bad odds at base_score")
    pdo: float = Field(20.0, gt=0.0, description="points to double the odds")
    points_decimals: int | None = Field(
        0, ge=0, le=10, description="round the points of every bin and base to this many decimals (null: no rounding)"
    )
    score_column: str = Field("score", min_length=1, description="promoter: the column of the score")
