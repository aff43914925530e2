"""DataIO: reads a member's data set into id, label and float features, handling missing values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kernel.components.dataio.param import DataIOParam
from kernel.errors import InvalidArgument
from kernel.features import feature_matrix
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.columns import float_columns
from kernel.stats.moments import block_moments, merge_table_moments
from kernel.stats.order import quantiles


class DataIO(ModelBase):
    """Fit learns the column layout and fill values; transform applies them to new data."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label_column: str | None = None
        self.features: list[str] = []
        self.fill_values: dict[str, float] = {}
        self.drop_missing = False
        self.label_type = "int"

    @property
    def param(self) -> DataIOParam:
        assert isinstance(self.model_param, DataIOParam)
        return self.model_param

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param = self.param
        columns = [c for c in data.table.schema.names if c != data.id_column]
        self.label_column = param.label_name if param.with_label else None
        if self.label_column is not None and self.label_column not in columns:
            raise InvalidArgument(f"DataIOParam.label_name: column {self.label_column!r} is not in the data set")
        candidates = [c for c in columns if c != self.label_column and c != data.label_column]
        if param.include_features is not None:
            missing = [c for c in param.include_features if c not in candidates]
            if missing:
                raise InvalidArgument(f"DataIOParam.include_features: column(s) {', '.join(missing)} not in the data set")
            candidates = list(param.include_features)
        unknown = [c for c in param.exclude_features if c not in columns]
        if unknown:
            raise InvalidArgument(f"DataIOParam.exclude_features: column(s) {', '.join(unknown)} not in the data set")
        self.features = [c for c in candidates if c not in param.exclude_features]
        self._check_numeric(data.table.schema)
        self.label_type = param.label_type
        method = param.missing_fill_method
        self.drop_missing = method == "drop"
        if method == "constant":
            self.fill_values = {f: param.missing_fill_value for f in self.features}
        elif method in ("mean", "median"):
            self.fill_values = self._learn_fill_values(data, method)
        self.tracker.log_metric("features", "dataio", {"count": len(self.features), "names": self.features})
        return self.transform(data)

    def _check_numeric(self, schema: pa.Schema) -> None:
        for name in self.features:
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
                    or pa.types.is_null(kind)):
                raise InvalidArgument(f"DataIO: feature column {name!r} is {kind}, not numeric")

    def _learn_fill_values(self, data: LabeledTable, method: str) -> dict[str, float]:
        if method == "mean":
            def sums(block: pa.Table) -> np.ndarray:
                values = feature_matrix(block, self.features)
                present = ~np.isnan(values)
                return np.stack([np.where(present, values, 0.0).sum(axis=0), present.sum(axis=0)])

            totals = data.table.reduce(sums, lambda a, b: a + b)
            means = np.divide(totals[0], totals[1], out=np.zeros(len(self.features)), where=totals[1] > 0)
            return {f: float(m) for f, m in zip(self.features, means, strict=True)}
        # Exact medians without gathering the rows: per-block counts and ranges, then bucket
        # counts that narrow down to the middle values (kernel/stats/order.py).
        features = self.features
        moments = data.table.reduce(lambda block: block_moments(float_columns(block, features)), merge_table_moments)
        found = quantiles(data.table, {f: [0.5] for f in features}, {f: moments[f].count for f in features},
                          {f: moments[f].min for f in features}, {f: moments[f].max for f in features})
        medians = {f: found[f][0] for f in features}
        return {f: float(value) if value is not None else 0.0 for f, value in medians.items()}

    def transform(self, data: LabeledTable) -> LabeledTable:
        missing = [c for c in self.features if c not in data.table.schema.names]
        if self.label_column is not None and self.label_column not in data.table.schema.names:
            missing.append(self.label_column)
        if missing:
            raise InvalidArgument(f"DataIO: column(s) {', '.join(missing)} not in the data set")
        id_column, label, features = data.id_column, self.label_column, self.features
        fills, label_type = self.fill_values, pa.int64() if self.label_type == "int" else pa.float64()

        def convert(block: pa.Table) -> pa.Table:
            arrays: list[pa.Array | pa.ChunkedArray] = [block.column(id_column)]
            names = [id_column]
            if label is not None:
                label_values = block.column(label)
                if label_values.null_count:
                    raise InvalidArgument(f"DataIO: label column {label!r} has missing values")
                arrays.append(pc.cast(label_values, label_type))
                names.append(label)
            for name in features:
                values = pc.cast(block.column(name), pa.float64()).to_numpy(zero_copy_only=False)
                values = np.asarray(values, dtype=np.float64)
                if name in fills:
                    values = np.where(np.isnan(values), fills[name], values)
                arrays.append(pa.array(values, type=pa.float64()))
                names.append(name)
            return pa.Table.from_arrays(arrays, names=names)

        table = data.table.map_partitions(convert)
        if self.drop_missing:
            table = table.filter(_rows_without_missing(features))
        return LabeledTable(table, label, tuple(features))

    def export_model(self) -> dict[str, Any]:
        return {
            "label_column": self.label_column, "features": list(self.features), "fill_values": dict(self.fill_values),
            "drop_missing": self.drop_missing, "label_type": self.label_type,
        }

    def load_model(self, model: dict[str, Any]) -> None:
        self.label_column = model["label_column"]
        self.features = list(model["features"])
        self.fill_values = {str(k): float(v) for k, v in model["fill_values"].items()}
        self.drop_missing = bool(model["drop_missing"])
        self.label_type = str(model["label_type"])


def _rows_without_missing(features: list[str]) -> Callable[[pa.Table], np.ndarray]:
    def keep(block: pa.Table) -> np.ndarray:
        return np.asarray(~np.isnan(feature_matrix(block, features)).any(axis=1))

    return keep
