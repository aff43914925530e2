"""The backend-neutral Table API: partitions of Arrow blocks keyed by an id column.

A `Table` is a list of partitions; each partition is processed as one or more *blocks*,
and a block is a `pyarrow.Table` that always holds the id column. Components are written
once against this API and run on the LOCAL (threads in this process) or SPARK backend.

Rules both backends share (the test suite checks them on both):
- Block functions (`map_partitions`, `map`, `filter`, `reduce`'s `map_fn`) are never
  called with an empty block, except once on an empty block of the input schema to learn
  the output schema (see below) or to reduce an empty table.
- Output schema of `map_partitions` / `map`: the `schema` argument when given; otherwise
  what `fn` returns for an empty block of the input schema. When `fn` raises on the empty
  block, or returns a column of the Arrow `null` type (an empty `object` array does that),
  the schema is taken from `fn`'s output on the first rows of the data instead. Every
  output block is then cast to that schema; a block that cannot be cast is an error.
- `reduce` on a table with no rows returns `map_fn(empty block)`; so a sum still gives 0.
- Row order is not part of the contract (Spark does not keep it across shuffles);
  compare collected results by id.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from kernel.computing.constants import JOIN_KINDS
from kernel.errors import InvalidArgument

T = TypeVar("T")
BlockFn = Callable[[pa.Table], pa.Table]
NumpyFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
MaskFn = Callable[[pa.Table], np.ndarray]
GroupFn = Callable[[pa.Table], np.ndarray]


class Table(abc.ABC):
    """A distributed table: partitions of columnar blocks sharing one schema and an id column."""

    id_column: str
    backend: str

    @property
    @abc.abstractmethod
    def schema(self) -> pa.Schema:
        """The Arrow schema of every block (the id column included)."""

    @property
    @abc.abstractmethod
    def num_partitions(self) -> int:
        """How many partitions the table is split into."""

    @property
    @abc.abstractmethod
    def session(self) -> ComputingSession:
        """The computing session this table belongs to."""

    @property
    def column_names(self) -> list[str]:
        """All column names, the id column included, in schema order."""
        return list(self.schema.names)

    @property
    def feature_names(self) -> list[str]:
        """Column names other than the id column, in schema order."""
        return [name for name in self.schema.names if name != self.id_column]

    @abc.abstractmethod
    def map_partitions(self, fn: BlockFn, schema: pa.Schema | None = None) -> Table:
        """Apply `fn` block by block; each output block must keep the id column."""

    def map(self, fn: NumpyFn, schema: pa.Schema | None = None) -> Table:
        """Apply `fn` to a numpy view of each block: {column: 1-D array}, id column included.

        The arrays may be read-only views of Arrow memory: return new arrays, do not write
        in place. When the output has no id column and as many rows as the input, the input
        ids are carried over.
        """
        return self.map_partitions(functools.partial(apply_numpy_fn, fn, self.id_column), schema)

    @abc.abstractmethod
    def filter(self, fn: MaskFn) -> Table:
        """Keep the rows where `fn(block)` (a boolean array, one value a row) is true."""

    @abc.abstractmethod
    def reduce(self, map_fn: Callable[[pa.Table], T], reduce_fn: Callable[[T, T], T]) -> T:
        """`map_fn` on every block, then the values combined pairwise with `reduce_fn`.

        `reduce_fn` must be associative (partitions combine in any grouping). On a table
        with no rows the result is `map_fn` of an empty block of the schema.
        """

    @abc.abstractmethod
    def join(self, other: Table, how: str = "inner", rsuffix: str | None = None) -> Table:
        """Join with `other` by id; `how` is inner, left, right or outer.

        The result keeps this table's id column name. A non-id column present on both
        sides is an error unless `rsuffix` is given, which is appended to `other`'s name.
        """

    @abc.abstractmethod
    def sample(self, fraction: float, seed: int) -> Table:
        """Keep each row with probability `fraction` (no replacement); same seed, same rows."""

    @abc.abstractmethod
    def union(self, other: Table) -> Table:
        """The rows of both tables; `other` must have the same columns and is cast to our types."""

    @abc.abstractmethod
    def select(self, columns: Sequence[str]) -> Table:
        """Keep `columns` (in that order); the id column is always kept, first if not listed."""

    def drop(self, columns: Sequence[str]) -> Table:
        """All columns but `columns`; the id column cannot be dropped."""
        missing = [name for name in columns if name not in self.schema.names]
        if missing:
            raise InvalidArgument(f"drop: no column named {', '.join(map(repr, missing))}")
        if self.id_column in columns:
            raise InvalidArgument(f"drop: the id column {self.id_column!r} cannot be dropped")
        return self.select([name for name in self.schema.names if name not in set(columns)])

    @abc.abstractmethod
    def repartition(self, num_partitions: int) -> Table:
        """The same rows spread over `num_partitions` partitions."""

    @abc.abstractmethod
    def cache(self) -> Table:
        """Keep the computed rows for reuse (SPARK); LOCAL tables are already computed."""

    @abc.abstractmethod
    def unpersist(self) -> None:
        """Free what `cache` kept (SPARK): the table stays usable, its rows are computed again
        if it is read. LOCAL tables hold their blocks for as long as they are referenced."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of rows."""

    @abc.abstractmethod
    def collect(self) -> pa.Table:
        """All rows as one Arrow table in the caller's process: for small results only."""

    @abc.abstractmethod
    def iter_blocks(self) -> Iterator[pa.Table]:
        """The rows as non-empty blocks, handed to the caller one partition at a time.

        The caller's memory holds one partition, never the table: the way to stream a
        large table out of the workers (to a file, to another member).
        """

    @abc.abstractmethod
    def sum_by_id(self, columns: Sequence[str]) -> Table:
        """One row per distinct id: the id and, for each of `columns` (numeric), its sum over
        that id's rows; the other columns are left out. Summed where the rows are."""

    @abc.abstractmethod
    def sort_by(self, column: str) -> Table:
        """The same rows ordered by `column` (ascending) across partitions: the first
        partition holds the smallest values, and `iter_blocks` yields them in order."""

    @abc.abstractmethod
    def with_id_column(self, column: str) -> Table:
        """The same rows keyed by `column` (joins then match on it); no data moves."""

    def to_pandas(self) -> pd.DataFrame:
        """All rows as a pandas DataFrame in the caller's process: for small results only."""
        return self.collect().to_pandas()

    @abc.abstractmethod
    def save(self, path: str) -> None:
        """Write the table as a directory of Parquet files (replacing what is at `path`)."""

    @abc.abstractmethod
    def duplicate_ids(self, limit: int = 5) -> list[Any]:
        """Up to `limit` id values that occur more than once (empty list: ids are unique)."""

    @abc.abstractmethod
    def group_blocks(self, key_fn: GroupFn, groups: int) -> BlockGroups:
        """The rows split into `groups` groups by `key_fn` (one group number in [0, groups)
        a row), laid out so that one group is read without reading the others.

        Grouping reads the table once; `BlockGroups.reduce` of one group then reads only
        the partition holding it.
        """


