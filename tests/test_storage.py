"""DataStore: CSV/Parquet import, Table writes on both backends, names, atomicity, bad input."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kernel.computing import ComputingSession, local_session, spark_session
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from kernel.storage import DataSetMeta, DataStore

CSV = b"id,age,income,y\n007,31,5200.5,1\n008,45,7100.0,0\n010,29,3900.25,1\n"


@pytest.fixture()
def store(tmp_path: Path) -> DataStore:
    return DataStore(str(tmp_path / "root"))


@pytest.fixture(params=["LOCAL", "SPARK"])
def session(request: pytest.FixtureRequest) -> Iterator[ComputingSession]:
    if request.param == "LOCAL":
        with local_session(num_workers=2) as local:
            yield local
    else:
        yield spark_session(spark=request.getfixturevalue("spark"))


def leftovers(store: DataStore, tmp_path: Path, namespace: str) -> list[str]:
    """Scratch or trash directories a write left behind."""
    folder = tmp_path / "root" / namespace
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.exists() else []


# ---- import -------------------------------------------------------------------------------


def test_import_csv_records_meta_and_keeps_id_text(store: DataStore, tmp_path: Path) -> None:
    # Prepare
    source = tmp_path / "credit.csv"
    source.write_bytes(CSV)
    # Execute
    meta = store.import_csv("credit", "a", str(source), id_column="id", label_column="y")
    # Assert
    assert (meta.namespace, meta.name, meta.rows, meta.columns) == ("credit", "a", 3, 4)
    assert meta.id_column == "id" and meta.label_column == "y"
    assert meta.schema[0] == {"name": "id", "type": "string"}
    assert meta.feature_names == ["age", "income"]
    assert meta.uri == (tmp_path / "root" / "credit" / "a").as_uri()
    assert store.meta("credit", "a") == meta
    sidecar = json.loads((tmp_path / "root" / "credit" / "a" / "_weft_meta.json").read_text())
    assert DataSetMeta.from_dict(sidecar) == meta
    data = pq.read_table(tmp_path / "root" / "credit" / "a" / "part-00000.parquet")
    assert data.column("id").to_pylist() == ["007", "008", "010"]


def test_import_csv_from_bytes_and_read_on_each_backend(store: DataStore, session: ComputingSession) -> None:
    # Prepare
    store.import_csv("credit", "b", CSV, id_column="id")
    # Execute
    table = store.read(session, "credit", "b")
    # Assert
    assert table.backend == session.backend
    assert table.id_column == "id"
    assert table.count() == 3
    assert sorted(table.collect().column("income").to_pylist()) == [3900.25, 5200.5, 7100.0]


def test_import_parquet_from_path_and_bytes(store: DataStore, tmp_path: Path) -> None:
    # Prepare
    data = pa.table({"uid": pa.array([1, 2, 3], pa.int64()), "v": [0.1, 0.2, 0.3]})
    pq.write_table(data, tmp_path / "in.parquet")
    buffer = io.BytesIO()
    pq.write_table(data, buffer)
    # Execute
    from_path = store.import_parquet("ns", "p1", tmp_path / "in.parquet", id_column="uid")
    from_bytes = store.import_parquet("ns", "p2", buffer.getvalue(), id_column="uid")
    # Assert
    assert from_path.rows == from_bytes.rows == 3
    assert from_path.schema == [{"name": "uid", "type": "int64"}, {"name": "v", "type": "double"}]


# ---- write_table, list, delete -----------------------------------------------------------


def test_write_table_from_each_backend(store: DataStore, session: ComputingSession) -> None:
    # Prepare
    rows = 50
    data = pa.table({"id": [f"r{i}" for i in range(rows)], "x": np.arange(rows, dtype=np.float64)})
    table = session.from_arrow(data, "id", num_partitions=3).map(lambda c: {"x": c["x"] * 2})
    # Execute
    meta = store.write_table("out", "doubled", table, "id")
    # Assert
    assert meta.rows == rows and meta.columns == 2
    back = store.read(session, "out", "doubled").collect()
    assert sorted(back.column("x").to_pylist()) == [2.0 * i for i in range(rows)]


def test_write_arrow_table_overwrites_by_default(store: DataStore, tmp_path: Path) -> None:
    # Prepare
    store.write_table("out", "t", pa.table({"id": ["a", "b"], "v": [1, 2]}), "id")
    # Execute
    meta = store.write_table("out", "t", pa.table({"id": ["c"], "v": [3]}), "id")
    # Assert
    assert meta.rows == 1
    assert store.meta("out", "t").rows == 1
    assert leftovers(store, tmp_path, "out") == []


def test_list_exists_and_delete(store: DataStore) -> None:
    # Prepare
    store.import_csv("a", "one", CSV, "id")
    store.import_csv("a", "two", CSV, "id")
    store.import_csv("b", "three", CSV, "id")
    # Execute
    everything = [(m.namespace, m.name) for m in store.list()]
    only_a = [m.name for m in store.list("a")]
    store.delete("a", "one")
    # Assert
    assert everything == [("a", "one"), ("a", "two"), ("b", "three")]
    assert only_a == ["one", "two"]
    assert not store.exists("a", "one")
    assert store.exists("a", "two")
    assert store.list("nothing-here") == []
    with pytest.raises(NotFound, match="a/one"):
        store.delete("a", "one")


def test_file_uri_root(tmp_path: Path) -> None:
    # Prepare
    store = DataStore((tmp_path / "uri-root").as_uri())
    # Execute
    meta = store.import_csv("ns", "d", CSV, "id")
    # Assert
    assert (tmp_path / "uri-root" / "ns" / "d" / "_weft_meta.json").exists()
    assert meta.uri.startswith("file://")


# ---- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", "/abs", "", ".hidden", "a..b", "x" * 200])
def test_bad_names_are_refused(store: DataStore, tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidArgument, match="name"):
        store.import_csv("ns", bad, CSV, "id")
    with pytest.raises(InvalidArgument, match="namespace"):
        store.import_csv(bad, "ok", CSV, "id")
    assert store.list() == []


def test_missing_id_or_label_column_is_named(store: DataStore) -> None:
    with pytest.raises(InvalidArgument, match="id_column 'uid' .* columns are: id, age, income, y"):
        store.import_csv("ns", "d", CSV, "uid")
    with pytest.raises(InvalidArgument, match="label_column 'target'"):
        store.import_csv("ns", "d", CSV, "id", label_column="target")
    assert not store.exists("ns", "d")


def test_duplicate_and_empty_ids_are_refused(store: DataStore, tmp_path: Path) -> None:
    duplicated = b"id,v\n1,0.5\n2,0.1\n1,0.7\n"
    empty_id = b"id,v\n1,0.5\n,0.1\n"
    with pytest.raises(InvalidArgument, match="duplicated value.*'1'"):
        store.import_csv("ns", "dup", duplicated, "id")
    with pytest.raises(InvalidArgument, match="empty value"):
        store.import_parquet("ns", "nul", _parquet_bytes(pa.table({"id": ["a", None], "v": [1, 2]})), "id")
    store.import_csv("ns", "empty-text-id", empty_id, "id")  # an empty CSV field is the text ""
    assert not store.exists("ns", "dup")
    assert leftovers(store, tmp_path, "ns") == []


def test_duplicate_ids_in_a_table_leave_nothing_written(store: DataStore, session: ComputingSession, tmp_path: Path) -> None:
    # Prepare: an existing data set that a failed overwrite must not damage
    store.import_csv("ns", "keep", CSV, "id")
    data = pa.table({"id": ["a", "b", "a"], "v": [1.0, 2.0, 3.0]})
    table = session.from_arrow(data, "id", num_partitions=2)
    # Execute
    with pytest.raises(InvalidArgument, match="duplicated values, e.g. 'a'"):
        store.write_table("ns", "keep", table, "id")
    # Assert
    assert store.meta("ns", "keep").rows == 3
    assert store.read(session, "ns", "keep").count() == 3
    assert leftovers(store, tmp_path, "ns") == []


def test_existing_data_set_needs_overwrite(store: DataStore) -> None:
    store.import_csv("ns", "d", CSV, "id")
    with pytest.raises(FailedPrecondition, match="ns/d already exists"):
        store.import_csv("ns", "d", CSV, "id")
    assert store.import_csv("ns", "d", CSV + b"011,50,1.0,0\n", "id", overwrite=True).rows == 4


def test_unreadable_sources_are_refused(store: DataStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="not found"):
        store.import_csv("ns", "d", str(tmp_path / "absent.csv"), "id")
    with pytest.raises(InvalidArgument, match="cannot be parsed"):
        store.import_csv("ns", "d", b"id,v\n1,2\n3,4,5\n", "id")
    with pytest.raises(InvalidArgument, match="has no rows"):
        store.import_csv("ns", "d", b"id,v\n", "id")
    with pytest.raises(InvalidArgument, match="cannot be read"):
        store.import_parquet("ns", "d", b"not parquet at all", "id")
    with pytest.raises(InvalidArgument, match="repeated column names: v"):
        store.import_csv("ns", "d", b"id,v,v\n1,2,3\n", "id")
    assert store.list() == []


def test_meta_of_missing_data_set_names_it(store: DataStore) -> None:
    with pytest.raises(NotFound, match="data set credit/nope not found"):
        store.meta("credit", "nope")
    with local_session(num_workers=1) as local, pytest.raises(NotFound, match="credit/nope"):
        store.read(local, "credit", "nope")


def _parquet_bytes(data: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(data, buffer)
    return buffer.getvalue()


def test_a_scratch_table_deleted_before_the_task_ends_leaves_the_others(store: DataStore) -> None:
    # Prepare: two tables in one task's scratch area
    scratch = store.scratch("task_x")
    schema = pa.schema([pa.field("k", pa.int64())])
    scratch.write("first", schema, [pa.table({"k": [1, 2]})])
    scratch.write("second", schema, [pa.table({"k": [3]}), pa.table({"k": [4]})])
    session = local_session()

    # Execute
    try:
        scratch.delete("first")
        scratch.delete("never_written")
        kept = scratch.read(session, "second", "k").collect()
        with pytest.raises(NotFound):
            scratch.read(session, "first", "k")
    finally:
        session.stop()

    # Assert
    assert sorted(kept.column("k").to_pylist()) == [3, 4]
