"""Parameters of VertPearson: the features, the key and who learns the result."""

from __future__ import annotations

from pydantic import Field

from kernel.base_param import BaseParam
from kernel.errors import ParamError
from kernel.security.constants import PAILLIER_KEY_BITS


class VertPearsonParam(BaseParam):
    """Correlations between every member's features (Paillier, no rows move), and each member's own matrix."""

    need_run: bool = Field(True, description="false passes the data through")
    cols: list[str] | None = Field(None, description="features of this member to correlate (default: all)")
    share_with_provider: bool = Field(
        True, description="promoter: send each provider its cross-correlation matrix (else only the promoter learns it)"
    )
    reveal_feature_names: bool = Field(
        False, description="let the other side see this member's feature names (else anonymous ids)"
    )
    key_bits: int = Field(2048, description="Paillier key size of the promoter (1024 is weak, for tests)")
    precision_bits: int = Field(24, ge=8, le=40, description="fixed-point bits of the standardised values on each side")
    workers: int | None = Field(None, ge=1, le=256, description="threads for Paillier work (default: every core)")

    def _check(self) -> None:
        if self.key_bits not in PAILLIER_KEY_BITS:
            raise ParamError(f"VertPearsonParam.key_bits: must be one of {list(PAILLIER_KEY_BITS)}, got {self.key_bits}")
        if self.cols is not None and len(set(self.cols)) != len(self.cols):
            raise ParamError("VertPearsonParam.cols: duplicate column names")
