"""Parameters of Sample: random or stratified, the fractions, and the seed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError


class SampleParam(BaseParam):
    """Keeps a random share of the rows, or a share per label class; exact counts, the same ids at every member."""

    need_run: bool = Field(True, description="false passes the data through")
    method: Literal["random", "stratified"] = Field(
        "random", description="random: `fraction` of all rows; stratified: `fractions` per label value"
    )
    fraction: float = Field(0.1, gt=0.0, le=1.0, description="random: the share of rows kept")
    fractions: dict[str, float] = Field(
        default_factory=dict,
        description='stratified: share kept per label value, e.g. {"0": 0.2, "1": 1.0}; other classes are dropped',
    )
    random_seed: int | None = Field(None, ge=0, description="seed of the sample keys (default: random)")

    def _check(self) -> None:
        if self.method == "stratified":
            if not self.fractions:
                raise ParamError("SampleParam.fractions: stratified sampling needs a share per label value")
            bad = {k: v for k, v in self.fractions.items() if not 0.0 <= v <= 1.0}
            if bad:
                raise ParamError(f"SampleParam.fractions: shares must lie in [0, 1], got {bad}")
