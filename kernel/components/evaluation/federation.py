"""The federation's metrics in a horizontal job: every data member's rows scored together, no row moved.

When Evaluation runs at the promoter and at providers that all hold labelled predictions
(a horizontal job: each member scored its own rows), every member turns its predictions
into per-split sums: a histogram of the scores of its positives and one of its negatives
(`FEDERATION_BINS` bins over [0, 1]) and a few exact counts (rows, positives, predicted
positives, true positives, correct predictions, the log-loss sum). The sums are masked by
secure aggregation (pairwise X25519 masks, `kernel.security.secure_aggregation`), and the
promoter adds them: it learns the federation's totals, never one member's. From the totals
it computes AUC, KS, accuracy, precision, recall, F1 and log loss, logs them under the
namespace "federation" and sends them to every provider, which logs them too.

The exchange, over Evaluation's transfer variables:

1. `federation_hello` (provider -> promoter): whether the task has labelled rows, its splits
   and its public key. A provider whose task has nothing to score (a vertical job's
   provider) says so and is done.
2. `federation_keys` (promoter -> each provider with rows): whether the federation metrics
   are computed (only when every member has rows), the union of the splits, every key.
3. `federation_sums` (provider -> promoter): the masked sums.
4. `federation_metrics` (promoter -> provider): the metrics, or the reason there are none.

Nothing of this happens unless the task's conf lists the component's roles (the scheduler
writes them) and they hold exactly one promoter and at least one provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.components.evaluation.constants import (
    EXACT_SUMS,
    FEDERATION_BINS,
    FEDERATION_NAMESPACE,
    FEDERATION_PRECISION_BITS,
)
from kernel.components.evaluation.metrics import LOG_LOSS_EPS
from kernel.constants import PROMOTER, PROVIDER
from kernel.errors import InvalidArgument
from kernel.federation.transfer_variable import TransferVariables, Variable
from kernel.model_base import TaskContext
from kernel.security.secure_aggregation import MaskingClient, SecureAggregator

FloatArray = npt.NDArray[np.float64]
ROUND = "evaluation"


@dataclass(frozen=True)
class Scored:
    """One split's labels (True = positive) and scores at this member."""

    positive: npt.NDArray[np.bool_]
    scores: FloatArray


def split_sums(scored: Scored | None, threshold: float) -> FloatArray:
    """Positive histogram, negative histogram, then the exact sums (zeros for a split not held here)."""
    out = np.zeros(2 * FEDERATION_BINS + len(EXACT_SUMS))
    if scored is None or scored.scores.size == 0:
        return out
    scores = np.clip(scored.scores, 0.0, 1.0)
    bins = np.minimum((scores * FEDERATION_BINS).astype(np.int64), FEDERATION_BINS - 1)
    out[:FEDERATION_BINS] = np.bincount(bins[scored.positive], minlength=FEDERATION_BINS)
    out[FEDERATION_BINS:2 * FEDERATION_BINS] = np.bincount(bins[~scored.positive], minlength=FEDERATION_BINS)
    predicted = scored.scores >= threshold
    clipped = np.clip(scores, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    exact: list[float] = [
        float(scores.size), float(np.count_nonzero(scored.positive)), float(np.count_nonzero(predicted)),
        float(np.count_nonzero(predicted & scored.positive)), float(np.count_nonzero(predicted == scored.positive)),
        float(-np.sum(np.where(scored.positive, np.log(clipped), np.log1p(-clipped)))),
    ]
    out[2 * FEDERATION_BINS:] = exact
    return out


def metrics_from_sums(sums: FloatArray, threshold: float) -> dict[str, Any]:
    """AUC and KS from the summed histograms (ties within a bin count half), the rest exact."""
    pos = np.rint(sums[:FEDERATION_BINS])
    neg = np.rint(sums[FEDERATION_BINS:2 * FEDERATION_BINS])
    exact = dict(zip(EXACT_SUMS, np.rint(sums[2 * FEDERATION_BINS:-1]).astype(np.int64).tolist(), strict=False))
    log_loss_sum = float(sums[-1])
    positives, negatives = float(pos.sum()), float(neg.sum())
    if positives == 0 or negatives == 0:
        raise InvalidArgument("the federation's rows hold only one class: AUC and KS need both 0 and 1")
    # From the highest bin down: positives scored above each bin, plus half of those tied in it.
    pos_down, neg_down = pos[::-1], neg[::-1]
    above = np.cumsum(pos_down) - pos_down
    auc = float(np.sum(neg_down * (above + 0.5 * pos_down)) / (positives * negatives))
    tpr = np.cumsum(pos_down) / positives
    fpr = np.cumsum(neg_down) / negatives
    ks = float(np.max(tpr - fpr))
    rows = exact["rows"]
    precision = exact["true_positive"] / exact["predicted_positive"] if exact["predicted_positive"] else 0.0
    recall = exact["true_positive"] / exact["positives"]
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "auc": auc, "ks": ks, "accuracy": exact["correct"] / rows, "precision": float(precision),
        "recall": float(recall), "f1": float(f1), "log_loss": log_loss_sum / rows, "threshold": float(threshold),
        "rows": rows, "positives": exact["positives"], "bins": FEDERATION_BINS,
    }


