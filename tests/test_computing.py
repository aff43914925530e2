"""The Table API, one suite run on both backends (LOCAL threads and SPARK local[2])."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from operator import add
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from kernel.computing import (
    ComputingSession,
    Table,
    local_session,
    normalize_backend,
    session_for_backend,
    spark_session,
)
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound

BACKENDS = ["LOCAL", "SPARK"]


@pytest.fixture(params=BACKENDS)
def session(request: pytest.FixtureRequest) -> Iterator[ComputingSession]:
    if request.param == "LOCAL":
        local = local_session(num_workers=2, num_partitions=3)
        yield local
        local.stop()
    else:
        yield spark_session(spark=request.getfixturevalue("spark"))


def people_data(rows: int = 40, start: int = 0) -> pa.Table:
    ids = [f"p{i:03d}" for i in range(start, start + rows)]
    return pa.table({
        "id": pa.array(ids, pa.string()),
        "x": pa.array(np.arange(start, start + rows, dtype=np.float64) / 2),
        "k": pa.array(np.arange(start, start + rows, dtype=np.int64) % 3),
        "name": pa.array([f"n{i}" for i in range(start, start + rows)], pa.string()),
    })


@pytest.fixture()
def people(session: ComputingSession) -> Table:
    return session.from_arrow(people_data(), "id", num_partitions=3)


def by_id(table: Table | pa.Table, id_column: str = "id") -> pd.DataFrame:
    data = table if isinstance(table, pa.Table) else table.collect()
    return data.to_pandas().sort_values(id_column, kind="stable").reset_index(drop=True)


@pytest.fixture()
def total_x() -> Callable[[pa.Table], float]:
    # Defined inside a fixture: Spark workers cannot import this test module, so the
    # function must travel by value.
    def total(block: pa.Table) -> float:
        return float(np.sum(block.column("x").to_numpy()))

    return total


# ---- building and reading back -----------------------------------------------------------


def test_from_arrow_keeps_rows_schema_and_columns(session: ComputingSession, people: Table) -> None:
    # Prepare: the fixture built a 40-row table in 3 partitions
    # Execute
    collected = people.collect()
    # Assert
    assert people.backend == session.backend
    assert people.count() == 40
    assert people.num_partitions == 3
    assert people.schema.names == ["id", "x", "k", "name"]
    assert people.column_names == ["id", "x", "k", "name"]
    assert people.feature_names == ["x", "k", "name"]
    assert people.schema.field("k").type == pa.int64()
    pd.testing.assert_frame_equal(by_id(collected), by_id(people_data()))


def test_from_pandas_round_trips_through_to_pandas(session: ComputingSession) -> None:
    # Prepare
    frame = pd.DataFrame({"uid": [3, 1, 2], "v": [0.5, 1.5, 2.5]})
    # Execute
    table = session.from_pandas(frame, "uid")
    # Assert
    assert table.id_column == "uid"
    back = table.to_pandas().sort_values("uid").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, frame.sort_values("uid").reset_index(drop=True))


def test_from_arrow_without_the_id_column_names_it(session: ComputingSession) -> None:
    with pytest.raises(InvalidArgument, match="'uid'.*columns are: id, x, k, name"):
        session.from_arrow(people_data(), "uid")


def test_save_then_read_parquet_round_trips(session: ComputingSession, people: Table, tmp_path: Path) -> None:
    # Prepare
    target = tmp_path / "people"
    # Execute: save twice to check the second replaces the first
    people.save(str(target))
    people.filter(lambda block: block.column("k").to_numpy() == 0).save(str(target))
    back = session.read_parquet(target.as_uri(), "id")
    # Assert
    assert back.count() == 14
    assert back.schema.names == ["id", "x", "k", "name"]
    assert set(back.collect().column("k").to_pylist()) == {0}


def test_read_parquet_refuses_a_missing_path_and_a_missing_id(session: ComputingSession, people: Table, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="nothing at"):
        session.read_parquet(str(tmp_path / "absent"), "id")
    people.save(str(tmp_path / "p"))
    with pytest.raises(InvalidArgument, match="'uid'"):
        session.read_parquet(str(tmp_path / "p"), "uid")


# ---- map and map_partitions -----------------------------------------------------------


def test_map_partitions_same_schema(people: Table) -> None:
    # Execute
    doubled = people.map_partitions(lambda block: block.set_column(1, "x", pc.multiply(block["x"], 2.0)))
    # Assert
    assert doubled.schema == people.schema
    np.testing.assert_allclose(by_id(doubled)["x"], by_id(people)["x"] * 2)


def test_map_partitions_can_change_the_schema(people: Table) -> None:
    # Prepare: drop a column, change a type, add an integer column
    def reshape(block: pa.Table) -> pa.Table:
        return pa.table({
            "id": block["id"],
            "k": block["k"].cast(pa.float64()),
            "size": pa.array(np.full(block.num_rows, 7, dtype=np.int32)),
        })

    # Execute
    reshaped = people.map_partitions(reshape)
    # Assert
    assert reshaped.schema == pa.schema([("id", pa.string()), ("k", pa.float64()), ("size", pa.int32())])
    frame = by_id(reshaped)
    assert frame["size"].tolist() == [7] * 40
    assert frame["k"].dtype == np.float64


def test_map_partitions_that_drops_the_id_is_refused(people: Table) -> None:
    with pytest.raises(InvalidArgument, match="id column 'id'"):
        people.map_partitions(lambda block: block.drop_columns(["id"])).count()


def test_map_partitions_with_explicit_schema(people: Table) -> None:
    # Prepare: a function whose empty-block answer would not say the type
    schema = pa.schema([("id", pa.string()), ("tag", pa.string())])

    def tag(block: pa.Table) -> pa.Table:
        return pa.table({"id": block["id"], "tag": pa.array([f"t{v}" for v in block["k"].to_pylist()])})

    # Execute
    tagged = people.map_partitions(tag, schema=schema)
    # Assert
    assert tagged.schema == schema
    assert set(by_id(tagged)["tag"]) == {"t0", "t1", "t2"}


def test_map_numpy_adds_columns_and_keeps_ids(people: Table) -> None:
    # Prepare: no id in the output, a new float column and a new text column
    def features(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {
            "x": columns["x"],
            "x2": columns["x"] ** 2,
            "label": np.array([f"k{v}" for v in columns["k"]], dtype=object),
        }

    # Execute
    mapped = people.map(features)
    # Assert
    assert mapped.schema == pa.schema([("id", pa.string()), ("x", pa.float64()), ("x2", pa.float64()), ("label", pa.string())])
    frame = by_id(mapped)
    expected = by_id(people)
    assert frame["id"].tolist() == expected["id"].tolist()
    np.testing.assert_allclose(frame["x2"], expected["x"] ** 2)
    assert frame["label"].tolist() == [f"k{v}" for v in expected["k"]]


def test_map_that_changes_row_count_without_ids_is_refused(people: Table) -> None:
    with pytest.raises(InvalidArgument, match="changed the number of rows"):
        people.map(lambda columns: {"x": columns["x"][:1]}).count()


# ---- filter, reduce, sample ---------------------------------------------------------------


def test_filter_keeps_matching_rows(people: Table) -> None:
    # Execute
    kept = people.filter(lambda block: block.column("x").to_numpy() >= 10.0)
    # Assert
    assert kept.count() == 20
    assert min(kept.collect().column("x").to_pylist()) == 10.0


def test_filter_with_a_bad_mask_is_refused(people: Table) -> None:
    with pytest.raises(InvalidArgument, match="boolean array"):
        people.filter(lambda block: np.ones(block.num_rows)).count()


def test_reduce_sums_every_block(people: Table, total_x: Callable[[pa.Table], float]) -> None:
    # Execute
    total = people.reduce(total_x, add)
    by_k = people.reduce(lambda block: np.bincount(block.column("k").to_numpy(), minlength=3), add)
    # Assert
    assert total == pytest.approx(sum(i / 2 for i in range(40)))
    assert by_k.tolist() == [14, 13, 13]


def test_sample_is_seeded_and_bounded(people: Table) -> None:
    # Execute
    first = set(people.sample(0.5, seed=7).collect().column("id").to_pylist())
    again = set(people.sample(0.5, seed=7).collect().column("id").to_pylist())
    # Assert
    assert first == again
    assert first <= set(people.collect().column("id").to_pylist())
    assert 5 <= len(first) <= 35
    assert people.sample(0.0, seed=1).count() == 0
    assert people.sample(1.0, seed=1).count() == 40
    with pytest.raises(InvalidArgument, match="fraction"):
        people.sample(1.5, seed=1)


# ---- join, union, select ----------------------------------------------------------------


@pytest.fixture()
def scores(session: ComputingSession) -> Table:
    # ids p030..p049: ten overlap with people (p030..p039), ten do not; id column named differently
    data = pa.table({
        "uid": [f"p{i:03d}" for i in range(30, 50)],
        "score": np.arange(20, dtype=np.float64),
    })
    return session.from_arrow(data, "uid", num_partitions=2)


@pytest.mark.parametrize(
    ("how", "rows", "with_score", "with_x"),
    [("inner", 10, 10, 10), ("left", 40, 10, 40), ("right", 20, 20, 10), ("outer", 50, 20, 40)],
)
def test_join_partial_overlap(people: Table, scores: Table, how: str, rows: int, with_score: int, with_x: int) -> None:
    # Execute
    joined = people.join(scores, how=how)
    frame = by_id(joined)
    # Assert
    assert joined.id_column == "id"
    assert joined.schema.names == ["id", "x", "k", "name", "score"]
    assert len(frame) == rows
    assert frame["id"].notna().all() and frame["id"].is_unique
    assert frame["score"].notna().sum() == with_score
    assert frame["x"].notna().sum() == with_x
    row = frame[frame["id"] == "p035"].iloc[0]
    assert (row["x"], row["score"]) == (17.5, 5.0)


def test_join_column_clash_is_refused_unless_suffixed(session: ComputingSession, people: Table) -> None:
    # Prepare
    other = session.from_arrow(pa.table({"id": ["p001", "p002"], "x": [9.0, 8.0]}), "id")
    # Execute / Assert
    with pytest.raises(InvalidArgument, match="'x'.*rsuffix"):
        people.join(other)
    joined = by_id(people.join(other, rsuffix="_other"))
    assert joined.columns.tolist() == ["id", "x", "k", "name", "x_other"]
    assert joined["x_other"].tolist() == [9.0, 8.0]


def test_join_refuses_bad_kind_and_id_type_mismatch(session: ComputingSession, people: Table) -> None:
    numeric = session.from_arrow(pa.table({"id": pa.array([1, 2], pa.int64()), "v": [1.0, 2.0]}), "id")
    with pytest.raises(InvalidArgument, match="how must be one of"):
        people.join(people.select(["id"]), how="cross")
    with pytest.raises(InvalidArgument, match="is string but .* is int64"):
        people.join(numeric)


def test_union_reorders_and_casts_the_other_table(session: ComputingSession, people: Table) -> None:
    # Prepare: same columns in another order, k as int32, id named differently
    more = people_data(rows=5, start=100)
    other = session.from_arrow(
        pa.table({"name": more["name"], "k": more["k"].cast(pa.int32()), "key": more["id"], "x": more["x"]}), "key"
    )
    # Execute
    both = people.union(other)
    # Assert
    assert both.count() == 45
    assert both.schema == people.schema
    assert "p104" in both.collect().column("id").to_pylist()


def test_union_of_different_columns_is_refused(people: Table) -> None:
    with pytest.raises(InvalidArgument, match="only in this table: \\['k', 'name'\\]"):
        people.union(people.select(["x"]))


def test_select_keeps_the_id_and_drop_refuses_it(people: Table) -> None:
    # Execute
    chosen = people.select(["name", "x"])
    # Assert
    assert chosen.schema.names == ["id", "name", "x"]
    assert people.drop(["name"]).schema.names == ["id", "x", "k"]
    with pytest.raises(InvalidArgument, match="no column named 'nope'"):
        people.select(["nope"])
    with pytest.raises(InvalidArgument, match="cannot be dropped"):
        people.drop(["id"])


def test_repartition_cache_and_duplicate_ids(people: Table) -> None:
    # Execute
    spread = people.repartition(2).cache()
    doubled = people.union(people.filter(lambda block: block.column("x").to_numpy() < 1.0))
    # Assert
    assert spread.num_partitions == 2
    assert spread.count() == 40
    spread.unpersist()  # freed: the rows are computed again when read
    assert spread.count() == 40
    assert people.duplicate_ids() == []
    assert sorted(doubled.duplicate_ids()) == ["p000", "p001"]


def test_iter_blocks_streams_every_row_once(people: Table) -> None:
    # Execute: a pending block function runs in the same pass
    blocks = list(people.map(lambda cols: {"x2": cols["x"] * 2}).iter_blocks())
    # Assert
    assert blocks and all(block.num_rows for block in blocks)
    data = pa.concat_tables(blocks)
    assert data.schema.names == ["id", "x2"]
    assert sorted(data.column("id").to_pylist()) == [f"p{i:03d}" for i in range(40)]
    assert data.column("x2").to_pylist() == [2 * x for x in by_id(people).set_index("id").loc[
        data.column("id").to_pylist(), "x"]]


def test_sort_by_orders_across_partitions_and_with_id_column_rekeys(people: Table) -> None:
    # Execute: order by a non-id column, then key the table by it
    ordered = people.map(lambda cols: {"neg": -cols["x"]}).sort_by("neg")
    names = [name for block in ordered.iter_blocks() for name in block.column("id").to_pylist()]
    rekeyed = people.select(["id", "k"]).with_id_column("k")
    # Assert: iter_blocks yields the global order, not per-partition runs
    assert names == [f"p{i:03d}" for i in reversed(range(40))]
    assert rekeyed.id_column == "k" and rekeyed.count() == 40
    assert sorted(rekeyed.duplicate_ids()) == [0, 1, 2]
    with pytest.raises(InvalidArgument, match="nope"):
        people.with_id_column("nope")


def test_sum_by_id_sums_each_ids_rows_across_partitions(people: Table) -> None:
    # Prepare: key by k (0, 1, 2 over 40 rows in 3 partitions)
    by_k = people.select(["id", "k", "x", "name"]).with_id_column("k")

    # Execute
    summed = by_k.sum_by_id(["x"])

    # Assert: one row per k with the sum of its x; names and types refused clearly
    frame = by_id(summed, "k")
    expected = {k: sum(i / 2 for i in range(40) if i % 3 == k) for k in range(3)}
    assert frame["k"].tolist() == [0, 1, 2] and list(frame.columns) == ["k", "x"]
    assert frame["x"].tolist() == [expected[0], expected[1], expected[2]]
    for bad, message in ((["name"], "not a number"), (["nope"], "no column"), (["k"], "id column")):
        with pytest.raises(InvalidArgument, match=message):
            by_k.sum_by_id(bad)


# ---- empty tables ----------------------------------------------------------------------


@pytest.fixture()
def empty(session: ComputingSession) -> Table:
    return session.from_arrow(people_data(rows=0), "id")


def test_empty_table_operations(
    empty: Table, people: Table, tmp_path: Path, total_x: Callable[[pa.Table], float]
) -> None:
    # Execute / Assert: every operation works and keeps the schema
    assert empty.count() == 0
    assert empty.collect().schema == people.schema
    assert empty.map(lambda c: {"x": c["x"] + 1.0}).schema.names == ["id", "x"]
    assert empty.filter(lambda block: np.ones(block.num_rows, dtype=bool)).count() == 0
    assert empty.reduce(total_x, add) == 0.0
    assert empty.sample(0.5, seed=1).count() == 0
    assert people.join(empty.select(["id"]), how="inner").count() == 0
    assert people.join(empty.select(["id"]), how="left").count() == 40
    assert empty.union(people).count() == 40
    empty.save(str(tmp_path / "empty"))
    assert empty.session.read_parquet(str(tmp_path / "empty"), "id").count() == 0


def test_filter_to_empty_then_reduce_and_map(people: Table, total_x: Callable[[pa.Table], float]) -> None:
    # Prepare
    nothing = people.filter(lambda block: np.zeros(block.num_rows, dtype=bool))
    # Execute
    total = nothing.reduce(total_x, add)
    mapped = nothing.map(lambda c: {"y": c["x"] * 3})
    # Assert
    assert total == 0.0
    assert mapped.count() == 0
    assert mapped.schema == pa.schema([("id", pa.string()), ("y", pa.float64())])


def test_empty_table_with_unknowable_schema_asks_for_it(empty: Table) -> None:
    def text(block: pa.Table) -> pa.Table:
        return pa.table({"id": block["id"], "t": pa.array([None] * block.num_rows)})

    with pytest.raises(InvalidArgument, match="schema="):
        empty.map_partitions(text).count()


# ---- sessions ------------------------------------------------------------------------------


def test_backend_names_and_codes() -> None:
    assert normalize_backend(0) == "LOCAL"
    assert normalize_backend("1") == "SPARK"
    assert normalize_backend("spark") == "SPARK"
    with pytest.raises(InvalidArgument, match="backend"):
        normalize_backend("DASK")
    with pytest.raises(InvalidArgument, match="backend code"):
        normalize_backend(7)
    with session_for_backend("LOCAL", num_workers=1) as local:
        assert local.backend == "LOCAL"


def test_local_runs_blocks_on_several_threads() -> None:
    # Prepare: each block waits for the other at a barrier; run one at a time, it would time out
    barrier = threading.Barrier(2, timeout=10)
    names: set[str] = set()

    def meet(block: pa.Table) -> pa.Table:
        if block.num_rows:  # the schema probe calls it once with an empty block
            names.add(threading.current_thread().name)
            barrier.wait()
        return block

    with local_session(num_workers=2) as local:
        table = local.from_arrow(people_data(), "id", num_partitions=2)
        # Execute
        table.map_partitions(meet)
    # Assert
    assert len(names) == 2


def test_stopped_local_session_refuses_work() -> None:
    local = local_session(num_workers=2)
    table = local.from_arrow(people_data(), "id", num_partitions=2)
    local.stop()
    with pytest.raises(FailedPrecondition, match="stopped"):
        table.filter(lambda block: np.ones(block.num_rows, dtype=bool))


def test_spark_session_reuses_the_active_session_and_leaves_it_running(spark: object) -> None:
    # Prepare: the suite's SparkSession is active
    # Execute
    wrapped = session_for_backend(1)
    wrapped.stop()
    # Assert: still usable after stop(), because the wrapper did not create it
    assert wrapped.backend == "SPARK"
    assert wrapped.from_arrow(people_data(rows=3), "id").count() == 3


def test_chained_block_functions_then_reduce(people: Table) -> None:
    # Prepare: map -> filter (empties some blocks) -> map, then reduce over the result
    chained = (
        people.map(lambda c: {"x": c["x"] * 2.0, "k": c["k"]})
        .filter(lambda block: block.column("k").to_numpy() == 1)
        .map(lambda c: {"y": c["x"] + 1.0})
    )
    # Execute
    total = chained.reduce(lambda block: float(np.sum(block.column("y").to_numpy())), add)
    # Assert
    expected = sum(2.0 * (i / 2) + 1.0 for i in range(40) if i % 3 == 1)
    assert total == pytest.approx(expected)
    assert chained.count() == 13
    assert chained.schema.names == ["id", "y"]


# ---- grouping rows to read one group at a time -----------------------------------------


@pytest.fixture()
def group_of_k() -> Callable[[pa.Table], np.ndarray]:
    # Defined inside a fixture so that Spark workers get it by value (see total_x).
    def group(block: pa.Table) -> np.ndarray:
        return np.asarray(block.column("k").to_numpy(), dtype=np.int64)

    return group


def test_group_blocks_reads_one_group_at_a_time(people: Table, group_of_k: Callable[[pa.Table], np.ndarray]) -> None:
    # Prepare: 40 rows, k = i mod 3; group 3 of 4 holds no row.
    grouped = people.group_blocks(group_of_k, 4)

    # Execute
    ids = [sorted(grouped.reduce(g, lambda block: block.column("id").to_pylist(), add)) for g in range(4)]
    rows = [grouped.reduce(g, lambda block: block.num_rows, add) for g in range(4)]

    # Assert: every row in its group, the empty group reduces an empty block.
    assert ids[:3] == [[f"p{i:03d}" for i in range(40) if i % 3 == k] for k in range(3)]
    assert ids[3] == [] and rows == [14, 13, 13, 0]
    with pytest.raises(InvalidArgument, match="no group 4"):
        grouped.reduce(4, lambda block: block.num_rows, add)
    grouped.release()
    with pytest.raises(FailedPrecondition, match="released"):
        grouped.reduce(0, lambda block: block.num_rows, add)


def test_group_blocks_keeps_pending_maps_and_refuses_bad_numbers(
    people: Table, group_of_k: Callable[[pa.Table], np.ndarray],
) -> None:
    # Prepare
    doubled = people.map(lambda cols: {**cols, "x": cols["x"] * 2})

    # Execute
    totals = doubled.group_blocks(group_of_k, 3)

    # Assert (LOCAL groups at once, SPARK at the first reduce)
    assert totals.reduce(1, lambda block: float(np.sum(block.column("x").to_numpy())), add) == \
        pytest.approx(sum(float(i) for i in range(40) if i % 3 == 1))
    with pytest.raises(InvalidArgument, match="outside"):
        bad = people.group_blocks(lambda block: np.full(block.num_rows, 3, dtype=np.int64), 3)
        bad.reduce(0, lambda block: block.num_rows, add)
    with pytest.raises(InvalidArgument, match="at least 1"):
        people.group_blocks(group_of_k, 0)


def test_local_group_reduce_sees_only_its_rows() -> None:
    # Prepare: count the rows every block function is handed.
    session = local_session(num_workers=2, num_partitions=4)
    seen: list[int] = []
    lock = threading.Lock()

    def counted(block: pa.Table) -> int:
        with lock:
            seen.append(block.num_rows)
        return block.num_rows

    table = session.from_arrow(people_data(400), "id")

    # Execute: group into 40 groups, read each.
    grouped = table.group_blocks(lambda block: np.arange(block.num_rows, dtype=np.int64) % 40, 40)
    total = sum(grouped.reduce(g, counted, add) for g in range(40))
    session.stop()

    # Assert: reading every group reads each row once, not once a group.
    assert total == sum(seen) == 400


def test_spark_group_reduce_runs_tasks_on_its_partitions_only(spark: object) -> None:
    # Prepare: 16 groups over 4 source partitions.
    session = spark_session(spark=spark)
    context = session.spark.sparkContext
    table = session.from_arrow(people_data(400), "id", num_partitions=4)
    grouped = table.group_blocks(lambda block: np.asarray(block.column("x").to_numpy() * 2, dtype=np.int64) % 16, 16)
    grouped.reduce(0, lambda block: block.num_rows, add)  # runs the grouping pass

    # Execute: the next groups, each in a job group of its own.
    tasks = []
    for g in range(1, 4):
        context.setJobGroup(f"weft-group-{g}", "one group")
        assert grouped.reduce(g, lambda block: block.num_rows, add) == 25
        tracker = context.statusTracker()
        stages = [tracker.getStageInfo(stage) for job in tracker.getJobIdsForGroup(f"weft-group-{g}")
                  for stage in tracker.getJobInfo(job).stageIds]
        tasks.append(sum(stage.numCompletedTasks for stage in stages if stage is not None))
    context.setJobGroup("", "")

    # Assert: a group's job reads its own partitions (at most the default parallelism), not the table.
    assert all(1 <= count <= context.defaultParallelism for count in tasks), tasks
