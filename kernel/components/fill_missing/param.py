"""Parameters of FillMissing: the fill method, per-column overrides and constants."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError

FillMethod = Literal["mean", "median", "mode", "constant"]


class FillMissingParam(BaseParam):
    """Fills missing values with each column's mean, median, mode or a constant; predict jobs reuse the fitted values."""

    need_run: bool = Field(True, description="false passes the data through")
    method: FillMethod = Field("mean", description="mean, median (exact), mode (most frequent value) or constant")
    value: float | str = Field(0.0, description="the constant of method=constant (a string for text columns)")
    columns: list[str] | None = Field(None, description="columns to fill (default: every feature)")
    column_methods: dict[str, FillMethod] = Field(
        default_factory=dict, description="per-column method overriding `method`"
    )
    column_values: dict[str, float | str] = Field(
        default_factory=dict, description="per-column constant for method=constant overriding `value`"
    )
    mode_distinct_limit: int = Field(
        100_000, ge=1, le=10_000_000, description="method=mode refuses a column with more distinct values"
    )

    def _check(self) -> None:
        if self.columns is not None:
            if len(set(self.columns)) != len(self.columns):
                raise ParamError("FillMissingParam.columns: duplicate column names")
            for field, named in (("column_methods", self.column_methods), ("column_values", self.column_values)):
                extra = sorted(set(named) - set(self.columns))
                if extra:
                    raise ParamError(f"FillMissingParam.{field}: {', '.join(extra)} not in columns")