class BlockGroups(abc.ABC):
    """A table's rows split into numbered groups (see `Table.group_blocks`)."""

    groups: int
    schema: pa.Schema

    @abc.abstractmethod
    def reduce(self, group: int, map_fn: Callable[[pa.Table], T], reduce_fn: Callable[[T, T], T]) -> T:
        """`Table.reduce` over the rows of `group` only (an empty group gives `map_fn` of
        an empty block of the schema)."""

    @abc.abstractmethod
    def release(self) -> None:
        """Free what the grouping holds; `reduce` cannot be called afterwards."""


class ComputingSession(abc.ABC):
    """Makes Tables for one backend and owns its workers (thread pool or SparkSession)."""

    backend: str

    @abc.abstractmethod
    def from_arrow(self, data: pa.Table, id_column: str, num_partitions: int | None = None) -> Table:
        """A Table over in-memory Arrow data."""

    def from_pandas(
        self, df: pd.DataFrame, id_column: str, num_partitions: int | None = None
    ) -> Table:
        """A Table over a pandas DataFrame (its index is not kept)."""
        return self.from_arrow(pa.Table.from_pandas(df, preserve_index=False), id_column, num_partitions)

    @abc.abstractmethod
    def read_parquet(self, path: str, id_column: str) -> Table:
        """A Table over a Parquet file or directory (local path or URI)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Release the workers; the session's Tables cannot compute afterwards."""

    def __enter__(self) -> ComputingSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ---- block-level helpers shared by the backends (they run inside workers) ----------------


