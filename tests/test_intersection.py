"""Intersection: ECDH PSI through the task path, with one and two providers, in-process and STANDALONE."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kernel.components.intersection import intersection
from kernel.components.intersection.intersection import _points
from kernel.computing import ComputingSession, local_session, spark_session
from kernel.computing.spark import SparkTable
from kernel.errors import InvalidArgument
from tests.test_vert_kit import VerticalJob

INPUTS = {"data": {"data": ["args.raw"]}}
OUTPUTS = {"data": ["train"]}


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=3)
    yield session
    session.stop()


def member_frame(ids: list[object], seed: int, label: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": ids})
    if label:
        frame["y"] = rng.integers(0, 2, len(ids))
    frame[f"f{seed}"] = rng.normal(size=len(ids))
    return frame


def test_two_providers_keep_exactly_the_ids_all_three_hold(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: ids 0..999 at the promoter, 500..1499 and 0..1199 (odd only) at the providers.
    promoter_ids = [f"u{i}" for i in range(1000)]
    first_ids = [f"u{i}" for i in range(500, 1500)]
    second_ids = [f"u{i}" for i in range(0, 1200, 2)] + [f"x{i}" for i in range(300)]
    common = sorted(set(promoter_ids) & set(first_ids) & set(second_ids))
    job = VerticalJob(tmp_path, providers=2)
    job.upload("raw", [member_frame(promoter_ids, 1, True), member_frame(first_ids, 2, False),
                       member_frame(second_ids, 3, False)])

    # Execute
    job.run("intersection_0", "Intersection", computing, INPUTS, OUTPUTS, data_args=("raw",))

    # Assert: every member keeps its own columns on exactly the common ids.
    for index, member in enumerate(job.members):
        out = job.output(member, computing, "intersection_0", "train")
        assert out["id"].tolist() == common
        assert f"f{index + 1}" in out.columns
        assert job.metrics(member, "intersection_0")["intersection"]["intersect_count"] == len(common)
    promoter_out = job.output(job.promoter, computing, "intersection_0", "train")
    source = member_frame(promoter_ids, 1, True).set_index("id").loc[common]
    np.testing.assert_allclose(promoter_out["f1"].to_numpy(), source["f1"].to_numpy())
    assert promoter_out["y"].tolist() == source["y"].tolist()
    assert job.metrics(job.promoter, "intersection_0")["provider_matches"] == [500, 500]


def test_standalone_federation_with_integer_ids(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare
    job = VerticalJob(tmp_path, providers=1, work_mode="STANDALONE")
    job.upload("raw", [member_frame(list(range(0, 400)), 4, True), member_frame(list(range(300, 900)), 5, False)])

    # Execute
    job.run("intersection_0", "Intersection", computing, INPUTS, OUTPUTS, data_args=("raw",))

    # Assert
    for member in job.members:
        assert job.output(member, computing, "intersection_0", "train")["id"].tolist() == list(range(300, 400))


def test_spark_backend(tmp_path: Path, spark: Any) -> None:
    # Prepare
    computing = spark_session(spark)
    job = VerticalJob(tmp_path, providers=1, backend="SPARK")
    job.upload("raw", [member_frame([f"s{i}" for i in range(300)], 8, True),
                       member_frame([f"s{i}" for i in range(250, 600)], 9, False)])

    # Execute
    job.run("intersection_0", "Intersection", computing, INPUTS, OUTPUTS, data_args=("raw",))

    # Assert
    expected = sorted(f"s{i}" for i in range(250, 300))
    for member in job.members:
        assert job.output(member, computing, "intersection_0", "train")["id"].tolist() == expected


def test_disjoint_ids_give_empty_outputs(tmp_path: Path, computing: ComputingSession) -> None:
    job = VerticalJob(tmp_path, providers=1)
    job.upload("raw", [member_frame(["a", "b"], 6, True), member_frame(["c", "d"], 7, False)])

    job.run("intersection_0", "Intersection", computing, INPUTS, OUTPUTS, data_args=("raw",))

    assert job.metrics(job.members[1], "intersection_0")["intersection"]["intersect_count"] == 0
    assert len(job.output(job.members[1], computing, "intersection_0", "train")) == 0


@pytest.mark.parametrize("value", [np.zeros((3, 31), np.uint8), np.zeros((3, 32), np.int64), [b"x" * 32]])
def test_malformed_points_from_a_peer_are_refused(value: object) -> None:
    with pytest.raises(InvalidArgument, match="must be a uint8 array of shape"):
        _points(value, "provider_blinded_ids")


def test_provider_refuses_points_outside_its_list(tmp_path: Path, computing: ComputingSession,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a promoter that names every provider point twice (a repeated point)
    job = VerticalJob(tmp_path, providers=1)
    job.upload("raw", [member_frame(["a", "b", "c"], 6, True), member_frame(["b", "c", "d"], 7, False)])
    original = intersection.send_stream

    def repeating(put: Any, table: Any, columns: tuple[str, ...] = ("point",)) -> int:
        if table.column_names == ["point"]:  # only the promoter's answer has no other column
            table = table.union(table)
        return original(put, table, columns)

    monkeypatch.setattr(intersection, "send_stream", repeating)

    # Execute / Assert
    with pytest.raises(Exception, match="intersection_points must be distinct points"):
        job.run("intersection_0", "Intersection", computing, INPUTS, OUTPUTS, data_args=("raw",))


def test_lists_stream_in_many_messages_and_match_one_message(
    tmp_path: Path, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: messages of 7 points, so every list of 300 travels in dozens of messages
    monkeypatch.setattr(intersection, "STREAM_POINTS", 7)
    job = VerticalJob(tmp_path, providers=1)
    job.upload("raw", [member_frame([f"m{i}" for i in range(300)], 10, True),
                       member_frame([f"m{i}" for i in range(100, 400)], 11, False)])

    # Execute
    job.run("intersection_0", "Intersection", computing, INPUTS, OUTPUTS, data_args=("raw",))

    # Assert
    expected = sorted(f"m{i}" for i in range(100, 300))
    for member in job.members:
        assert job.output(member, computing, "intersection_0", "train")["id"].tolist() == expected


def test_spark_members_never_collect_rows_on_the_driver(
    tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: any Table.collect on a Spark table (a gather to the driver) fails the run
    computing = spark_session(spark)
    job = VerticalJob(tmp_path, providers=2, backend="SPARK")
    job.upload("raw", [member_frame([f"q{i}" for i in range(200)], 12, True),
                       member_frame([f"q{i}" for i in range(50, 260)], 13, False),
                       member_frame([f"q{i}" for i in range(0, 400, 2)], 14, False)])

    def refuse(self: SparkTable) -> None:
        raise AssertionError("a Spark table was collected on the driver")

    # ... and the order of the promoter's receives and of the Spark jobs that count
    # re-blinded points is recorded (the members run as threads of this process).
    events: list[str] = []
    lock = threading.Lock()
    receive, count = intersection._IntersectionBase._receive_points, SparkTable.count

    def recorded_receive(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        with lock:
            events.append(f"receive {name}")
        return receive(self, name, *args, **kwargs)

    def recorded_count(self: SparkTable) -> int:
        rows = count(self)
        if intersection.TWICE in self.schema.names:
            with lock:
                events.append("count re-blinded")
        return rows

    with monkeypatch.context() as patch:
        patch.setattr(SparkTable, "collect", refuse)
        patch.setattr(intersection._IntersectionBase, "_receive_points", recorded_receive)
        patch.setattr(SparkTable, "count", recorded_count)
        # Execute
        job.run("intersection_0", "Intersection", computing, INPUTS, OUTPUTS, data_args=("raw",))

    # Assert
    expected = sorted(f"q{i}" for i in range(50, 200, 2))
    for member in job.members:
        assert job.output(member, computing, "intersection_0", "train")["id"].tolist() == expected
    assert job.metrics(job.promoter, "intersection_0")["provider_matches"] == [150, 100]
    # The promoter re-blinded both providers' points (a Spark job each) before it waited
    # for any pairs: the providers re-blind its points meanwhile, so the work overlaps.
    first_pairs = events.index("receive pairs-0")
    assert events.index("receive provider-1") < first_pairs
    assert events[:first_pairs].count("count re-blinded") == 2
