"""Union: every member stacks its own input tables; nothing crosses members.

Inputs are `input.data.data`, in the order listed; they must have the same columns (types
are cast to the first input's) and the same label column. Duplicates are found by id with
the Table API's joins, so no table is gathered in one place.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from kernel.base_param import BaseParam
from kernel.components.union.param import UnionParam
from kernel.computing import Table
from kernel.errors import ConfError, InvalidArgument
from kernel.model_base import ModelBase, TaskArgs, TaskOutputs

METRIC_NAMESPACE: Final = "union"
MARK_COLUMN: Final = "__weft_seen"


class Union(ModelBase):
    """Takes every table of input.data.data (the rule table's one-input rule does not apply)."""

    def run(self, params: BaseParam, args: TaskArgs) -> TaskOutputs:
        self.model_param = params
        assert isinstance(params, UnionParam)
        unknown = sorted(set(args.data) - {"data"})
        if unknown or args.models:
            raise ConfError("Union: takes input.data.data (several data sets) and no model")
        inputs = args.data.get("data") or []
        if not inputs:
            return TaskOutputs()
        if not params.need_run:
            return TaskOutputs(data=inputs[0])
        first = inputs[0]
        for k, other in enumerate(inputs[1:], start=1):
            if sorted(other.table.schema.names) != sorted(first.table.schema.names) \
                    or other.label_column != first.label_column:
                raise InvalidArgument(
                    f"Union: input {k} has columns {sorted(other.table.schema.names)} (label {other.label_column}), "
                    f"input 0 has {sorted(first.table.schema.names)} (label {first.label_column})"
                )
        for k, data in enumerate(inputs):
            repeated = data.table.duplicate_ids(limit=5)
            if repeated:
                raise InvalidArgument(f"Union: input {k} holds id(s) {repeated} more than once")
        order = inputs if params.duplicate_ids != "keep_last" else inputs[::-1]
        merged = order[0].table
        dropped = 0
        for data in order[1:]:
            table = data.table
            if params.duplicate_ids == "refuse":
                merged = merged.union(table)
                continue
            fresh = _rows_not_in(table, merged)
            dropped += table.count() - fresh.count()
            merged = merged.union(fresh)
        if params.duplicate_ids == "refuse":
            repeated = merged.duplicate_ids(limit=5)
            if repeated:
                raise InvalidArgument(
                    f"Union: id(s) {repeated} are in more than one input; set duplicate_ids to keep_first or keep_last"
                )
        rows = merged.count()
        self.tracker.log_metric("union", METRIC_NAMESPACE, {"inputs": len(inputs), "rows": rows,
                                                            "duplicates_dropped": dropped}, metric_type="union")
        return TaskOutputs(data=first.with_table(merged))


def _rows_not_in(table: Table, kept: Table) -> Table:
    """The rows of `table` whose id is not in `kept`."""
    id_column = table.id_column

    def mark(block: pa.Table) -> pa.Table:
        return pa.table({id_column: block.column(id_column), MARK_COLUMN: pa.array(np.ones(block.num_rows, np.int8))})

    marks = kept.map_partitions(mark, schema=pa.schema([kept.schema.field(id_column),
                                                        pa.field(MARK_COLUMN, pa.int8())]))
    joined = table.join(marks, how="left")

    def unseen(block: pa.Table) -> np.ndarray:
        return np.asarray(block.column(MARK_COLUMN).is_null().to_numpy(zero_copy_only=False), dtype=bool)

    return joined.filter(unseen).drop([MARK_COLUMN])
