"""Distribution: describes a member's features, or, with an arbiter, the union of every member's rows.

Alone (no arbiter in the job) a member describes its own data. With an arbiter, the
members holding rows send (1) each feature's min and max, the arbiter returns (2) common
bin edges, the members send (3) their counts, moments and histograms over those edges,
and the arbiter (4) merges them into the global description, which it sends back.
Count, mean, std, min and max are exact; quantiles come from the merged histogram.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from kernel.components.distribution.param import DistributionParam
from kernel.components.distribution.stats import (
    Moments,
    block_histogram,
    block_moments,
    common_edges,
    exact_quantiles,
    merge_histograms,
    merge_moments,
    moments_from_wire,
    moments_to_wire,
    summarize,
)
from kernel.constants import ARBITER
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase

METRIC_NAMESPACE = "distribution"


class _DistributionBase(ModelBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summary: dict[str, dict[str, Any]] = {}

    @property
    def param(self) -> DistributionParam:
        assert isinstance(self.model_param, DistributionParam)
        return self.model_param

    def export_model(self) -> dict[str, Any]:
        return {"summary": self.summary, "quantiles": list(self.param.quantiles), "bins": self.param.bins}

    def _record(self, scope: str) -> None:
        self.tracker.log_metric(scope, METRIC_NAMESPACE, self.summary, metric_type="distribution")


class DistributionMember(_DistributionBase):
    """A member holding rows: describes them alone, or feeds the arbiter's merge."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        features = self._features(data)
        table = data.table.select(features)

        def columns(block: pa.Table) -> dict[str, np.ndarray]:
            return {name: block.column(name).to_numpy(zero_copy_only=False) for name in features}

        moments: Moments = table.reduce(lambda block: block_moments(columns(block)), merge_moments)
        self.tracker.set_progress(40, "moments computed")
        federated = bool(self.ctx.roles.parties(ARBITER))
        if federated:
            self.transfer_variable.feature_range.remote(
                {"min": {n: m.min for n, m in moments.items()}, "max": {n: m.max for n, m in moments.items()}}
            )
            edges_message = self.transfer_variable.bin_edges.get(idx=0)
            edges = {str(k): np.asarray(v, dtype=np.float64) for k, v in edges_message.items()}
        else:
            edges = common_edges({n: m.min for n, m in moments.items()},
                                 {n: m.max for n, m in moments.items()}, self.param.bins)
        histogram = table.reduce(lambda block: block_histogram(columns(block), edges), merge_histograms)
        self.tracker.set_progress(70, "histograms computed")
        if federated:
            self.transfer_variable.local_statistics.remote(
                {"moments": moments_to_wire(moments), "histogram": histogram}
            )
            self.summary = self.transfer_variable.global_summary.get(idx=0)
            self._record("global")
        else:
            exact = None
            if self.param.quantile_method == "exact":
                exact = exact_quantiles(columns(table.collect()), self.param.quantiles)
            self.summary = summarize(moments, histogram, edges, self.param.quantiles, exact)
            self._record("local")
        return data

    def _features(self, data: LabeledTable) -> list[str]:
        if self.param.features is None:
            return list(data.feature_columns)
        missing = [f for f in self.param.features if f not in data.table.schema.names]
        if missing:
            raise InvalidArgument(f"DistributionParam.features: column(s) {', '.join(missing)} not in the data")
        return list(self.param.features)


class DistributionArbiter(_DistributionBase):
    """Holds no rows: merges the members' ranges, counts and moments into the global view."""

    needs_data = False

    def coordinate(self) -> None:
        ranges = self.transfer_variable.feature_range.get()
        features = list(ranges[0]["min"])
        for position, message in enumerate(ranges[1:], start=1):
            if list(message["min"]) != features:
                raise InvalidArgument(
                    f"Distribution: member {position} describes columns {list(message['min'])}, "
                    f"member 0 describes {features}; all must describe the same columns"
                )
        mins = {f: [m["min"][f] for m in ranges] for f in features}
        maxs = {f: [m["max"][f] for m in ranges] for f in features}
        edges = common_edges(mins, maxs, self.param.bins)
        self.transfer_variable.bin_edges.remote(edges)
        statistics = self.transfer_variable.local_statistics.get()
        moments = moments_from_wire(statistics[0]["moments"])
        histogram = {str(k): np.asarray(v) for k, v in statistics[0]["histogram"].items()}
        for message in statistics[1:]:
            moments = merge_moments(moments, moments_from_wire(message["moments"]))
            histogram = merge_histograms(histogram, {str(k): np.asarray(v) for k, v in message["histogram"].items()})
        self.summary = summarize(moments, histogram, edges, self.param.quantiles)
        self.transfer_variable.global_summary.remote(self.summary)
        self._record("global")
        return None
