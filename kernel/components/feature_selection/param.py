"""Parameters of FeatureSelection: which filters run, and what a provider reveals."""

from __future__ import annotations

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError


class FeatureSelectionParam(BaseParam):
    """Each filter runs when its parameter is set; manual lists usually go in role_params."""

    need_run: bool = Field(True, description="false passes the data through")
    manual_keep: list[str] | None = Field(None, description="keep only these features of this member")
    manual_drop: list[str] = Field(default_factory=list, description="drop these features of this member")
    max_missing_rate: float | None = Field(
        None, ge=0.0, le=1.0, description="drop a feature whose share of missing values exceeds this"
    )
    min_variance: float | None = Field(None, ge=0.0, description="drop a feature whose variance is below this")
    iv_threshold: float | None = Field(
        None, ge=0.0, description="drop a feature whose IV is below this (needs a VertFeatureBinning model)"
    )
    iv_top_k: int | None = Field(
        None, ge=1, description="keep the k features of highest IV over all members (decided by the promoter)"
    )
    reveal_feature_names: bool = Field(
        False, description="provider: let the promoter see this member's feature names (else anonymous ids)"
    )

    def _check(self) -> None:
        if self.manual_keep is not None:
            both = set(self.manual_keep) & set(self.manual_drop)
            if both:
                raise ParamError(f"FeatureSelectionParam.manual_drop: {', '.join(sorted(both))} also in manual_keep")
