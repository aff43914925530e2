"""Parameters of Distribution: which features to describe, the quantiles and the histogram."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from kernel.base_param import BaseParam


class DistributionParam(BaseParam):
    """Per-feature count, missing ratio, mean, std, min, max, quantiles and histogram."""

    need_run: bool = Field(True, description="false passes the data through")
    features: list[str] | None = Field(None, description="features to describe (default: all but id and label)")
    quantiles: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75], min_length=1,
                                   description="quantile levels in [0, 1]")
    bins: int = Field(10, ge=1, le=100_000, description="histogram bins (equal width)")
    quantile_method: Literal["exact", "histogram"] = Field(
        "exact", description="alone: exact quantiles or from the histogram; with an arbiter always histogram"
    )

    @field_validator("quantiles")
    @classmethod
    def _levels_in_range(cls, levels: list[float]) -> list[float]:
        bad = [q for q in levels if not 0.0 <= q <= 1.0]
        if bad:
            raise ValueError(f"quantile levels must lie in [0, 1], got {bad}")
        return levels
