"""Scale: every member scales its own columns; nothing crosses members.

Standard scaling uses the mean and population standard deviation (as scikit-learn's
StandardScaler); min-max uses the minimum and maximum, or exact quantiles of the fitted
rows when `lower_quantile` / `upper_quantile` cap outliers. A column whose spread is zero is
only shifted. Missing values stay missing. The fitted offsets and spreads are the model.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pyarrow as pa

from kernel.components.scale.param import ScaleParam
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.columns import chosen_columns, float_columns
from kernel.stats.moments import block_moments, merge_table_moments
from kernel.stats.order import quantiles

MODEL_KIND: Final = "scale"
METRIC_NAMESPACE: Final = "scale"


class Scale(ModelBase):
    """Fit learns an offset and a spread per column; transform applies (x - offset) / spread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.method = "standard"
        self.offsets: dict[str, float] = {}
        self.spreads: dict[str, float] = {}
        self.clip = False

    @property
    def param(self) -> ScaleParam:
        assert isinstance(self.model_param, ScaleParam)
        return self.model_param

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param = self.param
        columns = chosen_columns(data.table.schema.names, param.columns, data.feature_columns, "ScaleParam.columns")
        table = data.table.select(columns)
        moments = table.reduce(lambda block: block_moments(float_columns(block, columns)), merge_table_moments)
        empty = [c for c in columns if moments[c].count == 0]
        if empty:
            raise InvalidArgument(f"Scale: column(s) {', '.join(empty)} have no value to scale by")
        self.method, self.clip = param.method, param.clip and param.method == "min_max"
        if param.method == "standard":
            self.offsets = {c: moments[c].mean if param.with_mean else 0.0 for c in columns}
            self.spreads = {c: float(np.sqrt(moments[c].m2 / moments[c].count)) if param.with_std else 1.0
                            for c in columns}
        else:
            low, high = {c: moments[c].min for c in columns}, {c: moments[c].max for c in columns}
            if param.lower_quantile > 0.0 or param.upper_quantile < 1.0:
                levels = [param.lower_quantile, param.upper_quantile]
                found = quantiles(table, {c: levels for c in columns}, {c: moments[c].count for c in columns},
                                  low, high)
                low = {c: float(found[c][0] or 0.0) for c in columns}
                high = {c: float(found[c][1] or 0.0) for c in columns}
            self.offsets = low
            self.spreads = {c: high[c] - low[c] for c in columns}
        # A constant column is only shifted: dividing by a zero spread would make it NaN.
        self.spreads = {c: s if s > 0.0 else 1.0 for c, s in self.spreads.items()}
        self.tracker.log_metric("scaling", METRIC_NAMESPACE, {"method": self.method, "offset": self.offsets,
                                                             "spread": self.spreads}, metric_type="scale")
        return self.transform(data)

    def transform(self, data: LabeledTable) -> LabeledTable:
        schema = data.table.schema
        missing = [c for c in self.offsets if c not in schema.names]
        if missing:
            raise InvalidArgument(f"Scale: the data lacks the fitted column(s) {', '.join(missing)}")
        offsets, spreads, clip = dict(self.offsets), dict(self.spreads), self.clip
        out_schema = schema
        for column in offsets:
            out_schema = out_schema.set(out_schema.get_field_index(column), pa.field(column, pa.float64()))

        def scale(block: pa.Table) -> pa.Table:
            values = float_columns(block, list(offsets))
            for column, numbers in values.items():
                scaled = (numbers - offsets[column]) / spreads[column]
                if clip:
                    scaled = np.clip(scaled, 0.0, 1.0)
                block = block.set_column(block.schema.get_field_index(column), out_schema.field(column),
                                         pa.array(scaled, pa.float64()))
            return block

        return data.with_table(data.table.map_partitions(scale, schema=out_schema))

    def export_model(self) -> dict[str, Any]:
        return {"kind": MODEL_KIND, "method": self.method, "offsets": dict(self.offsets),
                "spreads": dict(self.spreads), "clip": self.clip}

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("kind") != MODEL_KIND:
            raise InvalidArgument("Scale: the model input is not a Scale model")
        try:
            self.method, self.clip = str(model["method"]), bool(model["clip"])
            self.offsets = {str(c): float(v) for c, v in model["offsets"].items()}
            self.spreads = {str(c): float(v) for c, v in model["spreads"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument(f"Scale: the model input is malformed ({exc})") from None
        if sorted(self.offsets) != sorted(self.spreads) or any(s <= 0 for s in self.spreads.values()):
            raise InvalidArgument("Scale: the model's offsets and spreads do not match")
