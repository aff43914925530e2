"""A provider's feature table for serving: a data set read once into an id -> row index, never scanned per request.

The data set is the one the provider registered for the model (by default the one it
brought to the job). It is read when a version is first served; a new upload under the
same name (a new data set meta) is noticed at the next request after
`serving.feature_refresh_s` and read again, off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from kernel.errors import InvalidArgument, NotFound
from kernel.features import feature_matrix
from kernel.storage import DataStore
from services.serving.preprocessing import FloatArray


@dataclass(frozen=True)
class _Snapshot:
    meta: dict[str, Any]
    index: dict[str, int]
    matrix: FloatArray
    columns: list[str]


def _split(table: str) -> tuple[str, str]:
    namespace, slash, name = table.partition("/")
    if not slash or not namespace or not name:
        raise InvalidArgument(f"feature table {table!r}: expected namespace/name")
    return namespace, name


class FeatureTable:
    """One data set's rows by id, for the columns one model part reads."""

    def __init__(self, store: DataStore, table: str, columns: list[str], refresh_s: float) -> None:
        self.store = store
        self.table = table
        self.namespace, self.name = _split(table)
        self.columns = list(columns)
        self.refresh_s = refresh_s
        self._snapshot: _Snapshot | None = None
        self._checked = 0.0
        self._lock = asyncio.Lock()

    def _read(self) -> _Snapshot:
        meta = self.store.meta(self.namespace, self.name)
        id_column = meta.id_column
        missing = [c for c in self.columns if c not in meta.column_names]
        if missing:
            raise InvalidArgument(f"feature table {self.table} lacks the model's column(s) {', '.join(missing)}")
        rows = self.store.read_columns(self.namespace, self.name, [id_column, *self.columns])
        ids = [str(v) for v in rows.column(id_column).to_pylist()]
        index = {value: position for position, value in enumerate(ids)}
        return _Snapshot(meta.to_dict(), index, feature_matrix(rows, self.columns), self.columns)

    async def _current(self) -> _Snapshot:
        now = time.monotonic()
        if self._snapshot is not None and now - self._checked < self.refresh_s:
            return self._snapshot
        async with self._lock:
            if self._snapshot is None or time.monotonic() - self._checked >= self.refresh_s:
                snapshot = self._snapshot
                meta = await asyncio.to_thread(self.store.meta, self.namespace, self.name)
                if snapshot is None or meta.to_dict() != snapshot.meta:
                    self._snapshot = await asyncio.to_thread(self._read)
                self._checked = time.monotonic()
        assert self._snapshot is not None
        return self._snapshot

    async def rows(self, ids: list[str]) -> FloatArray:
        """The rows of `ids` as columns; NotFound naming the first id the table does not hold.

        (The promoter adds which provider answered so.)"""
        snapshot = await self._current()
        positions = []
        for value in ids:
            position = snapshot.index.get(value)
            if position is None:
                raise NotFound(f"id {value} is not in the feature table {self.table}")
            positions.append(position)
        picked: FloatArray = snapshot.matrix[np.asarray(positions, dtype=np.int64)]
        return picked
