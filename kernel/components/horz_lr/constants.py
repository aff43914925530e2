"""Constants of HorzLR and of the masked-sum rounds it shares with Distribution."""

from __future__ import annotations

from typing import Final

PREDICT_SCORE_COLUMN: Final = "predict_score"
PREDICT_RESULT_COLUMN: Final = "predict_result"

METRIC_NAMESPACE_TRAIN: Final = "train"
SECURE_AGGREGATION_METRIC: Final = "secure_aggregation"

# A feature whose global standard deviation is below this is only centred, not divided.
MIN_SCALE: Final = 1e-12

# What a member says in its first message to the arbiter.
MODE_FIT: Final = "fit"
MODE_PREDICT: Final = "predict"

# A member waits for the arbiter's reply this many times the get timeout: the arbiter gives
# every member one get timeout to deliver its vector, then tells the others who dropped out,
# so a member must outwait the arbiter's own wait to learn the dropped member's name.
REPLY_TIMEOUT_FACTOR: Final = 2.0

# Round ids of the masked sums (each may be masked once per member).
ROUND_SCALE_MEAN: Final = "scale-mean"
ROUND_SCALE_VARIANCE: Final = "scale-variance"
ROUND_PREFIX_TRAIN: Final = "round-"
