"""FeatureStability: every member compares its own columns between a reference and a new sample.

Inputs: `input.data.data` lists the reference data set first and the new one second; or
only the new one with this component's exported model (the reference bins and shares), so
a monitoring job compares each month to the training sample without reading it again. A
VertFeatureBinning model as input.model supplies the bins instead of the reference's
equal-frequency ones. Bins, counts and PSI come from merged per-block aggregates (exact
quantile edges, bin counts); nothing crosses members: each member's report stays with it.
The score's PSI is the PSI of the score column at the promoter (the ScoreCard or VertLR
output of both samples).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from kernel.base_param import BaseParam
from kernel.components.feature_stability.param import FeatureStabilityParam
from kernel.credit.bins import bin_labels, read_binning_model
from kernel.errors import ConfError, InvalidArgument
from kernel.model_base import LabeledTable, ModelBase, TaskArgs, TaskOutputs
from kernel.stats.columns import chosen_columns, float_columns
from kernel.stats.moments import block_moments, merge_table_moments
from kernel.stats.order import quantiles
from kernel.stats.psi import bin_counts, psi, reading, shares

MODEL_KIND: Final = "feature_stability"
METRIC_NAMESPACE: Final = "feature_stability"


class FeatureStability(ModelBase):
    """Reference bins and shares per column; the PSI of a new sample against them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.edges: dict[str, list[float]] = {}
        self.expected: dict[str, list[int]] = {}

    @property
    def param(self) -> FeatureStabilityParam:
        assert isinstance(self.model_param, FeatureStabilityParam)
        return self.model_param

    def run(self, params: BaseParam, args: TaskArgs) -> TaskOutputs:
        self.model_param = params
        unknown = sorted(set(args.data) - {"data"})
        if unknown:
            raise ConfError("FeatureStability: takes input.data.data ([reference, new], or [new] with its model)")
        inputs = args.data.get("data") or []
        if not inputs:
            return TaskOutputs()
        if not self.param.need_run:
            return TaskOutputs(data=inputs[-1])
        for model in args.models.values():
            self.load_model(model)
        if len(inputs) == 2:
            self._fit_reference(inputs[0])
        elif len(inputs) != 1 or not self.expected:
            raise ConfError("FeatureStability: give [reference, new] data sets, or one new data set and the model")
        self._compare(inputs[-1])
        return TaskOutputs(data=inputs[-1], model=self.export_model())

    def _fit_reference(self, reference: LabeledTable) -> None:
        param, table = self.param, reference.table
        columns = chosen_columns(table.schema.names, param.columns, reference.feature_columns,
                                 "FeatureStabilityParam.columns")
        if self.edges:  # from a binning model
            missing = [c for c in columns if c not in self.edges]
            if missing:
                raise InvalidArgument(f"FeatureStability: the binning model has no bins for {', '.join(missing)}")
            self.edges = {c: self.edges[c] for c in columns}
        else:
            moments = table.select(columns).reduce(lambda block: block_moments(float_columns(block, columns)),
                                                   merge_table_moments)
            present = [c for c in columns if moments[c].count]
            levels = (np.arange(1, param.bin_num) / param.bin_num).tolist()
            found = quantiles(table, {c: levels for c in present}, {c: moments[c].count for c in present},
                              {c: moments[c].min for c in present}, {c: moments[c].max for c in present})
            self.edges = {}
            for column in columns:
                edges = np.unique(np.asarray([v for v in found.get(column, []) if v is not None], dtype=np.float64))
                # An edge at the minimum would leave the first bin empty.
                self.edges[column] = edges[edges > moments[column].min].tolist() if moments[column].count else []
        self.expected = {c: v.tolist() for c, v in bin_counts(table, self.edges).items()}

    def _compare(self, sample: LabeledTable) -> None:
        param = self.param
        missing = [c for c in self.edges if c not in sample.table.schema.names]
        if missing:
            raise InvalidArgument(f"FeatureStability: the new data lacks column(s) {', '.join(missing)}")
        actual = bin_counts(sample.table, self.edges)
        report: dict[str, dict[str, Any]] = {}
        for column, edges in self.edges.items():
            value, parts = psi(self.expected[column], actual[column])
            report[column] = {
                "psi": value, "reading": reading(value, param.stable_below, param.shift_below),
                "bins": bin_labels(edges), "expected": shares(self.expected[column]).tolist(),
                "actual": shares(actual[column]).tolist(), "contribution": parts.tolist(),
            }
        self.tracker.log_metric("psi", METRIC_NAMESPACE, report, metric_type="psi")
        shifted = sorted(c for c, r in report.items() if r["psi"] >= param.stable_below)
        self.tracker.log_metric("summary", METRIC_NAMESPACE, {
            "columns": len(report), "shifted": shifted, "stable_below": param.stable_below,
            "shift_below": param.shift_below}, metric_type="psi")

    def export_model(self) -> dict[str, Any]:
        return {"kind": MODEL_KIND, "edges": self.edges, "expected": self.expected}

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("kind") == MODEL_KIND:
            try:
                self.edges = {str(c): [float(e) for e in v] for c, v in model["edges"].items()}
                self.expected = {str(c): [int(n) for n in v] for c, v in model["expected"].items()}
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InvalidArgument(f"FeatureStability: the model input is malformed ({exc})") from None
        else:
            binning = read_binning_model(model, "FeatureStability")
            self.edges = {name: bins.edges for name, bins in binning.features.items()}