class FederationMetrics:
    """Evaluation's side of the exchange above; `run` once per task, with or without rows."""

    def __init__(self, ctx: TaskContext, variables: TransferVariables, threshold: float) -> None:
        self.ctx = ctx
        self.local = ctx.local
        self.threshold = threshold
        self.hello: Variable = variables.federation_hello
        self.keys: Variable = variables.federation_keys
        self.sums: Variable = variables.federation_sums
        self.metrics: Variable = variables.federation_metrics
        roles = set(ctx.component_roles)
        self.promoters = ctx.roles.parties(PROMOTER) if PROMOTER in roles else []
        self.providers = ctx.roles.parties(PROVIDER) if PROVIDER in roles else []

    @property
    def applies(self) -> bool:
        """Whether the component runs at one promoter and at providers (otherwise nothing is exchanged)."""
        return len(self.promoters) == 1 and bool(self.providers) and self.local in (*self.promoters, *self.providers)

    def run(self, scored: dict[str, FloatArray] | None) -> dict[str, dict[str, Any]] | None:
        """The federation's metrics by split (None when there are none).

        `scored` holds this member's `split_sums` of each split it holds; None: no rows here.
        """
        if not self.applies:
            return None
        if self.local.role == PROMOTER:
            return self._aggregate(scored)
        return self._contribute(scored)

    def _sums(self, scored: dict[str, FloatArray], split: str) -> FloatArray:
        found = scored.get(split)
        return split_sums(None, self.threshold) if found is None else found

    def _contribute(self, scored: dict[str, FloatArray] | None) -> dict[str, dict[str, Any]] | None:
        client = MaskingClient(str(self.local), precision_bits=FEDERATION_PRECISION_BITS)
        self.hello.remote({"rows": scored is not None, "splits": sorted(scored or {}),
                           "public_key": client.public_key()}, role=PROMOTER, idx=0)
        if scored is None:
            return None
        answer = self.keys.get(idx=0)
        if not answer.get("federated"):
            return None
        client.set_peer_keys(answer["keys"])
        vector = np.concatenate([self._sums(scored, split) for split in answer["splits"]])
        self.sums.remote(client.mask(vector, ROUND), role=PROMOTER, idx=0)
        result = self.metrics.get(idx=0)
        if not result.get("ok"):
            raise InvalidArgument(f"Evaluation: the federation's metrics failed at the promoter: {result.get('error')}")
        metrics: dict[str, dict[str, Any]] = result["metrics"]
        return metrics

    def _aggregate(self, scored: dict[str, FloatArray] | None) -> dict[str, dict[str, Any]] | None:
        client = MaskingClient(str(self.local), precision_bits=FEDERATION_PRECISION_BITS)
        hellos: list[dict[str, Any]] = [self.hello.get(idx=i) for i in range(len(self.providers))]
        with_rows = [i for i, hello in enumerate(hellos) if hello.get("rows")]
        federated = scored is not None and len(with_rows) == len(self.providers)
        splits = sorted({*(scored or {}), *(s for hello in hellos for s in hello.get("splits", []))})
        keys = {str(self.local): client.public_key(),
                **{str(self.providers[i]): hellos[i]["public_key"] for i in with_rows}}
        for i in with_rows:
            self.keys.remote({"federated": federated, "splits": splits, "keys": keys}, role=PROVIDER, idx=i)
        if not federated or scored is None:
            return None
        try:
            client.set_peer_keys(keys)
            masked = {str(self.local): client.mask(
                np.concatenate([self._sums(scored, split) for split in splits]), ROUND)}
            for i, provider in enumerate(self.providers):
                masked[str(provider)] = self.sums.get(idx=i)
            total = SecureAggregator(sorted(keys), precision_bits=FEDERATION_PRECISION_BITS).unmask_sum(masked, ROUND)
            width = 2 * FEDERATION_BINS + len(EXACT_SUMS)
            metrics = {split: metrics_from_sums(total[k * width:(k + 1) * width], self.threshold)
                       for k, split in enumerate(splits)}
        except Exception as exc:
            for i in range(len(self.providers)):
                self.metrics.remote({"ok": False, "error": str(exc)}, role=PROVIDER, idx=i)
            raise
        for i in range(len(self.providers)):
            self.metrics.remote({"ok": True, "metrics": metrics}, role=PROVIDER, idx=i)
        return metrics


def log_federation_metrics(ctx: TaskContext, metrics: dict[str, dict[str, Any]] | None) -> None:
    for split, values in (metrics or {}).items():
        ctx.tracker.log_metric(split, FEDERATION_NAMESPACE, values, metric_type="binary")

