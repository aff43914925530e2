"""Parameters of Scale: the method, the columns, and the range and clipping of min-max."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError


class ScaleParam(BaseParam):
    """Standard ((x - mean) / std) or min-max ((x - low) / (high - low)) scaling per column; predict jobs reuse the fit."""

    need_run: bool = Field(True, description="false passes the data through")
    method: Literal["standard", "min_max"] = Field("standard", description="standard or min_max")
    columns: list[str] | None = Field(None, description="columns to scale (default: every feature)")
    with_mean: bool = Field(True, description="standard: subtract the mean")
    with_std: bool = Field(True, description="standard: divide by the population standard deviation (ddof 0)")
    lower_quantile: float = Field(
        0.0, ge=0.0, le=1.0, description="min_max: the fitted low end is this quantile (0: the minimum)"
    )
    upper_quantile: float = Field(
        1.0, ge=0.0, le=1.0, description="min_max: the fitted high end is this quantile (1: the maximum)"
    )
    clip: bool = Field(False, description="min_max: clip scaled values into [0, 1] (new data outside the fitted range)")

    def _check(self) -> None:
        if self.lower_quantile >= self.upper_quantile:
            raise ParamError(
                f"ScaleParam.upper_quantile: must exceed lower_quantile ({self.lower_quantile}), "
                f"got {self.upper_quantile}"
            )
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            raise ParamError("ScaleParam.columns: duplicate column names")
