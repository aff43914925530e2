"""SPARK backend: a Table is a Spark DataFrame; block functions run on Arrow batches via mapInArrow.

A block here is one Arrow batch of a partition (at most
`spark.sql.execution.arrow.maxRecordsPerBatch` rows, 10,000 by default). Operations are
lazy, as Spark's are: a block function's error is raised by the action that runs it
(`count`, `collect`, `reduce`, `save`, ...). Errors Weft raises inside a worker come back
as the same `kernel.errors` class on the driver.

Output schemas of `map_partitions` / `map` follow the rule in `kernel.computing.table`; the
driver learns them before any job runs by calling `fn` on an empty block, and only when
that does not tell, on the first `INFER_SAMPLE_ROWS` rows of the table.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
from pyspark.serializers import CloudPickleSerializer
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import BinaryType, LongType, StructField, StructType

from kernel import errors
from kernel.computing import spark_watch
from kernel.computing.constants import (
    DEFAULT_SPARK_MASTER,
    INFER_SAMPLE_ROWS,
    REDUCE_VALUE_COLUMN,
    SPARK_APP_NAME,
)
from kernel.computing.paths import to_uri
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
    selected_columns,
    split_by_group,
    summed_columns,
    union_target,
    unknown_schema_error,
)
from kernel.constants import BACKEND_SPARK
from kernel.errors import InvalidArgument, NotFound, WeftError

if TYPE_CHECKING:
    from collections.abc import Iterable

T = TypeVar("T")
Stage = Callable[[pa.Table], pa.Table]

# Spark's names for the join kinds of the Table API.
_SPARK_JOIN: dict[str, str] = {"inner": "inner", "left": "left", "right": "right", "outer": "full"}

# Types Spark cannot hold, mapped to the nearest type it can.
_SPARK_FRIENDLY: dict[pa.DataType, pa.DataType] = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.int64(),
    pa.float16(): pa.float32(),
    pa.large_string(): pa.string(),
    pa.large_binary(): pa.binary(),
}

# How a worker's Weft error shows in the Python traceback Spark hands back.
_WORKER_ERROR = re.compile(r"kernel\.errors\.(\w+): (.*)")

# `group_blocks`: the most partitions a grouping is shuffled into (more groups share them).
_GROUP_PARTITIONS_MAX = 4096
_GROUP_KEY_COLUMN = "__weft_group_key"

# The per-partition partial results of `reduce` go from a Python worker to this driver,
# inside one Spark application, with Spark's own serializer (the one that ships `fn`).
_PARTIAL_CODEC = CloudPickleSerializer()


def _col(name: str) -> Column:
    """A column by its literal name (dots and backticks in names are not parsed)."""
    return F.col("`" + name.replace("`", "``") + "`")


def spark_schemas(schema: pa.Schema) -> tuple[StructType, pa.Schema]:
    """The Spark schema for an Arrow schema and the Arrow schema Spark's batches will have."""
    friendly = pa.schema([pa.field(f.name, _SPARK_FRIENDLY.get(f.type, f.type)) for f in schema])
    try:
        struct = from_arrow_schema(friendly)
    except Exception as exc:
        raise InvalidArgument(f"a column type Spark cannot hold, in [{friendly}]: {exc}") from exc
    return struct, to_arrow_schema(struct)


@contextlib.contextmanager
def worker_errors() -> Iterator[None]:
    """Re-raise a Weft error thrown inside a Spark worker as the same class, with its message."""
    try:
        yield
    except WeftError:
        raise
    except Exception as exc:
        found = _WORKER_ERROR.findall(str(exc))
        if found:
            name, message = found[-1]
            kind = getattr(errors, name, None)
            if isinstance(kind, type) and issubclass(kind, WeftError):
                raise kind(message.strip()) from exc
        raise


