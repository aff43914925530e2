"""Parameters of VertFeatureBinning: how to bin, what to output, and what a provider reveals."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError
from kernel.security.constants import PAILLIER_KEY_BITS


class VertFeatureBinningParam(BaseParam):
    """Bins every member's features; WOE and IV against the promoter's binary label."""

    need_run: bool = Field(True, description="false passes the data through")
    method: Literal["quantile", "bucket"] = Field(
        "quantile", description="quantile: equal-frequency bins; bucket: equal-width bins"
    )
    bin_num: int = Field(10, ge=2, le=1000, description="bins per feature (fewer when values repeat)")
    cols: list[str] | None = Field(None, description="features to bin at this member (default: all)")
    transform_method: Literal["none", "bin_index", "woe"] = Field(
        "none", description="output data: unchanged, each binned value replaced by its bin index, or by its WOE"
    )
    adjustment_factor: float = Field(
        0.5, gt=0.0, le=10.0, description="added to event and non-event counts of a bin where either is zero"
    )
    provider_iv: bool = Field(True, description="compute the providers' WOE and IV with encrypted labels")
    provider_woe: bool = Field(
        True, description="promoter: send each provider the WOE and IV of its bins (they reveal its bins' label rates); "
                          "false keeps them at the promoter (use the WOE component's blinded mode)"
    )
    reveal_feature_names: bool = Field(
        False, description="provider: let the promoter see this member's feature names (else anonymous ids)"
    )
    key_bits: int = Field(2048, description="Paillier key size of the promoter (1024 is weak, for tests)")
    workers: int | None = Field(None, ge=1, le=256, description="threads for Paillier work (default: every core)")

    def _check(self) -> None:
        if self.key_bits not in PAILLIER_KEY_BITS:
            raise ParamError(
                f"VertFeatureBinningParam.key_bits: must be one of {list(PAILLIER_KEY_BITS)}, got {self.key_bits}"
            )
        if self.cols is not None and len(set(self.cols)) != len(self.cols):
            raise ParamError("VertFeatureBinningParam.cols: duplicate column names")
