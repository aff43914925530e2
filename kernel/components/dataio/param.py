"""Parameters of DataIO: which columns to read, how to treat the label and missing values."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError


class DataIOParam(BaseParam):
    """Turns a raw data set into the id + label + numeric features every model reads."""

    need_run: bool = Field(True, description="false passes the data through untouched")
    with_label: bool = Field(True, description="whether this member's data carries the label")
    label_name: str = Field("y", min_length=1, description="label column (used when with_label)")
    label_type: Literal["int", "float"] = Field("int", description="type the label is cast to")
    include_features: list[str] | None = Field(None, description="only these feature columns (default: all)")
    exclude_features: list[str] = Field(default_factory=list, description="feature columns to drop")
    missing_fill_method: Literal["none", "drop", "mean", "median", "constant"] = Field(
        "none", description="what to do with missing feature values"
    )
    missing_fill_value: float = Field(0.0, description="value used by missing_fill_method=constant")

    def _check(self) -> None:
        if self.include_features is not None:
            overlap = set(self.include_features) & set(self.exclude_features)
            if overlap:
                raise ParamError(
                    f"DataIOParam.exclude_features: {', '.join(sorted(overlap))} also in include_features"
                )
            if len(set(self.include_features)) != len(self.include_features):
                raise ParamError("DataIOParam.include_features: duplicate column names")