def check_id_column(names: Sequence[str], id_column: str, where: str) -> None:
    """Refuse columns that do not include `id_column`, naming it and the columns there are."""
    if id_column not in names:
        raise InvalidArgument(
            f"id column {id_column!r} is not in {where}; its columns are: {', '.join(names) or '(none)'}"
        )


def checked_block(out: object, id_column: str, what: str) -> pa.Table:
    """Validate what a block function returned: an Arrow table that kept the id column."""
    if isinstance(out, pa.RecordBatch):
        out = pa.Table.from_batches([out])
    if not isinstance(out, pa.Table):
        raise InvalidArgument(f"{what}: the function must return a pyarrow.Table, got {type(out).__name__}")
    check_id_column(out.schema.names, id_column, f"the block {what}'s function returned")
    return out


def conform(block: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    """Cast `block` to `schema` (same column names, possibly reordered); refuse anything else."""
    if block.schema.equals(schema):
        return block
    if sorted(block.schema.names) != sorted(schema.names):
        raise InvalidArgument(
            f"{what}: a block has columns [{', '.join(block.schema.names)}] but the table's "
            f"schema has [{', '.join(schema.names)}]; return the same columns from every block "
            "or pass schema="
        )
    try:
        return block.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidArgument(f"{what}: a block cannot be cast to the table's schema: {exc}") from exc


def has_null_type(schema: pa.Schema) -> bool:
    """True when a column's type is Arrow `null` (what an empty object array converts to)."""
    return any(pa.types.is_null(field.type) for field in schema)


def infer_from_empty(fn: BlockFn, schema: pa.Schema, id_column: str, what: str) -> pa.Schema | None:
    """The output schema of `fn` on an empty block, or None when that does not tell it."""
    try:
        out = fn(schema.empty_table())
    except Exception:
        return None
    out_schema = checked_block(out, id_column, what).schema
    return None if has_null_type(out_schema) else out_schema


def unknown_schema_error(fn: BlockFn, schema: pa.Schema, what: str) -> InvalidArgument:
    """The error for an empty table whose output schema `fn` does not tell."""
    try:
        fn(schema.empty_table())
    except Exception as exc:
        error = InvalidArgument(
            f"{what}: cannot tell the output schema of an empty table: the function "
            f"failed on an empty block ({type(exc).__name__}: {exc}); pass schema="
        )
        error.__cause__ = exc
        return error
    return InvalidArgument(
        f"{what}: cannot tell the output schema of an empty table (the function "
        "returns a column of null type); pass schema="
    )


def block_to_numpy(block: pa.Table) -> dict[str, np.ndarray]:
    """{column: 1-D numpy array} for a block (nulls become NaN or None)."""
    return {name: block.column(name).to_numpy() for name in block.schema.names}


def numpy_to_block(arrays: dict[str, np.ndarray], like: pa.Table, id_column: str) -> pa.Table:
    """Arrow block from {column: 1-D array}; columns kept from `like` keep their Arrow type."""
    if not isinstance(arrays, dict):
        raise InvalidArgument(f"map: the function must return a dict of numpy arrays, got {type(arrays).__name__}")
    columns: dict[str, pa.Array] = {}
    for name, values in arrays.items():
        array = np.asarray(values)
        if array.ndim != 1:
            raise InvalidArgument(f"map: column {name!r} has shape {array.shape}; columns must be 1-D")
        kept_type = like.schema.field(name).type if name in like.schema.names else None
        if kept_type is not None and array.dtype == object:
            columns[name] = pa.array(array, type=kept_type)
        else:
            columns[name] = pa.array(array)
    lengths = {len(column) for column in columns.values()}
    if len(lengths) > 1:
        raise InvalidArgument(f"map: the returned columns differ in length: {sorted(lengths)}")
    if id_column not in columns:
        rows = lengths.pop() if lengths else like.num_rows
        if rows != like.num_rows:
            raise InvalidArgument(
                f"map: the function changed the number of rows ({like.num_rows} -> {rows}) "
                f"and did not return the id column {id_column!r}"
            )
        columns = {id_column: like.column(id_column).combine_chunks(), **columns}
    return pa.table(columns)


def apply_numpy_fn(fn: NumpyFn, id_column: str, block: pa.Table) -> pa.Table:
    """Run a numpy-dict function on a block and turn its answer back into a block."""
    return numpy_to_block(fn(block_to_numpy(block)), block, id_column)


def apply_filter(fn: MaskFn, block: pa.Table) -> pa.Table:
    """The rows of `block` where `fn(block)` is true; the mask is checked for shape and type."""
    mask = np.asarray(fn(block))
    if mask.dtype != np.bool_ or mask.shape != (block.num_rows,):
        raise InvalidArgument(
            f"filter: the function must return a boolean array of {block.num_rows} values, "
            f"got dtype {mask.dtype} and shape {mask.shape}"
        )
    return block.filter(pa.array(mask))


def sample_block(fraction: float, seed: int, index: int, block: pa.Table) -> pa.Table:
    """Bernoulli sample of one block; the generator is seeded by (seed, block index)."""
    rng = np.random.default_rng((seed, index))
    return block.filter(pa.array(rng.random(block.num_rows) < fraction))


def check_fraction(fraction: float) -> None:
    """Refuse a sampling fraction outside [0, 1]."""
    if not 0.0 <= fraction <= 1.0:
        raise InvalidArgument(f"sample: fraction must be within [0, 1], got {fraction}")


def check_same_backend(table: Table, other: Table, what: str) -> None:
    """Refuse combining tables of two backends."""
    if other.backend != table.backend:
        raise InvalidArgument(f"{what}: cannot combine a {table.backend} table with a {other.backend} table")


def join_renames(table: Table, other: Table, how: str, rsuffix: str | None) -> dict[str, str]:
    """Validate a join and return how to rename `other`'s columns (its id to ours, clashes suffixed)."""
    check_same_backend(table, other, "join")
    if how not in JOIN_KINDS:
        raise InvalidArgument(f"join: how must be one of {', '.join(JOIN_KINDS)}, got {how!r}")
    left_type = table.schema.field(table.id_column).type
    right_type = other.schema.field(other.id_column).type
    if left_type != right_type:
        raise InvalidArgument(
            f"join: id column {table.id_column!r} is {left_type} but the other table's "
            f"id column {other.id_column!r} is {right_type}; cast one side first"
        )
    renames = {other.id_column: table.id_column} if other.id_column != table.id_column else {}
    clashes = [name for name in other.feature_names if name in table.schema.names]
    if clashes and rsuffix is None:
        raise InvalidArgument(
            f"join: both tables have the column(s) {', '.join(map(repr, clashes))}; "
            "rename them or pass rsuffix="
        )
    for name in clashes:
        renamed = f"{name}{rsuffix}"
        if renamed in table.schema.names or renamed in other.schema.names:
            raise InvalidArgument(f"join: column {name!r} with rsuffix {rsuffix!r} still clashes")
        renames[name] = renamed
    return renames


def union_target(table: Table, other: Table) -> list[str]:
    """Validate a union; returns `other`'s column names in our order (its id renamed to ours)."""
    check_same_backend(table, other, "union")
    theirs = [table.id_column if name == other.id_column else name for name in other.schema.names]
    if sorted(theirs) != sorted(table.schema.names):
        only_ours = sorted(set(table.schema.names) - set(theirs))
        only_theirs = sorted(set(theirs) - set(table.schema.names))
        raise InvalidArgument(
            "union: the tables' columns differ; only in this table: "
            f"{only_ours or 'none'}, only in the other: {only_theirs or 'none'}"
        )
    return list(table.schema.names)


def summed_columns(table: Table, columns: Sequence[str]) -> list[str]:
    """Validate `sum_by_id`'s columns: known, numeric, not the id, no repeats."""
    if isinstance(columns, str):
        raise InvalidArgument("sum_by_id: columns must be a list of names, not a single string")
    chosen = list(dict.fromkeys(columns))
    for name in chosen:
        if name not in table.schema.names:
            raise InvalidArgument(f"sum_by_id: no column named {name!r}")
        if name == table.id_column:
            raise InvalidArgument(f"sum_by_id: {name!r} is the id column")
        kind = table.schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise InvalidArgument(f"sum_by_id: column {name!r} is {kind}, not a number")
    return chosen


def selected_columns(table: Table, columns: Sequence[str]) -> list[str]:
    """Validate a selection: known names, id column kept (first when not listed), no repeats."""
    if isinstance(columns, str):
        raise InvalidArgument("select: columns must be a list of names, not a single string")
    unknown = [name for name in columns if name not in table.schema.names]
    if unknown:
        raise InvalidArgument(
            f"select: no column named {', '.join(map(repr, unknown))}; columns are: {', '.join(table.schema.names)}"
        )
    chosen = list(dict.fromkeys(columns))
    if table.id_column not in chosen:
        chosen.insert(0, table.id_column)
    return chosen


def group_numbers(key_fn: GroupFn, groups: int, block: pa.Table) -> np.ndarray:
    """`key_fn`'s group number of each row of `block`, checked: integers in [0, groups)."""
    numbers = np.asarray(key_fn(block))
    if numbers.shape != (block.num_rows,) or not np.issubdtype(numbers.dtype, np.integer):
        raise InvalidArgument(
            f"group_blocks: the function must return {block.num_rows} integers, "
            f"got dtype {numbers.dtype} and shape {numbers.shape}"
        )
    if len(numbers) and (int(numbers.min()) < 0 or int(numbers.max()) >= groups):
        raise InvalidArgument(f"group_blocks: a group number is outside [0, {groups})")
    return numbers.astype(np.int64)


def split_by_group(key_fn: GroupFn, groups: int, block: pa.Table) -> list[tuple[int, pa.Table]]:
    """(group, rows of `block` in that group, in block order) for every group present."""
    numbers = group_numbers(key_fn, groups, block)
    order = np.argsort(numbers, kind="stable")
    ordered = block.take(pa.array(order))
    present, starts, sizes = np.unique(numbers[order], return_index=True, return_counts=True)
    return [(int(g), ordered.slice(int(start), int(size)))
            for g, start, size in zip(present, starts, sizes, strict=True)]


def check_groups(groups: int) -> None:
    """Refuse a group count below 1."""
    if groups < 1:
        raise InvalidArgument(f"group_blocks: groups must be at least 1, got {groups}")


def check_partitions(num_partitions: int | None) -> None:
    """Refuse a partition count below 1."""
    if num_partitions is not None and num_partitions < 1:
        raise InvalidArgument(f"num_partitions must be at least 1, got {num_partitions}")
