"""Distribution: describes a member's features, or, with an arbiter, the union of every member's rows.

Alone (no arbiter in the job) a member describes its own data. With an arbiter, the
members holding rows send (1) each feature's min and max with their secure-aggregation
public keys, the arbiter returns (2) common bin edges and the set of keys, the members send
(3) their counts, centred sums, sums of squares and histogram counts masked by secure
aggregation, and the arbiter (4) unmasks only their total, builds the global description
and sends it back. The arbiter learns each member's min and max and the global
description, nothing else about one member's rows (docs/algorithms/horizontal.md).
Count, mean, std, min and max are exact up to the fixed point; quantiles come from the
merged histogram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from kernel.blocks.constants import MODE_FIT, SECURE_AGGREGATION_METRIC
from kernel.blocks.secure_sum import SecureSumArbiter, SecureSumMember
from kernel.components.distribution.constants import (
    COMPONENT,
    MASK_PRECISION_BITS,
    METRIC_NAMESPACE,
    ROUND_STATISTICS,
)
from kernel.components.distribution.param import DistributionParam
from kernel.components.distribution.sums import member_sums, moments_from_sums, vector_length
from kernel.components.distribution.variables import DistributionVariables
from kernel.computing import Table
from kernel.constants import ARBITER
from kernel.errors import InvalidArgument
from kernel.federation.base import Party
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.order import quantiles as exact_order_quantiles
from kernel.stats.summary import (
    Moments,
    block_histogram,
    block_moments,
    common_edges,
    merge_histograms,
    merge_moments,
    summarize,
)


class _DistributionBase(ModelBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summary: dict[str, dict[str, Any]] = {}
        self.variables = self.ctx.variables(DistributionVariables)

    @property
    def param(self) -> DistributionParam:
        assert isinstance(self.model_param, DistributionParam)
        return self.model_param

    def export_model(self) -> dict[str, Any]:
        return {"summary": self.summary, "quantiles": list(self.param.quantiles), "bins": self.param.bins}

    def _record(self, scope: str) -> None:
        self.tracker.log_metric(scope, METRIC_NAMESPACE, self.summary, metric_type="distribution")

    def _record_masking(self, masked: bool, members: int) -> None:
        self.tracker.log_metric(SECURE_AGGREGATION_METRIC, METRIC_NAMESPACE,
                                {"masked": masked, "members": members})


class DistributionMember(_DistributionBase):
    """A member holding rows: describes them alone, or feeds the arbiter's masked merge."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        features = self._features(data)
        table = data.table.select(features)

        def columns(block: pa.Table) -> dict[str, np.ndarray]:
            return {name: block.column(name).to_numpy(zero_copy_only=False) for name in features}

        moments: Moments = table.reduce(lambda block: block_moments(columns(block)), merge_moments)
        self.tracker.set_progress(40, "moments computed")
        group: SecureSumMember | None = None
        if self.ctx.roles.parties(ARBITER):
            tv = self.variables
            group = SecureSumMember(self.ctx, tv.feature_range.variable, tv.local_statistics.variable,
                                    MASK_PRECISION_BITS, COMPONENT)
            group.hello({"features": features, "min": {n: m.min for n, m in moments.items()},
                         "max": {n: m.max for n, m in moments.items()}})
            edges = _received_edges(group.welcome(tv.bin_edges.variable), features)
        else:
            edges = common_edges({n: m.min for n, m in moments.items()},
                                 {n: m.max for n, m in moments.items()}, self.param.bins)
        histogram = table.reduce(lambda block: block_histogram(columns(block), edges), merge_histograms)
        self.tracker.set_progress(70, "histograms computed")
        if group is not None:
            group.send(member_sums(features, moments, histogram, edges), ROUND_STATISTICS)
            summary = group.receive(self.variables.global_summary.variable)
            if not isinstance(summary, dict) or list(summary) != features:
                raise InvalidArgument(f"{COMPONENT}: the arbiter's global_summary does not describe {features}")
            self.summary = summary
            self._record_masking(group.masked, len(group.members))
            self._record("global")
        else:
            exact = None
            if self.param.quantile_method == "exact":
                exact = _exact_quantiles(table, moments, self.param.quantiles)
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


