"""FillMissing: every member fits fill values for its own columns; nothing crosses members.

Means come from merged per-block moments, medians from exact order statistics, modes from
merged value counts (ties go to the smallest value), so on Spark only aggregates reach the
driver. The fitted values are the model: a predict job given it fills new rows the same way.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kernel.components.fill_missing.param import FillMissingParam
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.columns import chosen_columns, float_columns, is_numeric
from kernel.stats.counts import ValueCounts, block_value_counts, merge_value_counts, most_common
from kernel.stats.moments import block_moments, merge_table_moments
from kernel.stats.order import quantiles

MODEL_KIND: Final = "fill_missing"
METRIC_NAMESPACE: Final = "fill_missing"


class FillMissing(ModelBase):
    """Fit learns a fill value per column; transform fills the missing values of any data."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fill_values: dict[str, float | str] = {}

    @property
    def param(self) -> FillMissingParam:
        assert isinstance(self.model_param, FillMissingParam)
        return self.model_param

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param, schema = self.param, data.table.schema
        columns = chosen_columns(schema.names, param.columns, data.feature_columns, "FillMissingParam.columns")
        methods = {c: param.column_methods.get(c, param.method) for c in columns}
        for column, method in methods.items():
            if method in ("mean", "median") and not _numeric(schema, column):
                raise InvalidArgument(f"FillMissing: column {column!r} is text; fill it by mode or constant")
        table = data.table.select(columns)
        self.fill_values = {}
        for column, method in methods.items():
            if method == "constant":
                self.fill_values[column] = param.column_values.get(column, param.value)
        by_moments = [c for c, m in methods.items() if m in ("mean", "median")]
        if by_moments:
            moments = table.reduce(lambda block: block_moments(float_columns(block, by_moments)), merge_table_moments)
            empty = [c for c in by_moments if moments[c].count == 0]
            if empty:
                raise InvalidArgument(f"FillMissing: column(s) {', '.join(empty)} have no value to take a mean or median of")
            medians = [c for c in by_moments if methods[c] == "median"]
            found = quantiles(table, {c: [0.5] for c in medians}, {c: moments[c].count for c in medians},
                              {c: moments[c].min for c in medians}, {c: moments[c].max for c in medians})
            for column in by_moments:
                value = found[column][0] if methods[column] == "median" else moments[column].mean
                assert value is not None
                self.fill_values[column] = value
        by_mode = [c for c, m in methods.items() if m == "mode"]
        if by_mode:
            limit = param.mode_distinct_limit

            def merge(a: ValueCounts, b: ValueCounts) -> ValueCounts:
                return merge_value_counts(a, b, limit, "FillMissing mode")

            counts = table.reduce(lambda block: block_value_counts(block, by_mode, limit, "FillMissing mode"), merge)
            for column in by_mode:
                ranked = most_common(counts[column], 1)
                if not ranked:
                    raise InvalidArgument(f"FillMissing: column {column!r} has no value to take a mode of")
                self.fill_values[column] = ranked[0][0]
        self._check_types(schema)
        self.tracker.log_metric("fill_values", METRIC_NAMESPACE, dict(self.fill_values), metric_type="fill_missing")
        return self.transform(data)

    def _check_types(self, schema: pa.Schema) -> None:
        for column, value in self.fill_values.items():
            if _numeric(schema, column) != (not isinstance(value, str)):
                raise InvalidArgument(
                    f"FillMissing: column {column!r} is {schema.field(column).type} but its fill value is {value!r}"
                )

    def transform(self, data: LabeledTable) -> LabeledTable:
        schema = data.table.schema
        missing = [c for c in self.fill_values if c not in schema.names]
        if missing:
            raise InvalidArgument(f"FillMissing: the data lacks the fitted column(s) {', '.join(missing)}")
        self._check_types(schema)
        fills = dict(self.fill_values)
        out_schema = schema
        for column, value in fills.items():
            if not isinstance(value, str):
                out_schema = out_schema.set(out_schema.get_field_index(column), pa.field(column, pa.float64()))

        def fill(block: pa.Table) -> pa.Table:
            for column, value in fills.items():
                position = block.schema.get_field_index(column)
                if isinstance(value, str):
                    filled = pc.fill_null(block.column(column), pa.scalar(value, block.schema.field(column).type))
                else:
                    numbers = float_columns(block, [column])[column]
                    filled = pa.array(np.where(np.isnan(numbers), float(value), numbers), pa.float64())
                block = block.set_column(position, out_schema.field(column), filled)
            return block

        return data.with_table(data.table.map_partitions(fill, schema=out_schema))

    def export_model(self) -> dict[str, Any]:
        return {"kind": MODEL_KIND, "fill_values": dict(self.fill_values)}

    def load_model(self, model: dict[str, Any]) -> None:
        values = model.get("fill_values")
        if model.get("kind") != MODEL_KIND or not isinstance(values, dict):
            raise InvalidArgument("FillMissing: the model input is not a FillMissing model")
        self.fill_values = {str(c): v if isinstance(v, str) else float(v) for c, v in values.items()}


def _numeric(schema: pa.Schema, column: str) -> bool:
    kind = schema.field(column).type
    return is_numeric(kind) or pa.types.is_null(kind)
