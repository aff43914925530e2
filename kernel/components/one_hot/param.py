"""Parameters of OneHot: which columns, how many categories each keeps, what missing values become."""

from __future__ import annotations

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError


class OneHotParam(BaseParam):
    """Categorical columns (text or integer) to 0/1 indicator columns; rare and unseen values go to "other"."""

    need_run: bool = Field(True, description="false passes the data through")
    columns: list[str] | None = Field(None, description="columns to encode (default: every text feature)")
    max_categories: int = Field(
        32, ge=1, le=10_000, description="indicator columns per column at most, the most frequent values; the rest go to <column>_other"
    )
    missing_as_category: bool = Field(
        True, description="a missing value gets its own indicator <column>_missing; false leaves its row all zeros"
    )
    distinct_limit: int = Field(
        100_000, ge=1, le=10_000_000, description="a column with more distinct values is refused (bin it instead)"
    )

    def _check(self) -> None:
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            raise ParamError("OneHotParam.columns: duplicate column names")
