"""Data sets as Parquet directories under a storage root, each with a JSON metadata sidecar.

Layout: `<root>/<namespace>/<name>/` holds the Parquet part files and `_weft_meta.json`.
The root is a local directory or a URI any pyarrow filesystem serves (`file://`, `s3://`,
`hdfs://`). Every write goes to a scratch directory next to the target and is renamed
into place once complete, so a reader sees the old data set or the new one, never half.
"""

from __future__ import annotations

import builtins
import dataclasses
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from kernel.computing.paths import exists, filesystem_for, to_uri
from kernel.computing.table import ComputingSession, Table
from kernel.constants import BACKEND_LOCAL
from kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from kernel.storage.constants import (
    DATA_FILE,
    DUPLICATE_EXAMPLES,
    META_FILE,
    NAME_PATTERN,
    TEMP_PREFIX,
    TRASH_PREFIX,
)
from kernel.storage.scratch import ScratchArea, scratch_dir_name

Source = str | Path | bytes


@dataclasses.dataclass(frozen=True)
class DataSetMeta:
    """What the store records about a data set (the `data_set` table holds the same)."""

    namespace: str
    name: str
    uri: str
    rows: int
    columns: int
    schema: list[dict[str, str]]
    id_column: str
    label_column: str | None
    created_at: str

    @property
    def column_names(self) -> list[str]:
        """All column names, id and label included, in file order."""
        return [field["name"] for field in self.schema]

    @property
    def feature_names(self) -> list[str]:
        """Column names other than the id and the label."""
        return [name for name in self.column_names if name not in (self.id_column, self.label_column)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSetMeta:
        """The inverse of `to_dict`; unknown keys are ignored so newer sidecars still load."""
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def schema_to_json(schema: pa.Schema) -> list[dict[str, str]]:
    """[{"name": ..., "type": ...}] for an Arrow schema (types as Arrow prints them)."""
    return [{"name": field.name, "type": str(field.type)} for field in schema]


def check_name(value: str, field: str) -> str:
    """Refuse a namespace or name that could escape the root or is not a plain word."""
    from kernel.safe_text import check_path_name

    return check_path_name(value, field)


class DataStore:
    """Data sets (namespace/name) stored as Parquet under one root."""

    def __init__(self, root: str) -> None:
        self.root_uri = to_uri(str(root)).rstrip("/")
        self._fs, self._root = filesystem_for(str(root))
        self._fs.create_dir(self._root, recursive=True)

    # ---- reading --------------------------------------------------------------------

    def uri(self, namespace: str, name: str) -> str:
        """Where data set namespace/name lives (or would live)."""
        return f"{self.root_uri}/{check_name(namespace, 'namespace')}/{check_name(name, 'name')}"

    def exists(self, namespace: str, name: str) -> bool:
        """True when data set namespace/name is stored."""
        return exists(self._fs, f"{self._dir(namespace, name)}/{META_FILE}")

    def meta(self, namespace: str, name: str) -> DataSetMeta:
        """The metadata of data set namespace/name; NotFound when there is none."""
        path = f"{self._dir(namespace, name)}/{META_FILE}"
        try:
            with self._fs.open_input_stream(path) as stream:
                return DataSetMeta.from_dict(json.loads(stream.read()))
        except FileNotFoundError as exc:
            raise NotFound(f"data set {namespace}/{name} not found under {self.root_uri}") from exc

    def list(self, namespace: str | None = None) -> builtins.list[DataSetMeta]:
        """Every data set (or those of one namespace), sorted by namespace then name."""
        namespaces: builtins.list[str]
        if namespace is not None:
            namespaces = [check_name(namespace, "namespace")]
        else:
            namespaces = [info.base_name for info in self._children(self._root) if NAME_PATTERN.match(info.base_name)]
        found: builtins.list[DataSetMeta] = []
        for space in sorted(namespaces):
            for info in self._children(f"{self._root}/{space}"):
                if NAME_PATTERN.match(info.base_name) and self.exists(space, info.base_name):
                    found.append(self.meta(space, info.base_name))
        return sorted(found, key=lambda meta: (meta.namespace, meta.name))

    def read(self, session: ComputingSession, namespace: str, name: str) -> Table:
        """Data set namespace/name as a Table of `session`'s backend."""
        meta = self.meta(namespace, name)
        return session.read_parquet(meta.uri, meta.id_column)

    def read_columns(self, namespace: str, name: str, columns: builtins.list[str]) -> pa.Table:
        """Some columns of data set namespace/name as one Arrow table (for checks; no computing session)."""
        self.meta(namespace, name)
        return pq.read_table(self._dir(namespace, name), columns=columns, filesystem=self._fs)

    # ---- writing --------------------------------------------------------------------

    def import_csv(
        self,
        namespace: str,
        name: str,
        csv_path_or_bytes: Source,
        id_column: str,
        label_column: str | None = None,
        overwrite: bool = False,
        delimiter: str = ",",
    ) -> DataSetMeta:
        """Store a CSV file (path, URI or its bytes) with a header row as data set namespace/name.

        The id column is read as text so ids such as "007" keep their leading zeros and
        match across members; other column types are inferred.
        """
        self._dir(namespace, name)
        raw = self._read_source(csv_path_or_bytes, "CSV")
        try:
            data = pacsv.read_csv(
                io.BytesIO(raw),
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(column_types={id_column: pa.string()}),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidArgument(f"CSV for {namespace}/{name} cannot be parsed: {exc}") from exc
        return self._import(namespace, name, data, id_column, label_column, overwrite, "the CSV")

    def import_parquet(
        self,
        namespace: str,
        name: str,
        parquet_path_or_bytes: Source,
        id_column: str,
        label_column: str | None = None,
        overwrite: bool = False,
    ) -> DataSetMeta:
        """Store a Parquet file (path, URI or its bytes) as data set namespace/name."""
        self._dir(namespace, name)
        raw = self._read_source(parquet_path_or_bytes, "Parquet")
        try:
            data = pq.read_table(pa.BufferReader(raw))
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidArgument(f"Parquet for {namespace}/{name} cannot be read: {exc}") from exc
        return self._import(namespace, name, data, id_column, label_column, overwrite, "the Parquet file")

    def write_table(
        self,
        namespace: str,
        name: str,
        table: Table | pa.Table,
        id_column: str,
        label_column: str | None = None,
        overwrite: bool = True,
    ) -> DataSetMeta:
        """Store a Table (any backend, written in parallel) or an Arrow table as namespace/name."""
        if isinstance(table, pa.Table):
            self._check_columns(table.schema, id_column, label_column, f"the table for {namespace}/{name}")
            self._check_ids(table.column(id_column), id_column, namespace, name)
            return self._publish(
                namespace, name, overwrite, table.schema, id_column, label_column,
                lambda scratch: self._write_arrow(table, scratch),
            )
        if not isinstance(table, Table):
            raise InvalidArgument(f"write_table: table must be a Table or pyarrow.Table, got {type(table).__name__}")
        self._check_columns(table.schema, id_column, label_column, f"the table for {namespace}/{name}")
        return self._publish(
            namespace, name, overwrite, table.schema, id_column, label_column,
            lambda scratch: self._write_distributed(table, scratch, id_column, namespace, name),
        )

    def scratch(self, owner: str) -> ScratchArea:
        """The scratch area of `owner` (a task of one member and role): intermediate tables."""
        name = scratch_dir_name(owner)
        return ScratchArea(self._fs, f"{self._root}/{name}", f"{self.root_uri}/{name}")

    def delete(self, namespace: str, name: str) -> None:
        """Remove data set namespace/name; NotFound when it is not stored."""
        if not self.exists(namespace, name):
            raise NotFound(f"data set {namespace}/{name} not found under {self.root_uri}")
        trash = f"{self._root}/{namespace}/{TRASH_PREFIX}{name}-{uuid.uuid4().hex}"
        self._fs.move(self._dir(namespace, name), trash)
        self._fs.delete_dir(trash)

    # ---- internals ------------------------------------------------------------------

    def _dir(self, namespace: str, name: str) -> str:
        return f"{self._root}/{check_name(namespace, 'namespace')}/{check_name(name, 'name')}"

    def _children(self, path: str) -> builtins.list[pafs.FileInfo]:
        if not exists(self._fs, path):
            return []
        infos = self._fs.get_file_info(pafs.FileSelector(path, recursive=False))
        return [info for info in infos if info.type == pafs.FileType.Directory]

    @staticmethod
    def _read_source(source: Source, kind: str) -> bytes:
        if isinstance(source, bytes | bytearray):
            return bytes(source)
        location = str(source)
        filesystem, inner = filesystem_for(location)
        try:
            with filesystem.open_input_stream(inner) as stream:
                return bytes(stream.read())
        except FileNotFoundError as exc:
            raise NotFound(f"{kind} file {location} not found") from exc
        except IsADirectoryError as exc:
            raise InvalidArgument(f"{kind} source {location} is a directory, expected a file") from exc

    def _import(
        self, namespace: str, name: str, data: pa.Table, id_column: str,
        label_column: str | None, overwrite: bool, where: str,
    ) -> DataSetMeta:
        self._check_columns(data.schema, id_column, label_column, where)
        if data.num_rows == 0:
            raise InvalidArgument(f"{where} for {namespace}/{name} has no rows")
        self._check_ids(data.column(id_column), id_column, namespace, name)
        return self._publish(
            namespace, name, overwrite, data.schema, id_column, label_column,
            lambda scratch: self._write_arrow(data, scratch),
        )

    @staticmethod
    def _check_columns(schema: pa.Schema, id_column: str, label_column: str | None, where: str) -> None:
        names = list(schema.names)
        repeated = sorted({column for column in names if names.count(column) > 1})
        if repeated:
            raise InvalidArgument(f"{where} has repeated column names: {', '.join(repeated)}")
        for field, column in (("id_column", id_column), ("label_column", label_column)):
            if column is not None and column not in names:
                raise InvalidArgument(
                    f"{field} {column!r} is not a column of {where}; its columns are: {', '.join(names) or '(none)'}"
                )
        if label_column == id_column:
            raise InvalidArgument(f"label_column and id_column are both {id_column!r}")

    @staticmethod
    def _check_ids(ids: pa.ChunkedArray, id_column: str, namespace: str, name: str) -> None:
        if ids.null_count:
            raise InvalidArgument(f"id column {id_column!r} of {namespace}/{name} has {ids.null_count} empty value(s)")
        counts = pc.value_counts(ids)
        repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
        if len(repeated):
            examples = ", ".join(map(repr, repeated.to_pylist()[:DUPLICATE_EXAMPLES]))
            raise InvalidArgument(
                f"id column {id_column!r} of {namespace}/{name} has {len(repeated)} duplicated "
                f"value(s), e.g. {examples}; ids must be unique"
            )

    def _write_arrow(self, data: pa.Table, scratch: str) -> int:
        self._fs.create_dir(scratch, recursive=True)
        pq.write_table(data, f"{scratch}/{DATA_FILE}", filesystem=self._fs)
        return int(data.num_rows)

    def _write_distributed(self, table: Table, scratch: str, id_column: str, namespace: str, name: str) -> int:
        table.save(f"{self.root_uri}{scratch[len(self._root):]}")
        # A LOCAL table is already in memory; a SPARK one is checked on what it wrote, so
        # its plan is not computed twice.
        written = table if table.backend == BACKEND_LOCAL else table.session.read_parquet(
            f"{self.root_uri}{scratch[len(self._root):]}", id_column
        ).select([id_column])
        nulls = written.reduce(lambda block: block.column(id_column).null_count, _add)
        if nulls:
            raise InvalidArgument(f"id column {id_column!r} of {namespace}/{name} has {nulls} empty value(s)")
        repeated = written.duplicate_ids(DUPLICATE_EXAMPLES)
        if repeated:
            raise InvalidArgument(
                f"id column {id_column!r} of {namespace}/{name} has duplicated values, e.g. "
                f"{', '.join(map(repr, repeated))}; ids must be unique"
            )
        return written.count()

    def _publish(
        self, namespace: str, name: str, overwrite: bool, schema: pa.Schema, id_column: str,
        label_column: str | None, write: Callable[[str], int],
    ) -> DataSetMeta:
        target = self._dir(namespace, name)
        if not overwrite and self.exists(namespace, name):
            raise FailedPrecondition(f"data set {namespace}/{name} already exists; pass overwrite=True to replace it")
        scratch = f"{self._root}/{namespace}/{TEMP_PREFIX}{name}-{uuid.uuid4().hex}"
        try:
            rows = write(scratch)
            meta = DataSetMeta(
                namespace=namespace, name=name, uri=self.uri(namespace, name), rows=rows,
                columns=len(schema), schema=schema_to_json(schema), id_column=id_column,
                label_column=label_column, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            with self._fs.open_output_stream(f"{scratch}/{META_FILE}") as stream:
                stream.write(json.dumps(meta.to_dict(), indent=1).encode())
            self._swap_in(scratch, target, namespace, name)
            return meta
        finally:
            if exists(self._fs, scratch):
                self._fs.delete_dir(scratch)

    def _swap_in(self, scratch: str, target: str, namespace: str, name: str) -> None:
        if not exists(self._fs, target):
            self._fs.move(scratch, target)
            return
        trash = f"{self._root}/{namespace}/{TRASH_PREFIX}{name}-{uuid.uuid4().hex}"
        self._fs.move(target, trash)
        self._fs.move(scratch, target)
        self._fs.delete_dir(trash)


def _add(left: int, right: int) -> int:
    return left + right
