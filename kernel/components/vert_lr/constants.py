"""Constants of VertLR: output column names and the gradient mask size."""

from __future__ import annotations

from typing import Final

PREDICT_SCORE_COLUMN: Final = "predict_score"
PREDICT_RESULT_COLUMN: Final = "predict_result"
# Name of a provider's partial score in the tables the promoter joins at prediction.
PROVIDER_SCORE_COLUMN: Final = "__weft_provider_score"
PROMOTER_SCORE_COLUMN: Final = "__weft_promoter_score"

# The mask a provider adds to X^T [[d]] exceeds the gradient's bound by this many bits, so
# the decrypted sum is statistically independent of the gradient (distance <= 2**-bits).
MASK_STATISTICAL_BITS: Final = 64

# A feature whose standard deviation is below this is only centred, not divided.
MIN_SCALE: Final = 1e-12

METRIC_NAMESPACE_TRAIN: Final = "train"

# Fixed-point bits of X in X^T [[d]] when the param leaves it open. Standardised features are
# O(1), so 8 bits keep every exponent within 12 bits (one bucket window: the fastest plan)
# at a relative error near 2**-9 per entry; raw features may be small and need more.
FEATURE_PRECISION_BITS_SCALED: Final = 8
FEATURE_PRECISION_BITS_RAW: Final = 16

# The most rows one predict_forward message carries (a provider streams its scores).
PREDICT_STREAM_ROWS: Final = 65_536
