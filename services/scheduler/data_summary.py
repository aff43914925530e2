"""GetDataSetSummary: a data set's label balance, counted at this member (counts only, no rows)."""

from __future__ import annotations

import asyncio

import pyarrow.compute as pc

from kernel.storage import DataStore
from protos.weft.v1 import scheduler_pb2


def label_counts(store: DataStore, namespace: str, name: str, label_column: str) -> list[scheduler_pb2.LabelCount]:
    """Rows per value of the label column, most frequent first (ties by value)."""
    column = store.read_columns(namespace, name, [label_column]).column(label_column)
    counted = pc.value_counts(column)
    pairs = [("" if item["values"] is None else str(item["values"]), int(item["counts"])) for item in counted.to_pylist()]
    pairs.sort(key=lambda pair: (-pair[1], pair[0]))
    return [scheduler_pb2.LabelCount(value=value, rows=rows) for value, rows in pairs]


async def summarize(store: DataStore, info: scheduler_pb2.DataSetInfo) -> scheduler_pb2.DataSetSummary:
    counts: list[scheduler_pb2.LabelCount] = []
    if info.label_column:
        counts = await asyncio.to_thread(label_counts, store, info.ref.namespace, info.ref.name, info.label_column)
    return scheduler_pb2.DataSetSummary(info=info, label_counts=counts)
