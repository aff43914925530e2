"""Row partitions that agree at every member: the promoter cuts, providers follow by id.

The promoter assigns each row a part from its split key (kernel/stats/split.py). It tells
each provider how, in one plan message:
- unstratified: the seed and the key thresholds, from which the provider computes the same
  parts for its own ids (no id crosses members);
- stratified on the promoter's label: only the part sizes; the table of (id, part) follows
  as a stream on the assignment variable (kernel/blocks/table_stream.py: one partition at a
  time in messages of at most ASSIGNMENT_STREAM_ROWS rows, ended by an empty table), because
  the provider cannot tell strata. The seed and thresholds are not sent, as they would let
  it read labels off the keys. The provider writes the stream to its scratch area and joins
  its rows with the table read back from there, so no driver holds the whole assignment.
A provider checks that its rows fall into parts of exactly the promoter's sizes (or that the
table covers its ids), so members whose ids differ stop with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kernel.blocks.table_stream import receive_table, send_table
from kernel.computing import Table
from kernel.errors import InvalidArgument
from kernel.federation.transfer_variable import Variable
from kernel.federation.variables import BoundChannel
from kernel.model_base import LabeledTable, TaskContext
from kernel.stats.constants import ALL_ROWS, ASSIGNMENT_STREAM_ROWS
from kernel.stats.split import assign_parts, row_keys, strata_of, stratum_thresholds

PART_COLUMN: Final = "__weft_part"
MODE_KEYS: Final = "keys"
MODE_TABLE: Final = "table"

#: The assignment variable in the scope of message `index` of the stream.
Assignment = Callable[[int], BoundChannel[pa.Table]]


def _with_parts(table: Table, label: str | None, thresholds: Mapping[Any, Sequence[float]], seed: int) -> Table:
    id_column = table.id_column
    plan = {k: list(v) for k, v in thresholds.items()}

    def add_part(block: pa.Table) -> pa.Table:
        parts = assign_parts(row_keys(block.column(id_column), seed), strata_of(block, label), plan)
        return block.append_column(PART_COLUMN, pa.array(parts, pa.int64()))

    schema = table.schema.append(pa.field(PART_COLUMN, pa.int64()))
    return table.map_partitions(add_part, schema=schema).cache()


def promoter_parts(
    data: LabeledTable, fractions: Mapping[Any, Sequence[float]] | Sequence[float], stratified: bool, seed: int,
    plan: Variable, assignment: Assignment, has_providers: bool, what: str,
) -> tuple[Table, dict[str, list[int]]]:
    """The promoter's rows with a part column, after telling every provider how to cut its rows
    (the plan; when stratified, then the stream of (id, part) on `assignment`)."""
    label = data.label_column if stratified else None
    if stratified and label is None:
        raise InvalidArgument(f"{what}: a stratified cut needs the promoter's label (DataIO with_label)")
    thresholds, sizes = stratum_thresholds(data.table, label, fractions, seed)
    parted = _with_parts(data.table, label, thresholds, seed)
    totals = [sum(s[k] for s in sizes.values() if k < len(s)) for k in range(max((len(s) for s in sizes.values()), default=0))]
    if has_providers:
        if label is None:
            plan.remote({"mode": MODE_KEYS, "seed": seed, "thresholds": list(thresholds[ALL_ROWS]), "sizes": totals})
        else:
            kept = parted.select([data.id_column, PART_COLUMN]).filter(
                lambda block: np.asarray(pc.greater_equal(block.column(PART_COLUMN), 0).to_numpy(zero_copy_only=False),
                                         dtype=bool))
            plan.remote({"mode": MODE_TABLE, "sizes": totals})
            send_table(lambda index, block: assignment(index).remote(block), kept, ASSIGNMENT_STREAM_ROWS)
    return parted, {str(k): v for k, v in sizes.items()}


def provider_parts(data: LabeledTable, plan: Variable, assignment: Assignment, ctx: TaskContext, what: str) -> Table:
    """This provider's rows with the part column the promoter's plan (and, when stratified, the
    assignment stream) gives them."""
    message = plan.get(idx=0)
    if not isinstance(message, dict) or message.get("mode") not in (MODE_KEYS, MODE_TABLE):
        raise InvalidArgument(f"{what}: the promoter's plan is malformed")
    sizes = message.get("sizes")
    if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes):
        raise InvalidArgument(f"{what}: the plan's part sizes are malformed")
    if message["mode"] == MODE_KEYS:
        seed, cut = message.get("seed"), message.get("thresholds")
        if not isinstance(seed, int) or not isinstance(cut, list) or len(cut) != len(sizes) \
                or not all(isinstance(t, float) for t in cut):
            raise InvalidArgument(f"{what}: the plan's seed or thresholds are malformed")
        parted = _with_parts(data.table, None, {ALL_ROWS: cut}, seed)
    else:
        parted = _joined_parts(data, assignment, sum(sizes), ctx, what)
    counts = parted.reduce(
        lambda block: np.bincount(np.asarray(block.column(PART_COLUMN).to_numpy(zero_copy_only=False)) + 1,
                                  minlength=len(sizes) + 1)[: len(sizes) + 1],
        lambda a, b: a + b,
    )
    if [int(c) for c in counts[1:]] != sizes:
        raise InvalidArgument(
            f"{what}: this member's rows fall into parts of {[int(c) for c in counts[1:]]} rows, the promoter's "
            f"of {sizes}; run Intersection on every member's data first"
        )
    return parted


def _joined_parts(data: LabeledTable, assignment: Assignment, rows: int, ctx: TaskContext, what: str) -> Table:
    """The rows joined with the promoter's stream of (id, part), read back from scratch (part
    -1 where the stream does not name a row)."""
    id_column = data.id_column
    id_type = data.table.schema.field(id_column).type

    def checked(message: pa.Table, index: int) -> pa.Table:
        if message.num_columns != 2 or not pa.types.is_integer(message.schema.field(1).type):
            raise InvalidArgument(f"{what}: the promoter's assignment message {index} must be a table of id and "
                                  f"integer part, got columns {', '.join(message.schema.names) or 'none'}")
        if message.schema.field(0).type != id_type:
            raise InvalidArgument(f"{what}: the promoter's assignment message {index} has ids of "
                                  f"{message.schema.field(0).type}, this member's are {id_type}")
        return pa.table({id_column: message.column(0), PART_COLUMN: pc.cast(message.column(1), pa.int64())})

    schema = pa.schema([pa.field(id_column, id_type), pa.field(PART_COLUMN, pa.int64())])
    received, count = receive_table(lambda index: assignment(index).get(idx=0), checked, ctx.scratch(),
                                    ctx.computing, f"{what.lower()}_assignment.{ctx.flow.flow_id}", schema)
    if count != rows:
        raise InvalidArgument(f"{what}: the promoter's assignment names {count} rows, its part sizes add up to {rows}")
    joined = data.table.join(received, how="left")

    def missing_is_none(block: pa.Table) -> pa.Table:
        position = block.schema.get_field_index(PART_COLUMN)
        return block.set_column(position, pa.field(PART_COLUMN, pa.int64()),
                                pc.fill_null(block.column(PART_COLUMN), -1))

    return joined.map_partitions(missing_is_none, schema=joined.schema.set(
        joined.schema.get_field_index(PART_COLUMN), pa.field(PART_COLUMN, pa.int64()))).cache()


def part(data: LabeledTable, parted: Table, index: int) -> LabeledTable:
    """The rows of part `index`, without the part column."""

    def member(block: pa.Table) -> np.ndarray:
        return np.asarray(block.column(PART_COLUMN).to_numpy(zero_copy_only=False) == index, dtype=bool)

    table = parted.filter(member).drop([PART_COLUMN])
    return data.with_table(table)
