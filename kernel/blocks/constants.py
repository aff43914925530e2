"""Constants of the shared building blocks: the masked-sum protocol and the Adam optimizer."""

from __future__ import annotations

from typing import Final

# What a member says in its first message to the arbiter of a masked sum.
MODE_FIT: Final = "fit"
MODE_PREDICT: Final = "predict"

# A member waits for the arbiter's reply this many times the get timeout: the arbiter gives
# every member one get timeout to deliver its vector, then tells the others who dropped out,
# so a member must outwait the arbiter's own wait to learn the dropped member's name.
REPLY_TIMEOUT_FACTOR: Final = 2.0

# Name of the metric in which components record whether their sums were masked.
SECURE_AGGREGATION_METRIC: Final = "secure_aggregation"

ADAM_BETA1: Final = 0.9
ADAM_BETA2: Final = 0.999
ADAM_EPSILON: Final = 1e-8
