"""LOCAL backend: Arrow blocks in this process, block functions run on a thread pool.

pyarrow and numpy release the GIL in their kernels, so threads use every core without
pickling or copying data between processes. Operations run eagerly.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from kernel.computing.constants import JOIN_LEFT_INDEX, JOIN_RIGHT_INDEX, PART_FILE_TEMPLATE
from kernel.computing.paths import exists, filesystem_for
from kernel.computing.table import (
    BlockFn,
    BlockGroups,
    ComputingSession,
    GroupFn,
    MaskFn,
    Table,
    apply_filter,
    check_fraction,
    check_groups,
    check_id_column,
    check_partitions,
    checked_block,
    conform,
    has_null_type,
    infer_from_empty,
    join_renames,
    sample_block,
    selected_columns,
    split_by_group,
    summed_columns,
    union_target,
    unknown_schema_error,
)
from kernel.constants import BACKEND_LOCAL
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound

T = TypeVar("T")
R = TypeVar("R")

# pyarrow's names for the join kinds of the Table API.
_ARROW_JOIN: dict[str, str] = {
    "inner": "inner",
    "left": "left outer",
    "right": "right outer",
    "outer": "full outer",
}


def split_blocks(data: pa.Table, num_partitions: int) -> list[pa.Table]:
    """Zero-copy slices of `data`, about equal in size; an empty table stays one empty block."""
    if data.num_rows == 0:
        return [data]
    parts = max(1, min(num_partitions, data.num_rows))
    size = math.ceil(data.num_rows / parts)
    return [data.slice(start, size) for start in range(0, data.num_rows, size)]


def join_arrow(left: pa.Table, right: pa.Table, id_column: str, how: str) -> pa.Table:
    """Join two Arrow tables on `id_column` (right's other columns already renamed).

    Only the id column and row numbers go through Arrow's hash join; whole rows are then
    gathered with `take`, so columns of any type (lists, structs) join too. Rows come out
    in left-table order, then right-only rows in right-table order.
    """
    left_keys = pa.table({id_column: left.column(id_column), JOIN_LEFT_INDEX: np.arange(left.num_rows)})
    right_keys = pa.table({id_column: right.column(id_column), JOIN_RIGHT_INDEX: np.arange(right.num_rows)})
    matched = left_keys.join(right_keys, keys=id_column, join_type=_ARROW_JOIN[how], use_threads=True)
    matched = matched.sort_by([(JOIN_LEFT_INDEX, "ascending"), (JOIN_RIGHT_INDEX, "ascending")])
    left_rows = left.take(matched.column(JOIN_LEFT_INDEX))
    id_index = left.schema.get_field_index(id_column)
    joined = left_rows.set_column(id_index, left.schema.field(id_column), matched.column(id_column))
    right_rows = right.drop_columns([id_column]).take(matched.column(JOIN_RIGHT_INDEX))
    for field, column in zip(right_rows.schema, right_rows.columns, strict=True):
        joined = joined.append_column(field, column)
    return joined


class LocalSession(ComputingSession):
    """In-process computing: a thread pool of `num_workers` threads."""

    backend = BACKEND_LOCAL

    def __init__(self, num_workers: int | None = None, num_partitions: int | None = None) -> None:
        workers = num_workers if num_workers is not None else (os.cpu_count() or 1)
        if workers < 1:
            raise InvalidArgument(f"num_workers must be at least 1, got {workers}")
        check_partitions(num_partitions)
        self.num_workers = workers
        self.default_partitions = num_partitions or workers
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="weft-local"
        )

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`fn` over `items` on the pool, results in input order; the first error is raised."""
        if self._pool is None:
            raise FailedPrecondition("the LOCAL computing session was stopped; start a new one")
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def from_arrow(self, data: pa.Table, id_column: str, num_partitions: int | None = None) -> Table:
        if not isinstance(data, pa.Table):
            raise InvalidArgument(f"from_arrow: data must be a pyarrow.Table, got {type(data).__name__}")
        check_id_column(data.schema.names, id_column, "the data")
        check_partitions(num_partitions)
        return LocalTable(self, split_blocks(data, num_partitions or self.default_partitions), id_column)

    def read_parquet(self, path: str, id_column: str) -> Table:
        filesystem, inner = filesystem_for(path)
        if not exists(filesystem, inner):
            raise NotFound(f"read_parquet: nothing at {path}")
        data = pads.dataset(inner, filesystem=filesystem, format="parquet").to_table(use_threads=True)
        check_id_column(data.schema.names, id_column, f"the Parquet data at {path}")
        return LocalTable(self, split_blocks(data, self.default_partitions), id_column)

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class LocalGroups(BlockGroups):
    """LOCAL groups: per group, the slices of the table's blocks that fall in it."""

    def __init__(self, session: LocalSession, schema: pa.Schema, groups: int,
                 blocks: dict[int, list[pa.Table]]) -> None:
        self._session = session
        self.schema = schema
        self.groups = groups
        self._blocks: dict[int, list[pa.Table]] | None = blocks

    def reduce(self, group: int, map_fn: Callable[[pa.Table], T], reduce_fn: Callable[[T, T], T]) -> T:
        if self._blocks is None:
            raise FailedPrecondition("group_blocks: the groups were released")
        if not 0 <= group < self.groups:
            raise InvalidArgument(f"group_blocks: no group {group} of {self.groups}")
        blocks = self._blocks.get(group, [])
        if not blocks:
            return map_fn(self.schema.empty_table())
        return functools.reduce(reduce_fn, self._session.run(map_fn, blocks))

    def release(self) -> None:
        self._blocks = None


class LocalTable(Table):
    """A LOCAL table: a list of Arrow blocks (one a partition) that share one schema."""

    backend = BACKEND_LOCAL

    def __init__(self, session: LocalSession, blocks: list[pa.Table], id_column: str) -> None:
        if not blocks:
            raise InvalidArgument("a LOCAL table needs at least one block")
        self._session = session
        self.blocks = blocks
        self.id_column = id_column

    @property
    def schema(self) -> pa.Schema:
        return self.blocks[0].schema

    @property
    def num_partitions(self) -> int:
        return len(self.blocks)

    @property
    def session(self) -> LocalSession:
        return self._session

    def _derive(self, blocks: list[pa.Table]) -> LocalTable:
        return LocalTable(self._session, blocks, self.id_column)

    def map_partitions(self, fn: BlockFn, schema: pa.Schema | None = None) -> Table:
        what = "map_partitions"

        def apply(block: pa.Table) -> pa.Table | None:
            return checked_block(fn(block), self.id_column, what) if block.num_rows else None

        outputs = self._session.run(apply, self.blocks)
        target = schema or infer_from_empty(fn, self.schema, self.id_column, what)
        if target is None:
            produced = [out for out in outputs if out is not None and out.num_rows]
            target = produced[0].schema if produced else None
        if target is None:
            raise unknown_schema_error(fn, self.schema, what)
        if has_null_type(target) and schema is None:
            raise InvalidArgument(f"{what}: the output has a column of null type; pass schema=")
        blocks = [target.empty_table() if out is None else conform(out, target, what) for out in outputs]
        return self._derive(blocks)

    def filter(self, fn: MaskFn) -> Table:
        def apply(block: pa.Table) -> pa.Table:
            return apply_filter(fn, block) if block.num_rows else block

        return self._derive(self._session.run(apply, self.blocks))

    def reduce(self, map_fn: Callable[[pa.Table], T], reduce_fn: Callable[[T, T], T]) -> T:
        non_empty = [block for block in self.blocks if block.num_rows]
        if not non_empty:
            return map_fn(self.schema.empty_table())
        return functools.reduce(reduce_fn, self._session.run(map_fn, non_empty))

    def join(self, other: Table, how: str = "inner", rsuffix: str | None = None) -> Table:
        renames = join_renames(self, other, how, rsuffix)
        right = other.collect()
        if renames:
            right = right.rename_columns([renames.get(name, name) for name in right.schema.names])
        joined = join_arrow(self.collect(), right, self.id_column, how)
        return self._derive(split_blocks(joined, self.num_partitions))

    def sample(self, fraction: float, seed: int) -> Table:
        check_fraction(fraction)

        def apply(indexed: tuple[int, pa.Table]) -> pa.Table:
            return sample_block(fraction, seed, indexed[0], indexed[1])

        return self._derive(self._session.run(apply, list(enumerate(self.blocks))))

    def union(self, other: Table) -> Table:
        order = union_target(self, other)
        theirs = other.blocks if isinstance(other, LocalTable) else [other.collect()]
        renamed = [
            block.rename_columns([self.id_column if n == other.id_column else n for n in block.schema.names])
            for block in theirs
        ]
        cast = [conform(block.select(order), self.schema, "union") for block in renamed]
        return self._derive(self.blocks + cast)

    def select(self, columns: Sequence[str]) -> Table:
        chosen = selected_columns(self, columns)
        return self._derive([block.select(chosen) for block in self.blocks])

    def repartition(self, num_partitions: int) -> Table:
        check_partitions(num_partitions)
        return self._derive(split_blocks(self.collect(), num_partitions))

    def cache(self) -> Table:
        return self

    def unpersist(self) -> None:
        return None

    def count(self) -> int:
        return sum(block.num_rows for block in self.blocks)

    def collect(self) -> pa.Table:
        if len(self.blocks) == 1:
            return self.blocks[0]
        return pa.concat_tables(self.blocks)

    def iter_blocks(self) -> Iterator[pa.Table]:
        for block in self.blocks:
            if block.num_rows:
                yield block

    def sum_by_id(self, columns: Sequence[str]) -> Table:
        chosen = summed_columns(self, columns)
        grouped = self.collect().group_by(self.id_column, use_threads=False).aggregate([(c, "sum") for c in chosen])
        summed = pa.table([grouped.column(self.id_column)] + [grouped.column(f"{c}_sum") for c in chosen],
                          names=[self.id_column, *chosen])
        return self._derive(split_blocks(summed, self.num_partitions))

    def sort_by(self, column: str) -> Table:
        check_id_column(self.schema.names, column, "the table (sort_by)")
        return self._derive(split_blocks(self.collect().sort_by(column), self.num_partitions))

    def with_id_column(self, column: str) -> Table:
        check_id_column(self.schema.names, column, "the table (with_id_column)")
        return LocalTable(self._session, self.blocks, column)

    def save(self, path: str) -> None:
        filesystem, inner = filesystem_for(path)
        if exists(filesystem, inner):
            filesystem.delete_dir(inner)
        filesystem.create_dir(inner, recursive=True)
        blocks = [block for block in self.blocks if block.num_rows] or [self.blocks[0]]

        def write(indexed: tuple[int, pa.Table]) -> None:
            target = f"{inner}/{PART_FILE_TEMPLATE.format(index=indexed[0])}"
            pq.write_table(indexed[1], target, filesystem=filesystem)

        self._session.run(write, list(enumerate(blocks)))

    def duplicate_ids(self, limit: int = 5) -> list[Any]:
        id_type = self.schema.field(self.id_column).type
        chunks = [chunk for block in self.blocks for chunk in block.column(self.id_column).chunks]
        ids = pa.chunked_array(chunks, type=id_type)
        counts = pc.value_counts(ids)
        repeated = counts.filter(pc.greater(counts.field("counts"), 1))
        return list(repeated.field("values").to_pylist()[:limit])

    def group_blocks(self, key_fn: GroupFn, groups: int) -> BlockGroups:
        check_groups(groups)
        non_empty = [block for block in self.blocks if block.num_rows]
        split = self._session.run(functools.partial(split_by_group, key_fn, groups), non_empty)
        by_group: dict[int, list[pa.Table]] = {}
        for pieces in split:  # blocks in table order, so a group's slices are too
            for group, piece in pieces:
                by_group.setdefault(group, []).append(piece)
        return LocalGroups(self._session, self.schema, groups, by_group)
