"""Parameters of FeatureStability: the columns, the reference bins and the readings."""

from __future__ import annotations

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError
from kernel.stats.constants import PSI_SHIFT_BELOW, PSI_STABLE_BELOW


class FeatureStabilityParam(BaseParam):
    """PSI of each column between a reference data set and a new one (input.data.data: [reference, new]) at each member."""

    need_run: bool = Field(True, description="false passes the new data through")
    columns: list[str] | None = Field(
        None, description="columns to compare (default: every feature; name the score column for score PSI)"
    )
    bin_num: int = Field(10, ge=2, le=1000, description="equal-frequency bins of the reference (fewer when values repeat)")
    stable_below: float = Field(PSI_STABLE_BELOW, gt=0.0, description="a PSI below this reads stable")
    shift_below: float = Field(PSI_SHIFT_BELOW, gt=0.0, description="below this a minor shift, from it a major shift")

    def _check(self) -> None:
        if self.shift_below <= self.stable_below:
            raise ParamError(f"FeatureStabilityParam.shift_below: must exceed stable_below ({self.stable_below})")
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            raise ParamError("FeatureStabilityParam.columns: duplicate column names")
