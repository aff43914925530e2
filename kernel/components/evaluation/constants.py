"""Constants of Evaluation's federation metrics."""

from __future__ import annotations

from typing import Final

#: Score bins of the federation's histograms over [0, 1]. AUC and KS from them differ from
#: the pooled rows' only through positive/negative pairs whose scores share a bin (width
#: 1/65536): far below any difference a model comparison cares about.
FEDERATION_BINS: Final = 1 << 16
#: Fixed-point bits of the masked sums (counts and the log-loss sum).
FEDERATION_PRECISION_BITS: Final = 16
#: The namespace of the federation's metrics (each member's own are under "evaluation").
FEDERATION_NAMESPACE: Final = "federation"
#: Exact sums sent beside the histograms, per split.
EXACT_SUMS: Final = ("rows", "positives", "predicted_positive", "true_positive", "correct", "log_loss_sum")
