"""DataSplit and Sample: exact per-class counts, the same ids in the same part at every member,
and a stratified assignment streamed in many messages cutting as in one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kernel.blocks.table_stream import Put
from kernel.computing import ComputingSession, local_session
from kernel.inprocess_run import PartyFailed
from kernel.stats import partition
from tests.test_vert_kit import VerticalJob

SPLIT_OUTPUTS = {"data": ["train", "validate", "test"]}


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    """LOCAL here; tests/test_credit_spark.py runs these components on SPARK."""
    session = local_session(num_workers=2, num_partitions=3)
    yield session
    session.stop()


def members_frames(rows: int, seed: int = 1) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(rows)]
    label = (rng.random(rows) < 0.3).astype(np.int64)
    return [pd.DataFrame({"id": ids, "y": label, "a": rng.normal(size=rows)}),
            pd.DataFrame({"id": ids, "b": rng.normal(size=rows)})]


def expected_sizes(count: int, fractions: list[float]) -> list[int]:
    ends = [round(count * f) for f in np.cumsum(fractions)]
    ends[-1] = count
    return [b - a for a, b in zip([0, *ends[:-1]], ends, strict=True)]


def test_stratified_split_keeps_class_shares_and_agrees_across_members(
    tmp_path: Path, computing: ComputingSession
) -> None:
    # Prepare
    frames = members_frames(1000)
    job = VerticalJob(tmp_path, providers=1, backend=computing.backend)
    job.upload("data", frames)
    fractions = [0.6, 0.1, 0.3]

    # Execute
    job.run("split_0", "DataSplit", computing, {"data": {"data": ["args.data"]}}, SPLIT_OUTPUTS,
            params={"train_fraction": 0.6, "validate_fraction": 0.1, "test_fraction": 0.3, "random_seed": 7},
            data_args=("data",))

    # Assert: every class is cut in exactly its share, and both members hold the same ids per part.
    label = frames[0].set_index("id")["y"]
    seen: list[str] = []
    for k, name in enumerate(SPLIT_OUTPUTS["data"]):
        promoter = job.output(job.members[0], computing, "split_0", name)
        provider = job.output(job.members[1], computing, "split_0", name)
        assert promoter["id"].tolist() == provider["id"].tolist()
        for value in (0, 1):
            in_class = int((label == value).sum())
            assert int((promoter["y"] == value).sum()) == expected_sizes(in_class, fractions)[k]
        assert list(provider.columns) == ["id", "b"]
        seen += promoter["id"].tolist()
    assert sorted(seen) == sorted(frames[0]["id"])
    metric = job.metrics(job.members[0], "split_0")["split"]
    assert sum(metric["rows"].values()) == 1000


def test_random_split_sends_no_ids_and_a_seed_repeats_it(tmp_path: Path) -> None:
    # Prepare
    computing = local_session(num_partitions=3)
    frames = members_frames(500)
    job = VerticalJob(tmp_path, providers=1)
    job.upload("data", frames)
    params = {"stratified": False, "train_fraction": 0.75, "test_fraction": 0.25, "random_seed": 11}

    # Execute: the same split twice.
    for name in ("split_0", "split_1"):
        job.run(name, "DataSplit", computing, {"data": {"data": ["args.data"]}}, SPLIT_OUTPUTS, params=params,
                data_args=("data",))

    # Assert
    first = job.output(job.members[1], computing, "split_0", "train")["id"].tolist()
    assert len(first) == 375
    assert first == job.output(job.members[0], computing, "split_0", "train")["id"].tolist()
    assert first == job.output(job.members[1], computing, "split_1", "train")["id"].tolist()
    assert job.output(job.members[0], computing, "split_0", "validate").empty
    computing.stop()


def test_a_provider_with_other_ids_is_told_to_intersect_first(tmp_path: Path) -> None:
    computing = local_session(num_partitions=2)
    frames = members_frames(300)
    frames[1] = frames[1].iloc[:250]
    job = VerticalJob(tmp_path, providers=1)
    job.upload("data", frames)
    with pytest.raises(PartyFailed, match="run Intersection on every member's data first"):
        job.run("split_0", "DataSplit", computing, {"data": {"data": ["args.data"]}}, SPLIT_OUTPUTS,
                params={"stratified": False}, data_args=("data",), timeout=20)
    computing.stop()


def test_stratified_sample_keeps_exact_counts_per_class(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare
    frames = members_frames(800, seed=4)
    job = VerticalJob(tmp_path, providers=1, backend=computing.backend)
    job.upload("data", frames)

    # Execute: all the bad ones, a fifth of the good ones (a common down-sampling).
    job.run("sample_0", "Sample", computing, {"data": {"data": ["args.data"]}}, {"data": ["data"]},
            params={"method": "stratified", "fractions": {"0": 0.2, "1": 1.0}, "random_seed": 3},
            data_args=("data",))

    # Assert
    promoter = job.output(job.members[0], computing, "sample_0", "data")
    provider = job.output(job.members[1], computing, "sample_0", "data")
    counts = frames[0]["y"].value_counts()
    assert int((promoter["y"] == 1).sum()) == counts[1]
    assert int((promoter["y"] == 0).sum()) == round(counts[0] * 0.2)
    assert promoter["id"].tolist() == provider["id"].tolist()


def test_an_assignment_streamed_in_many_messages_splits_as_one_message(
    tmp_path: Path, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the same stratified split, its (id, part) table in one message, then in
    # messages of 37 rows (at least 27 of them for 1000 rows).
    job = VerticalJob(tmp_path, providers=1, backend=computing.backend)
    job.upload("data", members_frames(1000, seed=6))
    params = {"train_fraction": 0.5, "validate_fraction": 0.2, "test_fraction": 0.3, "random_seed": 9}

    def split(name: str) -> None:
        job.run(name, "DataSplit", computing, {"data": {"data": ["args.data"]}}, SPLIT_OUTPUTS, params=params,
                data_args=("data",))

    # Execute
    split("split_whole")
    monkeypatch.setattr(partition, "ASSIGNMENT_STREAM_ROWS", 37)
    split("split_streamed")

    # Assert: every part at every member holds the same rows either way.
    for member in job.members:
        for name in SPLIT_OUTPUTS["data"]:
            whole = job.output(member, computing, "split_whole", name)
            streamed = job.output(member, computing, "split_streamed", name)
            assert not streamed.empty
            pd.testing.assert_frame_equal(streamed, whole, check_exact=True)


def test_an_assignment_message_of_other_columns_stops_the_provider(
    tmp_path: Path, computing: ComputingSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: a promoter whose assignment messages carry a third column.
    job = VerticalJob(tmp_path, providers=1, backend=computing.backend)
    job.upload("data", members_frames(300, seed=2))
    send_table = partition.send_table

    def with_extra_column(put: Put, table: Any, rows: int) -> int:
        def put_wider(index: int, block: pa.Table) -> None:
            put(index, block.append_column("extra", pa.array(np.zeros(block.num_rows))))

        return send_table(put_wider, table, rows)

    monkeypatch.setattr(partition, "send_table", with_extra_column)

    # Execute / Assert
    with pytest.raises(PartyFailed, match="Sample: the promoter's assignment message 0 must be a table of id and "
                                          "integer part, got columns id, __weft_part, extra"):
        job.run("sample_bad", "Sample", computing, {"data": {"data": ["args.data"]}}, {"data": ["data"]},
                params={"method": "stratified", "fractions": {"0": 0.5, "1": 1.0}, "random_seed": 3},
                data_args=("data",), timeout=30)
