"""UploadDataSet: receive a CSV or Parquet file in chunks, store it as Parquet, register it."""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from kernel.safe_text import check_text
from kernel.storage import DataSetMeta, DataStore, check_name
from protos.weft.v1 import scheduler_pb2
from services.common.db.records import DataSetRecord
from services.common.db.repository import get_data_set, upsert_data_set
from services.scheduler.constants import MAX_UPLOAD_CHUNK_BYTES


def _check_header(header: scheduler_pb2.UploadDataSetHeader) -> None:
    check_name(header.namespace, "header.namespace")
    check_name(header.name, "header.name")
    if header.format not in (scheduler_pb2.DATA_FORMAT_CSV, scheduler_pb2.DATA_FORMAT_PARQUET):
        raise InvalidArgument("header.format: give DATA_FORMAT_CSV or DATA_FORMAT_PARQUET")
    if not header.id_column:
        raise InvalidArgument("header.id_column: required (the column holding the row ids)")
    check_text(header.id_column, "header.id_column")
    check_text(header.label_column, "header.label_column")
    check_text(header.description, "header.description", 4096)
    if header.sha256 and len(header.sha256) != 32:
        raise InvalidArgument(f"header.sha256: expected 32 bytes, got {len(header.sha256)}")
    if len(header.csv_delimiter) > 1:
        raise InvalidArgument(f"header.csv_delimiter: expected one character, got {header.csv_delimiter!r}")


async def _receive(
    requests: AsyncIterator[scheduler_pb2.UploadDataSetRequest], scratch: Path
) -> scheduler_pb2.UploadDataSetHeader:
    """Write the chunks to `scratch`; returns the header once size and digest check out."""
    header: scheduler_pb2.UploadDataSetHeader | None = None
    digest = hashlib.sha256()
    size = 0
    with open(scratch, "wb") as out:
        async for request in requests:
            part = request.WhichOneof("part")
            if header is None:
                if part != "header":
                    raise InvalidArgument("the first UploadDataSet message must be a header")
                header = request.header
                _check_header(header)
                continue
            if part != "chunk":
                raise InvalidArgument("only chunks may follow the header")
            if len(request.chunk) > MAX_UPLOAD_CHUNK_BYTES:
                raise InvalidArgument(f"chunk: {len(request.chunk)} bytes; at most {MAX_UPLOAD_CHUNK_BYTES} per message")
            digest.update(request.chunk)
            size += len(request.chunk)
            await asyncio.to_thread(out.write, request.chunk)
    if header is None:
        raise InvalidArgument("the upload was empty: send a header, then the file's bytes")
    if size == 0:
        raise InvalidArgument(f"{header.namespace}/{header.name}: the upload carried no bytes")
    if header.total_size and header.total_size != size:
        raise InvalidArgument(f"header.total_size says {header.total_size} bytes, {size} arrived")
    if header.sha256 and header.sha256 != digest.digest():
        raise InvalidArgument("header.sha256 does not match the bytes that arrived")
    return header


async def upload_data_set(
    engine: AsyncEngine,
    store: DataStore,
    requests: AsyncIterator[scheduler_pb2.UploadDataSetRequest],
    scratch_dir: Path,
) -> DataSetRecord:
    """Store an uploaded file as data set namespace/name and register it in `data_set`."""
    scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix="upload-") as folder:
        path = Path(folder) / "upload.bin"
        header = await _receive(requests, path)
        registered = await get_data_set(engine, header.namespace, header.name)
        if registered is not None and not header.overwrite:
            raise AlreadyExists(
                f"data set {header.namespace}/{header.name} already exists; set overwrite to replace it"
            )
        label = header.label_column or None
        try:
            if header.format == scheduler_pb2.DATA_FORMAT_CSV:
                meta: DataSetMeta = await asyncio.to_thread(
                    store.import_csv, header.namespace, header.name, str(path), header.id_column, label,
                    header.overwrite, header.csv_delimiter or ",",
                )
            else:
                meta = await asyncio.to_thread(
                    store.import_parquet, header.namespace, header.name, str(path), header.id_column, label,
                    header.overwrite,
                )
        except FailedPrecondition as exc:
            raise AlreadyExists(str(exc)) from None
    record = DataSetRecord(
        namespace=meta.namespace, name=meta.name, uri=meta.uri, row_count=meta.rows, column_count=meta.columns,
        data_schema=list(meta.schema), id_column=meta.id_column, label_column=meta.label_column,
        description=header.description or None,
    )
    await upsert_data_set(engine, record)
    return record
