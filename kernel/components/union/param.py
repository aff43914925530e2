"""Parameters of Union: what to do with an id that more than one input holds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam


class UnionParam(BaseParam):
    """Stacks the rows of every input.data.data table (same columns); an id in several inputs is refused or resolved."""

    need_run: bool = Field(True, description="false passes the first input through")
    duplicate_ids: Literal["refuse", "keep_first", "keep_last"] = Field(
        "refuse",
        description="an id in several inputs: refuse the job, or keep the row of the input listed first / last "
                    "(an id twice in one input is always refused)",
    )
