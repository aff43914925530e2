"""Statistics: describes each member's own columns; nothing crosses members.

Numbers: count, missing and missing rate, mean, sample std, min, max, skewness and excess
kurtosis (as pandas computes them), exact quantiles and the distinct count. Text columns:
count, missing and distinct count. Every figure comes from per-block aggregates merged on
the driver (moments, bucket counts, distinct sketches), so on Spark no row leaves the
executors.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa

from kernel.components.statistics.param import StatisticsParam
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.columns import float_columns, is_numeric
from kernel.stats.distinct import DistinctSketch
from kernel.stats.moments import TableMoments, block_moments, merge_table_moments
from kernel.stats.order import quantiles

# Per block: moments of the numeric columns, distinct sketches and null counts of all, rows.
_Partial = tuple[TableMoments, dict[str, DistinctSketch], dict[str, int], int]

METRIC_NAMESPACE: Final = "statistics"
MODEL_KIND: Final = "statistics"


class Statistics(ModelBase):
    """Describes the columns of this member's data; the data passes through unchanged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summary: dict[str, dict[str, Any]] = {}

    @property
    def param(self) -> StatisticsParam:
        assert isinstance(self.model_param, StatisticsParam)
        return self.model_param

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        columns = self._columns(data)
        schema = data.table.schema
        numeric = [c for c in columns if is_numeric(schema.field(c).type) or pa.types.is_null(schema.field(c).type)]
        table = data.table.select(columns)
        limit = self.param.distinct_exact_limit

        def describe_block(block: pa.Table) -> _Partial:
            moments = block_moments(float_columns(block, numeric))
            sketches = {c: DistinctSketch.of_column(block.column(c), limit) for c in columns}
            return moments, sketches, {c: block.column(c).null_count for c in columns}, block.num_rows

        def merge(a: _Partial, b: _Partial) -> _Partial:
            return (merge_table_moments(a[0], b[0]), {c: a[1][c].merge(b[1][c]) for c in a[1]},
                    {c: a[2][c] + b[2][c] for c in a[2]}, a[3] + b[3])

        moments, sketches, nulls, rows = table.reduce(describe_block, merge)
        self.tracker.set_progress(50, "moments and distinct counts computed")
        levels = list(self.param.quantiles)
        found = quantiles(table, {c: levels for c in numeric}, {c: moments[c].count for c in numeric},
                          {c: moments[c].min for c in numeric}, {c: moments[c].max for c in numeric})
        self.summary = {}
        for column in columns:
            sketch = sketches[column]
            entry: dict[str, Any] = {"distinct": sketch.count(), "distinct_exact": sketch.exact}
            if column in moments:
                m = moments[column]
                entry.update({
                    "count": m.count, "missing": m.missing, "missing_rate": m.missing / m.rows if m.rows else None,
                    "mean": m.mean if m.count else None, "std": m.std(),
                    "min": m.min if m.count else None, "max": m.max if m.count else None,
                    "skewness": m.skewness(), "kurtosis": m.kurtosis(),
                    "quantiles": {str(q): v for q, v in zip(levels, found[column], strict=True)},
                })
            else:
                entry.update({"count": rows - nulls[column], "missing": nulls[column],
                              "missing_rate": nulls[column] / rows if rows else None})
            self.summary[column] = entry
        self.tracker.log_metric("statistics", METRIC_NAMESPACE, self.summary, metric_type="statistics")
        return data

    def _columns(self, data: LabeledTable) -> list[str]:
        if self.param.columns is None:
            return list(data.feature_columns)
        unknown = [c for c in self.param.columns if c not in data.table.schema.names or c == data.id_column]
        if unknown:
            raise InvalidArgument(f"StatisticsParam.columns: {', '.join(unknown)} not among the data's columns")
        return list(self.param.columns)

    def transform(self, data: LabeledTable) -> LabeledTable:
        # Given an earlier Statistics model, describe the new data afresh.
        return self.fit(data)

    def export_model(self) -> dict[str, Any]:
        return {"kind": MODEL_KIND, "summary": self.summary}

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("kind") != MODEL_KIND:
            raise InvalidArgument("Statistics: the model input is not a Statistics model")
