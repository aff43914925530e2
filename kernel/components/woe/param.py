"""Parameters of WOE: which features, and what a provider is told about its bins."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError


class WOEParam(BaseParam):
    """Each binned feature replaced by the WOE of its bin, from a VertFeatureBinning model (input.model)."""

    need_run: bool = Field(True, description="false passes the data through")
    cols: list[str] | None = Field(None, description="features to encode at this member (default: every binned one)")
    provider_disclosure: Literal["woe", "blinded"] = Field(
        "woe",
        description="promoter: woe sends each provider its bins' WOE (it learns their label rates); blinded sends "
                    "a*WOE+b with secret a, b per feature (it learns neither; models with standard scaling are unchanged)",
    )
    random_seed: int | None = Field(None, ge=0, description="promoter: seed of the blinding factors (default: random)")

    def _check(self) -> None:
        if self.cols is not None and len(set(self.cols)) != len(self.cols):
            raise ParamError("WOEParam.cols: duplicate column names")
