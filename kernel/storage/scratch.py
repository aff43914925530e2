"""A task's scratch area: intermediate Parquet parts under the storage root, read back as Tables.

A step that receives a large table from another member (a stream of messages on the
driver) writes each message as one Parquet part here, then reads the directory as a Table
of its backend: the rows reach the workers from the storage the data sets live on, and
the driver holds one message at a time. The area is not a data set (its name starts
with the temp prefix, so listings skip it) and is removed when the task ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from kernel.computing.paths import exists
from kernel.computing.table import ComputingSession, Table, check_id_column
from kernel.storage.constants import SCRATCH_PART_TEMPLATE, TEMP_PREFIX

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def scratch_dir_name(owner: str) -> str:
    """The directory name (under the root) of `owner`'s scratch area."""
    return f"{TEMP_PREFIX}scratch-{_UNSAFE.sub('_', owner)}"


class ScratchArea:
    """One task's directory of intermediate tables, each a sub-directory of Parquet parts."""

    def __init__(self, filesystem: pafs.FileSystem, path: str, uri: str) -> None:
        self._fs = filesystem
        self.path = path
        self.uri = uri

    def write(self, name: str, schema: pa.Schema, blocks: Iterable[pa.Table]) -> int:
        """Write `blocks` (cast to `schema`) as the parts of table `name`; returns the rows written.

        Blocks are written as they come, so an iterator of received messages is never held
        whole. A table with no rows still gets one empty part, so it can be read back.
        """
        target = f"{self.path}/{_UNSAFE.sub('_', name)}"
        if exists(self._fs, target):
            self._fs.delete_dir(target)
        self._fs.create_dir(target, recursive=True)
        rows = parts = 0
        for block in blocks:
            if not block.num_rows:
                continue
            pq.write_table(block.select(schema.names).cast(schema),
                           f"{target}/{SCRATCH_PART_TEMPLATE.format(index=parts)}", filesystem=self._fs)
            rows += block.num_rows
            parts += 1
        if not parts:
            pq.write_table(schema.empty_table(), f"{target}/{SCRATCH_PART_TEMPLATE.format(index=0)}",
                           filesystem=self._fs)
        return rows

    def read(self, session: ComputingSession, name: str, id_column: str) -> Table:
        """Table `name` as written by `write`, keyed by `id_column`."""
        table = session.read_parquet(f"{self.uri}/{_UNSAFE.sub('_', name)}", id_column)
        check_id_column(table.schema.names, id_column, f"scratch table {name}")
        return table

    def keep(self, name: str, table: Table) -> Table:
        """`table` written as table `name` and read back: the table returned is planned from
        those files, not from the steps that made `table` (a long chain of steps, each
        joining the one before, stays one read)."""
        table.save(f"{self.uri}/{_UNSAFE.sub('_', name)}")
        return self.read(table.session, name, table.id_column)

    def delete(self, name: str) -> None:
        """Delete table `name` before the task ends (nothing to do when it was never written)."""
        target = f"{self.path}/{_UNSAFE.sub('_', name)}"
        if exists(self._fs, target):
            self._fs.delete_dir(target)

    def remove(self) -> None:
        """Delete the area and everything in it (nothing to do when it was never written)."""
        if exists(self._fs, self.path):
            self._fs.delete_dir(self.path)
