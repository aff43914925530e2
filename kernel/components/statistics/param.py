"""Parameters of Statistics: which columns, which quantiles, how far distinct counts stay exact."""

from __future__ import annotations

from pydantic import Field, field_validator

from kernel.base_param import BaseParam
from kernel.errors import ParamError
from kernel.stats.constants import DISTINCT_EXACT_LIMIT


class StatisticsParam(BaseParam):
    """Per column count, missing rate, mean, std, min/max, quantiles, skewness, kurtosis, distinct count."""

    need_run: bool = Field(True, description="false passes the data through")
    columns: list[str] | None = Field(
        None, description="columns to describe (default: every feature; name the label here to describe it too)"
    )
    quantiles: list[float] = Field(
        default_factory=lambda: [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99], min_length=1, max_length=101,
        description="quantile levels in [0, 1], exact (numpy's linear method) on LOCAL and SPARK",
    )
    distinct_exact_limit: int = Field(
        DISTINCT_EXACT_LIMIT, ge=1, le=1_000_000,
        description="distinct counts are exact up to this many values, a HyperLogLog estimate (~1%) above",
    )

    @field_validator("quantiles")
    @classmethod
    def _levels_in_range(cls, levels: list[float]) -> list[float]:
        bad = [q for q in levels if not 0.0 <= q <= 1.0]
        if bad:
            raise ValueError(f"quantile levels must lie in [0, 1], got {bad}")
        return levels

    def _check(self) -> None:
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            raise ParamError("StatisticsParam.columns: duplicate column names")
