"""Parameters of DataSplit: the fractions of the three parts, stratification and the seed."""

from __future__ import annotations

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError


class DataSplitParam(BaseParam):
    """Train / validate / test parts by fractions (stratified on the promoter's label); outputs in that order."""

    need_run: bool = Field(True, description="false passes the data through (as the first output)")
    train_fraction: float = Field(0.8, ge=0.0, le=1.0, description="share of the rows in the first output")
    validate_fraction: float = Field(0.0, ge=0.0, le=1.0, description="share of the rows in the second output")
    test_fraction: float = Field(0.2, ge=0.0, le=1.0, description="share of the rows in the third output")
    stratified: bool = Field(True, description="every part keeps the label's class shares (needs the promoter's label)")
    random_seed: int | None = Field(None, ge=0, description="seed of the split keys (default: random; set it to repeat a split)")

    def _check(self) -> None:
        total = self.train_fraction + self.validate_fraction + self.test_fraction
        if abs(total - 1.0) > 1e-9:
            raise ParamError(
                f"DataSplitParam.test_fraction: train, validate and test fractions must add up to 1, got {total:g}"
            )
