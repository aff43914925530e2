"""Constants of HorzLR: output column names, metric names and the round ids of its masked sums."""

from __future__ import annotations

from typing import Final

PREDICT_SCORE_COLUMN: Final = "predict_score"
PREDICT_RESULT_COLUMN: Final = "predict_result"

METRIC_NAMESPACE_TRAIN: Final = "train"

# A feature whose global standard deviation is below this is only centred, not divided.
MIN_SCALE: Final = 1e-12

# Round ids of the masked sums (each may be masked once per member).
ROUND_SCALE_MEAN: Final = "scale-mean"
ROUND_SCALE_VARIANCE: Final = "scale-variance"
ROUND_PREFIX_TRAIN: Final = "round-"