def _blocks(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    for batch in batches:
        if batch.num_rows:
            yield pa.Table.from_batches([batch])


def _map_stage(fn: BlockFn, id_column: str, schema: pa.Schema, block: pa.Table) -> pa.Table:
    return conform(checked_block(fn(block), id_column, "map_partitions"), schema, "map_partitions")


def _run_stages(stages: Sequence[Stage], batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """The blocks of a partition after every pending stage; emptied blocks stop early."""
    for block in _blocks(batches):
        for stage in stages:
            block = stage(block)
            if not block.num_rows:
                break
        else:
            yield block


def _stage_batches(stages: Sequence[Stage], batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for block in _run_stages(stages, batches):
        yield from block.to_batches()


def _reduce_batches(
    stages: Sequence[Stage],
    map_fn: Callable[[pa.Table], T],
    reduce_fn: Callable[[T, T], T],
    batches: Iterable[pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    values = [map_fn(block) for block in _run_stages(stages, batches)]
    if values:
        partial = functools.reduce(reduce_fn, values)
        blob = pa.array([_PARTIAL_CODEC.dumps(partial)], pa.binary())
        yield pa.RecordBatch.from_arrays([blob], names=[REDUCE_VALUE_COLUMN])


def _ipc_batches(stages: Sequence[Stage], batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Each block of a partition as one Arrow IPC stream in a binary cell (for `iter_blocks`)."""
    for block in _run_stages(stages, batches):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, block.schema) as writer:
            writer.write_table(block)
        blob = pa.array([sink.getvalue().to_pybytes()], pa.binary())
        yield pa.RecordBatch.from_arrays([blob], names=[REDUCE_VALUE_COLUMN])


def _ipc_bytes(block: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, block.schema) as writer:
        writer.write_table(block)
    return bytes(sink.getvalue().to_pybytes())


def _group_pieces(
    stages: Sequence[Stage], key_fn: GroupFn, groups: int, spread: int, batches: Iterable[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """A partition's rows split by group, each group's rows cut in `spread` pieces: one
    (group * spread + piece, Arrow IPC stream) row a piece."""
    blocks = list(_run_stages(stages, batches))
    if not blocks:
        return
    for group, rows in split_by_group(key_fn, groups, pa.concat_tables(blocks)):
        size = -(-rows.num_rows // spread)
        for piece, start in enumerate(range(0, rows.num_rows, size)):
            keys = pa.array([group * spread + piece], pa.int64())
            blob = pa.array([_ipc_bytes(rows.slice(start, size))], pa.binary())
            yield pa.RecordBatch.from_arrays([keys, blob], names=[_GROUP_KEY_COLUMN, REDUCE_VALUE_COLUMN])


def _key_value(row: Any) -> tuple[int, bytes]:
    return int(row[0]), bytes(row[1])


def _partition_of_key(key: int) -> int:
    return key  # Spark takes it modulo the partition count


def _reduce_pieces(
    group: int, spread: int, schema: pa.Schema, map_fn: Callable[[pa.Table], T], reduce_fn: Callable[[T, T], T],
    pairs: Iterable[tuple[int, bytes]],
) -> list[T]:
    values = [map_fn(conform(pa.ipc.open_stream(pa.py_buffer(blob)).read_all(), schema, "group_blocks"))
              for key, blob in pairs if key // spread == group]
    return [functools.reduce(reduce_fn, values)] if values else []


class SparkGroups(BlockGroups):
    """SPARK groups: an RDD of (key, Arrow IPC piece) shuffled so that a group's pieces sit
    in `spread` partitions of their own (shared with other groups only past
    `_GROUP_PARTITIONS_MAX` partitions); a group's reduce is a job on those partitions."""

    def __init__(self, session: SparkComputingSession, schema: pa.Schema, groups: int, spread: int,
                 rdd: Any) -> None:
        self._session = session
        self.schema = schema
        self.groups = groups
        self._spread = spread
        self._rdd = rdd

    def reduce(self, group: int, map_fn: Callable[[pa.Table], T], reduce_fn: Callable[[T, T], T]) -> T:
        if self._rdd is None:
            raise errors.FailedPrecondition("group_blocks: the groups were released")
        if not 0 <= group < self.groups:
            raise InvalidArgument(f"group_blocks: no group {group} of {self.groups}")
        partitions = int(self._rdd.getNumPartitions())
        chosen = sorted({(group * self._spread + piece) % partitions for piece in range(self._spread)})
        fn = functools.partial(_reduce_pieces, group, self._spread, self.schema, map_fn, reduce_fn)
        with worker_errors():
            values: list[T] = self._session.spark.sparkContext.runJob(self._rdd, fn, chosen)
        if not values:
            return map_fn(self.schema.empty_table())
        return functools.reduce(reduce_fn, values)

    def release(self) -> None:
        self._rdd = None  # Spark removes the shuffle's files once the RDD is gone


class SparkComputingSession(ComputingSession):
    """Computing on a SparkSession; tables are DataFrames."""

    backend = BACKEND_SPARK

    def __init__(self, spark: SparkSession, owned: bool) -> None:
        self.spark = spark
        self._owned = owned
        self._watch: spark_watch.ExecutorWatch | None = None

    @classmethod
    def create(
        cls, spark: SparkSession | None = None, master: str | None = None, config: dict[str, str] | None = None
    ) -> SparkComputingSession:
        """Wrap `spark`, or the active SparkSession, or start one (see `spark_session`)."""
        if spark is not None:
            return cls(spark, owned=False)
        active = SparkSession.getActiveSession()
        if active is not None:
            return cls(active, owned=False)
        builder = SparkSession.builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
        if "PYSPARK_GATEWAY_PORT" not in os.environ:  # under spark-submit the app keeps the name it was given
            builder = builder.appName(SPARK_APP_NAME)
        for key, value in (config or {}).items():
            builder = builder.config(key, value)
        # Under spark-submit the launcher already chose the master; do not override it.
        if master is not None or "PYSPARK_GATEWAY_PORT" not in os.environ:
            builder = builder.master(master or DEFAULT_SPARK_MASTER)
            spark_watch.check_master(master or DEFAULT_SPARK_MASTER)
        else:
            from pyspark import SparkConf, SparkContext

            SparkContext._ensure_initialized()  # the JVM spark-submit started: its conf holds the master
            spark_watch.check_master(SparkConf().get("spark.master", DEFAULT_SPARK_MASTER) or "")
        session = builder.getOrCreate()
        context = session.sparkContext
        if str(context.master).startswith("local") and "PYSPARK_PYTHON" not in os.environ:
            # Local workers run this interpreter, so they see the same packages as the driver.
            context.pythonExec = sys.executable
        created = cls(session, owned=True)
        created._watch = spark_watch.watch(context)
        return created

    def watch_again(self) -> None:
        """Watch the application anew with the wait and member in the environment now.

        A warm worker builds its session before it knows its task; once the task's
        environment is applied, the watch must name that task's member and wait.
        """
        if self._watch is not None:
            self._watch.stop()
        self._watch = spark_watch.watch(self.spark.sparkContext)

    def is_stopped(self) -> bool:
        """Whether the application has ended (stopped here, or removed by its master)."""
        return bool(self.spark.sparkContext._jsc.sc().isStopped())

    def from_arrow(self, data: pa.Table, id_column: str, num_partitions: int | None = None) -> Table:
        if not isinstance(data, pa.Table):
            raise InvalidArgument(f"from_arrow: data must be a pyarrow.Table, got {type(data).__name__}")
        check_id_column(data.schema.names, id_column, "the data")
        check_partitions(num_partitions)
        struct, arrow_schema = spark_schemas(data.schema)
        frame = self.spark.createDataFrame(data.cast(arrow_schema), schema=struct)
        if num_partitions is not None:
            frame = frame.repartition(num_partitions)
        return SparkTable(self, frame, id_column)

    def read_parquet(self, path: str, id_column: str) -> Table:
        try:
            frame = self.spark.read.parquet(to_uri(path))
        except Exception as exc:
            if "PATH_NOT_FOUND" in str(exc):
                raise NotFound(f"read_parquet: nothing at {path}") from exc
            raise
        check_id_column(frame.schema.names, id_column, f"the Parquet data at {path}")
        return SparkTable(self, frame, id_column)

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        if self._owned:
            self.spark.stop()
            self._owned = False


class SparkTable(Table):
    """A SPARK table: a DataFrame, the name of its id column, and pending block functions.

    Consecutive `map_partitions` / `map` / `filter` calls are not turned into DataFrames
    one by one: they wait as *stages* and run together in one `mapInArrow` pass when the
    DataFrame is needed, and `reduce` runs them in the same pass as its `map_fn`, so
    map + reduce moves the data from the JVM to Python once and never back.
    """

    backend = BACKEND_SPARK

    def __init__(
        self,
        session: SparkComputingSession,
        source: DataFrame,
        id_column: str,
        stages: tuple[Stage, ...] = (),
        schema: pa.Schema | None = None,
    ) -> None:
        self._session = session
        self._source = source
        self._stages = stages
        self.id_column = id_column
        self._schema = schema
        self._frame: DataFrame | None = None if stages else source

    @property
    def frame(self) -> DataFrame:
        """The table as a DataFrame (pending stages applied in one mapInArrow)."""
        if self._frame is None:
            struct = spark_schemas(self.schema)[0]
            self._frame = self._source.mapInArrow(functools.partial(_stage_batches, self._stages), struct)
        return self._frame

    @property
    def schema(self) -> pa.Schema:
        if self._schema is None:
            self._schema = to_arrow_schema(self._source.schema)
        return self._schema

    @property
    def num_partitions(self) -> int:
        return int(self._source.rdd.getNumPartitions())

    @property
    def session(self) -> SparkComputingSession:
        return self._session

    def _derive(self, frame: DataFrame) -> SparkTable:
        return SparkTable(self._session, frame, self.id_column)

    def _then(self, stage: Stage, schema: pa.Schema) -> SparkTable:
        return SparkTable(self._session, self._source, self.id_column, (*self._stages, stage), schema)

    def _output_schema(self, fn: BlockFn, what: str) -> pa.Schema:
        found = infer_from_empty(fn, self.schema, self.id_column, what)
        if found is not None:
            return found
        with worker_errors():
            first = self.frame.limit(INFER_SAMPLE_ROWS).toArrow()
        if first.num_rows == 0:
            raise unknown_schema_error(fn, self.schema, what)
        found = checked_block(fn(conform(first, self.schema, what)), self.id_column, what).schema
        if has_null_type(found):
            raise InvalidArgument(f"{what}: the output has a column of null type; pass schema=")
        return found

    def map_partitions(self, fn: BlockFn, schema: pa.Schema | None = None) -> Table:
        arrow_schema = spark_schemas(schema or self._output_schema(fn, "map_partitions"))[1]
        return self._then(functools.partial(_map_stage, fn, self.id_column, arrow_schema), arrow_schema)

    def filter(self, fn: MaskFn) -> Table:
        return self._then(functools.partial(apply_filter, fn), self.schema)

    def reduce(self, map_fn: Callable[[pa.Table], T], reduce_fn: Callable[[T, T], T]) -> T:
        struct = StructType([StructField(REDUCE_VALUE_COLUMN, BinaryType(), False)])
        func = functools.partial(_reduce_batches, self._stages, map_fn, reduce_fn)
        with worker_errors():
            partials = self._source.mapInArrow(func, struct).toArrow()
        values: list[T] = [_PARTIAL_CODEC.loads(blob) for blob in partials.column(0).to_pylist()]
        if not values:
            return map_fn(self.schema.empty_table())
        return functools.reduce(reduce_fn, values)

    def join(self, other: Table, how: str = "inner", rsuffix: str | None = None) -> Table:
        renames = join_renames(self, other, how, rsuffix)
        if not isinstance(other, SparkTable):
            raise InvalidArgument("join: the other table is not a SPARK table")
        right = other.frame
        for old, new in renames.items():
            right = right.withColumnRenamed(old, new)
        joined = self.frame.join(right, on=self.id_column, how=_SPARK_JOIN[how])
        order = self.frame.columns + [name for name in right.columns if name != self.id_column]
        return self._derive(joined.select(*[_col(name) for name in order]))

    def sample(self, fraction: float, seed: int) -> Table:
        check_fraction(fraction)
        return self._derive(self.frame.sample(withReplacement=False, fraction=fraction, seed=seed))

    def union(self, other: Table) -> Table:
        order = union_target(self, other)
        if not isinstance(other, SparkTable):
            raise InvalidArgument("union: the other table is not a SPARK table")
        right = other.frame
        if other.id_column != self.id_column:
            right = right.withColumnRenamed(other.id_column, self.id_column)
        types = {field.name: field.dataType for field in self.frame.schema.fields}
        right = right.select(*[_col(name).cast(types[name]).alias(name) for name in order])
        return self._derive(self.frame.union(right))

    def select(self, columns: Sequence[str]) -> Table:
        chosen = selected_columns(self, columns)
        return self._derive(self.frame.select(*[_col(name) for name in chosen]))

    def repartition(self, num_partitions: int) -> Table:
        check_partitions(num_partitions)
        return self._derive(self.frame.repartition(num_partitions))

    def cache(self) -> Table:
        return self._derive(self.frame.cache())

    def unpersist(self) -> None:
        self.frame.unpersist()

    def count(self) -> int:
        with worker_errors():
            return int(self.frame.count())

    def collect(self) -> pa.Table:
        with worker_errors():
            data = self.frame.toArrow()
        return conform(data, self.schema, "collect")

    def iter_blocks(self) -> Iterator[pa.Table]:
        struct = StructType([StructField(REDUCE_VALUE_COLUMN, BinaryType(), False)])
        blobs = self._source.mapInArrow(functools.partial(_ipc_batches, self._stages), struct)
        with worker_errors():
            # One partition at a time reaches this process (no prefetch of the next one).
            for row in blobs.rdd.toLocalIterator(prefetchPartitions=False):
                block = pa.ipc.open_stream(pa.py_buffer(row[0])).read_all()
                yield conform(block, self.schema, "iter_blocks")

    def sum_by_id(self, columns: Sequence[str]) -> Table:
        chosen = summed_columns(self, columns)
        return self._derive(self.frame.groupBy(_col(self.id_column)).agg(*[F.sum(_col(c)).alias(c) for c in chosen]))

    def sort_by(self, column: str) -> Table:
        check_id_column(self.schema.names, column, "the table (sort_by)")
        return self._derive(self.frame.orderBy(_col(column)))

    def with_id_column(self, column: str) -> Table:
        check_id_column(self.schema.names, column, "the table (with_id_column)")
        return SparkTable(self._session, self._source, column, self._stages, self._schema)

    def save(self, path: str) -> None:
        with worker_errors():
            self.frame.write.mode("overwrite").parquet(to_uri(path))

    def duplicate_ids(self, limit: int = 5) -> list[Any]:
        counted = self.frame.groupBy(_col(self.id_column)).agg(F.count(F.lit(1)).alias("__weft_rows"))
        repeated = counted.where(F.col("__weft_rows") > 1).limit(limit).select(_col(self.id_column))
        with worker_errors():
            return list(repeated.toArrow().column(0).to_pylist())

    def group_blocks(self, key_fn: GroupFn, groups: int) -> BlockGroups:
        check_groups(groups)
        context = self._session.spark.sparkContext
        spread = max(1, min(int(context.defaultParallelism), _GROUP_PARTITIONS_MAX // groups))
        struct = StructType([
            StructField(_GROUP_KEY_COLUMN, LongType(), False), StructField(REDUCE_VALUE_COLUMN, BinaryType(), False),
        ])
        pieces = self._source.mapInArrow(functools.partial(_group_pieces, self._stages, key_fn, groups, spread), struct)
        partitions = min(groups * spread, _GROUP_PARTITIONS_MAX)
        rdd = pieces.rdd.map(_key_value).partitionBy(partitions, _partition_of_key)
        return SparkGroups(self._session, self.schema, groups, spread, rdd)