def _exact_quantiles(table: Table, moments: Moments, levels: Sequence[float]) -> dict[str, np.ndarray]:
    """Each feature's exact quantiles (numpy's linear method, NaN for a feature with no value),
    found by order statistics pass by pass: only bucket counts and small groups of values
    reach this process, whatever the number of rows (kernel/stats/order.py)."""
    wanted = [float(q) for q in levels]
    found = exact_order_quantiles(table, {name: wanted for name in moments},
                                  {name: m.count for name, m in moments.items()},
                                  {name: m.min for name, m in moments.items()},
                                  {name: m.max for name, m in moments.items()})
    return {name: np.array([math.nan if v is None else v for v in values], dtype=np.float64)
            for name, values in found.items()}


class DistributionArbiter(_DistributionBase):
    """Holds no rows: relays keys, unmasks only the members' total, describes the union."""

    needs_data = False

    def coordinate(self) -> None:
        tv = self.variables
        if not self.param.need_run:
            return None  # the members pass their data through and send nothing
        group = SecureSumArbiter(self.ctx, tv.feature_range.variable, tv.local_statistics.variable,
                                 MASK_PRECISION_BITS, COMPONENT)
        hellos = group.gather_hellos(tv.bin_edges.variable)
        try:
            features, mins, maxs = _ranges(hellos)
        except InvalidArgument as exc:
            group.abort(tv.bin_edges.variable, (), str(exc))
        edges = common_edges(mins, maxs, self.param.bins)
        group.welcome(tv.bin_edges.variable, edges)
        total = group.collect(ROUND_STATISTICS, vector_length(features, edges), tv.global_summary.variable, ())
        try:
            moments, histogram = moments_from_sums(
                features, total, edges, {f: _extreme(mins[f], min) for f in features},
                {f: _extreme(maxs[f], max) for f in features},
            )
            self.summary = summarize(moments, histogram, edges, self.param.quantiles)
        except InvalidArgument as exc:
            group.abort(tv.global_summary.variable, (), str(exc))
        group.reply(tv.global_summary.variable, self.summary)
        self._record_masking(group.masked, len(group.members))
        self._record("global")
        return None


def _ranges(
    hellos: dict[Party, tuple[str, dict[str, Any]]],
) -> tuple[list[str], dict[str, list[float]], dict[str, list[float]]]:
    """The common features and every member's min and max of each, checked."""
    parties = list(hellos)
    features: list[str] | None = None
    mins: dict[str, list[float]] = {}
    maxs: dict[str, list[float]] = {}
    for party in parties:
        mode, info = hellos[party]
        if mode != MODE_FIT:
            raise InvalidArgument(f"member {party} does not describe its data (mode {mode!r})")
        named = info.get("features")
        if not isinstance(named, list) or not all(isinstance(f, str) for f in named):
            raise InvalidArgument(f"member {party} sent no feature names")
        if features is None:
            features = named
        elif named != features:
            raise InvalidArgument(
                f"member {party} describes columns {named}, member {parties[0]} describes {features}; "
                "all must describe the same columns"
            )
        for side, bucket in (("min", mins), ("max", maxs)):
            values = info.get(side)
            if not isinstance(values, dict) or list(values) != named or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v) for v in values.values()
            ):
                raise InvalidArgument(f"member {party} sent a malformed {side} per feature")
            for name, value in values.items():
                bucket.setdefault(name, []).append(float(value))
    assert features is not None  # at least one member: SecureSumArbiter refuses a job without
    return features, mins, maxs


def _extreme(values: list[float], pick: Any) -> float:
    """The global min or max of the finite values (inf or -inf when a column has none)."""
    finite = [v for v in values if math.isfinite(v)]
    if finite:
        return float(pick(finite))
    return math.inf if pick is min else -math.inf


def _received_edges(message: Any, features: list[str]) -> dict[str, np.ndarray]:
    """The arbiter's common bin edges, checked against this member's features."""
    if not isinstance(message, dict) or list(message) != features:
        raise InvalidArgument(f"{COMPONENT}: the arbiter's bin_edges must give edges for {features}")
    edges: dict[str, np.ndarray] = {}
    for name, values in message.items():
        array = np.asarray(values, dtype=np.float64) if isinstance(values, np.ndarray) else None
        if array is None or array.ndim != 1 or array.size == 1 or not np.all(np.isfinite(array)) \
                or np.any(np.diff(array) < 0):
            raise InvalidArgument(f"{COMPONENT}: the arbiter's bin edges of {name!r} are not ascending finite values")
        edges[str(name)] = array
    return edges
