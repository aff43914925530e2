"""OneHot: every member encodes its own categorical columns; nothing crosses members.

A column's categories are its `max_categories` most frequent values (ties by value), from
value counts merged across blocks. Each becomes an indicator column `<column>_<value>`;
every other value, and at predict time every value not seen in training, sets
`<column>_other`; a missing value sets `<column>_missing` (or nothing). The encoded column is
replaced in place by its indicators (float 0/1). Run it before DataIO on raw data: DataIO
reads numbers only.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kernel.components.one_hot.param import OneHotParam
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.columns import chosen_columns, is_numeric
from kernel.stats.counts import ValueCounts, block_value_counts, merge_value_counts, most_common

MODEL_KIND: Final = "one_hot"
METRIC_NAMESPACE: Final = "one_hot"
KIND_TEXT: Final = "text"
KIND_NUMBER: Final = "number"
OTHER_SUFFIX: Final = "other"
MISSING_SUFFIX: Final = "missing"


def category_label(value: Any) -> str:
    """How a category appears in its indicator's name: integers without a decimal point."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class OneHot(ModelBase):
    """Fit learns each column's categories; transform writes the indicator columns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per encoded column: kind, categories, their indicator names, the other and missing names.
        self.encodings: dict[str, dict[str, Any]] = {}

    @property
    def param(self) -> OneHotParam:
        assert isinstance(self.model_param, OneHotParam)
        return self.model_param

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param, schema = self.param, data.table.schema
        text = [c for c in data.feature_columns if _is_text(schema.field(c).type)]
        columns = chosen_columns(schema.names, param.columns, text, "OneHotParam.columns")
        for column in columns:
            kind = schema.field(column).type
            if not (_is_text(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind)):
                raise InvalidArgument(f"OneHot: column {column!r} is {kind}; only text and integer columns are categorical")
        limit = param.distinct_limit

        def merge(a: ValueCounts, b: ValueCounts) -> ValueCounts:
            return merge_value_counts(a, b, limit, "OneHot")

        counts = data.table.select(columns).reduce(lambda block: block_value_counts(block, columns, limit, "OneHot"),
                                                   merge)
        self.encodings = {}
        for column in columns:
            kind = KIND_TEXT if _is_text(schema.field(column).type) else KIND_NUMBER
            kept = [value for value, _ in most_common(counts[column], param.max_categories)]
            if kind == KIND_NUMBER and any(not float(v).is_integer() for v in kept):
                raise InvalidArgument(f"OneHot: column {column!r} holds fractions; it is not categorical (bin it first)")
            self.encodings[column] = {
                "kind": kind, "categories": [float(v) if kind == KIND_NUMBER else str(v) for v in kept],
                "names": [f"{column}_{category_label(v)}" for v in kept],
                "other": f"{column}_{OTHER_SUFFIX}",
                "missing": f"{column}_{MISSING_SUFFIX}" if param.missing_as_category else None,
            }
        self.tracker.log_metric("categories", METRIC_NAMESPACE,
                                {c: {"kept": e["names"], "distinct": len(counts[c])} for c, e in self.encodings.items()},
                                metric_type="one_hot")
        return self.transform(data)

    def _output_schema(self, schema: pa.Schema) -> tuple[pa.Schema, list[str]]:
        fields: list[pa.Field] = []
        added: list[str] = []
        for field in schema:
            encoding = self.encodings.get(field.name)
            if encoding is None:
                fields.append(field)
                continue
            names = [*encoding["names"], encoding["other"]] + ([encoding["missing"]] if encoding["missing"] else [])
            fields += [pa.field(name, pa.float64()) for name in names]
            added += names
        taken = [f.name for f in fields]
        clashes = sorted({n for n in taken if taken.count(n) > 1})
        if clashes:
            raise InvalidArgument(f"OneHot: indicator column(s) {', '.join(clashes)} clash with other columns; rename them")
        return pa.schema(fields), added

    def transform(self, data: LabeledTable) -> LabeledTable:
        schema = data.table.schema
        missing = [c for c in self.encodings if c not in schema.names]
        if missing:
            raise InvalidArgument(f"OneHot: the data lacks the encoded column(s) {', '.join(missing)}")
        out_schema, added = self._output_schema(schema)
        encodings = {c: dict(e) for c, e in self.encodings.items()}

        def encode(block: pa.Table) -> pa.Table:
            arrays: list[pa.Array | pa.ChunkedArray] = []
            for field in block.schema:
                encoding = encodings.get(field.name)
                if encoding is None:
                    arrays.append(block.column(field.name))
                    continue
                arrays += _indicators(block.column(field.name), encoding)
            return pa.Table.from_arrays(arrays, schema=out_schema)

        table = data.table.map_partitions(encode, schema=out_schema)
        encoded = set(self.encodings)
        features = tuple(name for field in out_schema for name in [field.name]
                         if name in added or (name in data.feature_columns and name not in encoded))
        return data.with_table(table, feature_columns=features)

    def export_model(self) -> dict[str, Any]:
        return {"kind": MODEL_KIND, "encodings": self.encodings}

    def load_model(self, model: dict[str, Any]) -> None:
        encodings = model.get("encodings")
        if model.get("kind") != MODEL_KIND or not isinstance(encodings, dict):
            raise InvalidArgument("OneHot: the model input is not a OneHot model")
        for column, encoding in encodings.items():
            if not isinstance(encoding, dict) or encoding.get("kind") not in (KIND_TEXT, KIND_NUMBER) \
                    or len(encoding.get("categories", [])) != len(encoding.get("names", [])):
                raise InvalidArgument(f"OneHot: the model's encoding of {column!r} is malformed")
        self.encodings = {str(c): dict(e) for c, e in encodings.items()}


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _indicators(column: pa.ChunkedArray, encoding: dict[str, Any]) -> list[pa.Array]:
    """The indicator arrays of one column: one per category, then other, then missing."""
    if encoding["kind"] == KIND_TEXT:
        values = pc.cast(column, pa.string())
        categories = pa.array(encoding["categories"], pa.string())
    else:
        if not is_numeric(column.type) and not pa.types.is_null(column.type):
            raise InvalidArgument(f"OneHot: a numeric category column is {column.type} in this data")
        values = pc.cast(column, pa.float64())
        categories = pa.array(encoding["categories"], pa.float64())
    index = pc.index_in(values, value_set=categories)
    null = np.asarray(pc.is_null(values, nan_is_null=True).to_numpy(zero_copy_only=False), dtype=bool)
    position = np.asarray(pc.fill_null(index, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    arrays = [pa.array((position == k).astype(np.float64)) for k in range(len(categories))]
    arrays.append(pa.array(((position == -1) & ~null).astype(np.float64)))
    if encoding["missing"]:
        arrays.append(pa.array(null.astype(np.float64)))
    return arrays
