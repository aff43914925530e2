"""Row alignment of vertical members: rows sorted by id, and a digest to check both sides agree."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.compute as pc

from kernel.model_base import LabeledTable


def sorted_rows(data: LabeledTable, columns: list[str]) -> pa.Table:
    """`columns` of every row collected in this process, sorted by id (the order all members share)."""
    rows = data.table.select(columns).collect()
    return rows.take(pc.sort_indices(rows, sort_keys=[(data.id_column, "ascending")]))


def ids_digest(ids: pa.Array | pa.ChunkedArray) -> str:
    """SHA-256 of the ids in order: members compare it to check that their rows line up."""
    text = "\x1f".join(pc.cast(ids, pa.string()).to_pylist())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
