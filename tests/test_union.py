"""Union against pandas.concat: refused duplicates, keep_first / keep_last by input order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kernel.computing import local_session
from kernel.inprocess_run import PartyFailed
from tests.test_vert_kit import VerticalJob


def frames(start: int, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": [f"r{i:04d}" for i in range(start, start + rows)], "y": rng.integers(0, 2, rows),
                         "x": rng.normal(size=rows)})


@pytest.mark.parametrize("rule", ["keep_first", "keep_last"])
def test_union_resolves_duplicates_by_input_order(tmp_path: Path, rule: str) -> None:
    # Prepare: three inputs; the second overlaps the first on 20 ids, the third the second on 10.
    computing = local_session(num_partitions=2)
    parts = [frames(0, 100, 1), frames(80, 60, 2), frames(130, 40, 3)]
    job = VerticalJob(tmp_path, providers=0)
    for k, part in enumerate(parts):
        job.promoter.upload(f"part{k}", part, label="y")

    # Execute
    job.run("union_0", "Union", computing, {"data": {"data": ["args.part0", "args.part1", "args.part2"]}},
            {"data": ["data"]}, params={"duplicate_ids": rule}, data_args=("part0", "part1", "part2"))

    # Assert: the same rows pandas keeps.
    ordered = parts if rule == "keep_first" else parts[::-1]
    expected = pd.concat(ordered).drop_duplicates("id", keep="first").sort_values("id").reset_index(drop=True)
    out = job.output(job.promoter, computing, "union_0", "data")
    pd.testing.assert_frame_equal(out[expected.columns], expected)
    assert job.metrics(job.promoter, "union_0")["union"]["duplicates_dropped"] == 30
    computing.stop()


def test_union_refuses_duplicates_and_other_columns(tmp_path: Path) -> None:
    computing = local_session(num_partitions=2)
    job = VerticalJob(tmp_path, providers=0)
    job.promoter.upload("a", frames(0, 50, 1), label="y")
    job.promoter.upload("b", frames(40, 50, 2), label="y")
    job.promoter.upload("c", frames(200, 10, 3).rename(columns={"x": "z"}), label="y")
    with pytest.raises(PartyFailed, match=r"id\(s\) .*r004.* are in more than one input"):
        job.run("union_0", "Union", computing, {"data": {"data": ["args.a", "args.b"]}}, {"data": ["data"]},
                data_args=("a", "b"))
    with pytest.raises(PartyFailed, match="input 1 has columns"):
        job.run("union_1", "Union", computing, {"data": {"data": ["args.a", "args.c"]}}, {"data": ["data"]},
                data_args=("a", "c"))
    computing.stop()
