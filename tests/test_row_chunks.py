"""Row chunks: every row in exactly one chunk, the same chunks whatever the order or partitioning."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from kernel.blocks.row_chunks import ChunkPlan, gather_chunk, id_digest, no_values, with_row_keys
from kernel.computing import local_session
from kernel.errors import InvalidArgument


def value_column(rows: pa.Table) -> np.ndarray:
    return np.asarray(rows.column("v").to_numpy(), dtype=np.float64).reshape(-1, 1)


def test_members_draw_the_same_chunks_whatever_the_row_order() -> None:
    # Prepare: the same ids at two "members", in another order and partitioning.
    session = local_session(num_partitions=2)
    ids = [f"r{i}" for i in range(500)]
    ours = session.from_arrow(pa.table({"id": ids, "v": np.arange(500.0)}), "id", num_partitions=3)
    theirs = session.from_arrow(pa.table({"id": ids[::-1], "v": np.arange(500.0)[::-1]}), "id", num_partitions=5)

    # Execute
    chunks = [(gather_chunk(with_row_keys(ours, ["v"]), ChunkPlan(4, c), value_column, "test"),
               gather_chunk(with_row_keys(theirs, ["v"]), ChunkPlan(4, c), value_column, "test")) for c in range(4)]
    keys_only = gather_chunk(with_row_keys(theirs, ["v"]), ChunkPlan(4, 0), no_values, "test")

    # Assert: the same rows (each id's value) in the same order on both sides, each row once.
    assert id_digest(ours) == id_digest(theirs)
    for (keys, values), (their_keys, their_values) in chunks:
        np.testing.assert_array_equal(keys, their_keys)
        np.testing.assert_array_equal(values, their_values)
        assert bool((keys[1:] > keys[:-1]).all())
    np.testing.assert_array_equal(keys_only[0], chunks[0][0][0])
    assert keys_only[1].shape == (len(keys_only[0]), 0)
    seen = np.concatenate([values[:, 0] for (_, values), _ in chunks])
    assert sorted(seen.tolist()) == list(np.arange(500.0))
    assert id_digest(ours) != id_digest(session.from_arrow(pa.table({"id": ids[1:], "v": np.zeros(499)}), "id"))
    session.stop()


def test_duplicate_ids_are_refused() -> None:
    session = local_session(num_partitions=2)
    table = session.from_arrow(pa.table({"id": ["a", "b", "a"], "v": [1.0, 2.0, 3.0]}), "id")
    with pytest.raises(InvalidArgument, match="duplicate ids"):
        gather_chunk(with_row_keys(table, ["v"]), ChunkPlan(1, 0), value_column, "test")
    session.stop()
