"""CLUSTER federation: a task's messages travel through its member's transfer service.

Frames go over the service's data lane when it has one (kernel/federation/lane.py), over
its gRPC Send / Receive otherwise; both raise the same errors. A message of at least
`transfer.direct_min_bytes` to another member goes straight to that member's transfer
service with a delivery ticket when the member has a task certificate
(kernel/federation/direct.py); receiving always goes through the own service.
"""

from __future__ import annotations

import io
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final, TypeAlias

import grpc
import pyarrow as pa

from kernel.errors import (
    ChecksumMismatch,
    FailedPrecondition,
    FederationError,
    FederationTimeout,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    WeftError,
)
from kernel.federation.base import Federation, Party, RoleTable, Waiting
from kernel.federation.direct import DirectPath
from kernel.federation.lane import LaneClient, lane_of
from kernel.federation.wire.frames import (
    MAX_CHUNK_BYTES,
    MAX_FRAME_BYTES,
    OutFrame,
    checksum_of,
    chunk_parts,
    encode_end,
    encode_header,
    frame_bytes,
    new_checksum,
    parse_frame,
)
from kernel.federation.wire.lane import CREDENTIAL_METADATA, TASK_CREDENTIAL_ENV, LaneError
from kernel.federation.wire.messages import to_proto_party
from kernel.retry import Backoff, retry_sync
from protos.weft.v1 import transfer_pb2

# Payloads are cut into chunks of the contract's largest size.
CHUNK_BYTES: Final = MAX_CHUNK_BYTES
# Tables are cut into record batches of about this many bytes before they are streamed.
TABLE_BATCH_BYTES: Final = 4 * 1024 * 1024
# Chunks a table fan-out may hold per destination while the slowest one catches up.
FANOUT_QUEUE_CHUNKS: Final = 8
# The transfer service's frame streams, called with frames as bytes (kernel/federation/wire/frames.py).
SEND_METHOD: Final = "/weft.v1.TransferService/Send"
RECEIVE_METHOD: Final = "/weft.v1.TransferService/Receive"
# The local transfer service restarting: retry a send or receive for about 30 seconds (the
# deadline ends the retries, not the attempts: docs/transfer.md promises the 30 seconds).
LOCAL_BACKOFF: Final = Backoff(attempts=1000, base_delay=0.1, max_delay=2.0, deadline=30.0)
CHANNEL_OPTIONS: Final = (
    ("grpc.max_send_message_length", MAX_FRAME_BYTES),
    ("grpc.max_receive_message_length", MAX_FRAME_BYTES),
    # A Receive has no client deadline (the service enforces the wait; reading a big
    # table may take longer): keepalive pings notice a connection that died silently.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)

_STATUS_ERRORS: Final[dict[grpc.StatusCode, type[WeftError]]] = {
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.DEADLINE_EXCEEDED: FederationTimeout,
    grpc.StatusCode.DATA_LOSS: ChecksumMismatch,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}

TableSource: TypeAlias = "pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch]"


def error_for_status(code: grpc.StatusCode, message: str) -> WeftError:
    """The project exception that carries a gRPC status code (FederationError for the rest)."""
    return _STATUS_ERRORS.get(code, FederationError)(message)


def _is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE


class _ChunkSink:
    """A write-only file for the Arrow IPC writer that hands out what was written in chunks."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.closed = False

    def write(self, data: bytes | memoryview) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        """Nothing to flush: bytes are taken by `take`."""

    def close(self) -> None:
        self.closed = True

    def take(self, everything: bool) -> Iterator[bytes]:
        """Whole chunks written so far (and the rest too when `everything`)."""
        offset = 0
        try:
            while len(self.buffer) - offset >= CHUNK_BYTES or (everything and offset < len(self.buffer)):
                with memoryview(self.buffer) as view:
                    piece = bytes(view[offset:offset + CHUNK_BYTES])
                offset += len(piece)
                yield piece
        finally:
            del self.buffer[:offset]  # once per batch, not once per chunk


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for the Arrow IPC reader)."""

    def __init__(self, chunks: Iterator[bytes | memoryview]) -> None:
        self._chunks = chunks
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._current:
            try:
                self._current = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n


def _batches(source: TableSource) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    if isinstance(source, pa.Table):
        rows_per_batch = max(1, TABLE_BATCH_BYTES * max(source.num_rows, 1) // max(source.nbytes, 1))
        return source.schema, iter(source.to_batches(max_chunksize=rows_per_batch))
    if isinstance(source, pa.RecordBatchReader):
        return source.schema, iter(source)
    iterator: Iterator[pa.RecordBatch] = iter(source)
    try:
        first = next(iterator)
    except StopIteration:
        raise InvalidArgument("remote_table: the batch iterator is empty, so it has no schema") from None
    if not isinstance(first, pa.RecordBatch):
        raise InvalidArgument(f"remote_table: expected pyarrow RecordBatches, got {type(first).__name__}")

    def chained() -> Iterator[pa.RecordBatch]:
        yield first
        yield from iterator

    return first.schema, chained()


def arrow_ipc_chunks(source: TableSource) -> Iterator[bytes]:
    """A table (or batches) as an Arrow IPC stream cut into chunks of at most 1 MiB."""
    schema, batches = _batches(source)
    sink = _ChunkSink()
    writer = pa.ipc.new_stream(sink, schema)
    for batch in batches:
        if not batch.schema.equals(schema):
            raise InvalidArgument("remote_table: every record batch must have the first batch's schema")
        writer.write_batch(batch)
        yield from sink.take(everything=False)
    writer.close()
    yield from sink.take(everything=True)


class ClusterFederation(Federation):
    """Federation through the transfer service of this task's member (work_mode CLUSTER).

    Objects are codec-encoded and sent as one message; tables can also be streamed as
    Arrow IPC batches with `remote_table` / `get_table` / `iter_table` / `save_table`, so
    neither side holds a whole table in memory.
    """

    def __init__(self, endpoint: str, session_id: str, local: Party, roles: RoleTable,
                 credential: str | None = None) -> None:
        """`credential`: the task credential the executor gave this task (default: from
        the `WEFT_TASK_CREDENTIAL` variable); the transfer service answers no call without it."""
        super().__init__(session_id, local, roles)
        self.endpoint = endpoint
        self.credential = os.environ.get(TASK_CREDENTIAL_ENV, "") if credential is None else credential
        self._metadata = ((CREDENTIAL_METADATA, self.credential),)
        self.channel = grpc.insecure_channel(endpoint, options=list(CHANNEL_OPTIONS))
        self._send = self.channel.stream_unary(
            SEND_METHOD, request_serializer=None, response_deserializer=transfer_pb2.SendAck.FromString)
        self._receive = self.channel.unary_stream(
            RECEIVE_METHOD, request_serializer=transfer_pb2.ReceiveRequest.SerializeToString,
            response_deserializer=None)
        self._lane: LaneClient | None = None
        self._lane_known = False
        self.direct = DirectPath(self.channel, self._metadata)

    # ---- the two calls, over the data lane or gRPC ---------------------------------------

    def _data_lane(self) -> LaneClient | None:
        if not self._lane_known:
            self._lane = lane_of(self.channel, self.endpoint, credential=self.credential)
            self._lane_known = True
        return self._lane

    def _forget_lane(self, exc: LaneError) -> None:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:  # the service may be back on another port
            self._lane_known = False

    def _call_send(self, frames: Iterator[OutFrame]) -> transfer_pb2.SendAck:
        lane = self._data_lane()
        if lane is None:
            ack: transfer_pb2.SendAck = self._send((frame_bytes(frame) for frame in frames), metadata=self._metadata)
            return ack
        try:
            return lane.send(frames)
        except LaneError as exc:
            self._forget_lane(exc)
            raise

    def _call_receive(self, request: transfer_pb2.ReceiveRequest) -> Iterator[bytes]:
        lane = self._data_lane()
        if lane is None:
            yield from self._receive(request, metadata=self._metadata)
            return
        try:
            yield from lane.receive(request)
        except LaneError as exc:
            self._forget_lane(exc)
            raise

    # ---- sending ---------------------------------------------------------------------

    def _header(self, name: str, tag: str, dst: Party, kind: transfer_pb2.PayloadKind, size: int = 0,
                checksum: bytes = b"") -> transfer_pb2.FrameHeader:
        return transfer_pb2.FrameHeader(
            message_id=uuid.uuid4().hex, session_id=self.session_id, name=name, tag=tag,
            src=to_proto_party(self.local), dst=to_proto_party(dst), total_size=size, checksum=checksum,
            kind=kind, created_at_ms=int(time.time() * 1000),
        )

    def _deliver(self, frames: Callable[[], Iterator[OutFrame]], dst: Party, size: int | None) -> transfer_pb2.SendAck:
        """Send one message: direct when it is large enough (`size`, None for a one-pass stream), else
        through the service."""
        if size is not None and dst.member_id != self.local.member_id and self.direct.wants(size, dst.member_id):
            ack = self.direct.send(frames, self.session_id, dst.member_id)
            if ack is not None:
                return transfer_pb2.SendAck(message_id=ack.message_id, stored_size=ack.stored_size,
                                            duplicate=ack.duplicate)
        return self._call_send(frames())

    def _send_frames(self, frames: Callable[[], Iterator[OutFrame]], name: str, tag: str,
                     dst: Party, retry: bool, size: int | None = None) -> transfer_pb2.SendAck:
        """`size`: the payload's size (about, for a table) when `frames` can be called again."""
        try:
            if retry:  # the same message id each time: the receiver drops a second copy
                return retry_sync(lambda: self._deliver(frames, dst, size), _is_unavailable, LOCAL_BACKOFF)
            return self._call_send(frames())
        except grpc.RpcError as exc:
            raise error_for_status(
                exc.code(),
                f"sending {name} (tag {tag!r}) to {dst} failed: {exc.details()}",
            ) from None

    def _send_bytes(self, name: str, tag: str, payload: bytes, dst: Party) -> None:
        checksum = checksum_of(payload)
        header = self._header(name, tag, dst, transfer_pb2.PAYLOAD_KIND_OBJECT, len(payload), checksum)
        view = memoryview(payload)

        def frames() -> Iterator[OutFrame]:
            yield encode_header(header)
            seq = 0
            for offset in range(0, len(view), CHUNK_BYTES):
                yield chunk_parts(seq, view[offset:offset + CHUNK_BYTES])
                seq += 1
            yield encode_end(seq, len(payload), checksum)

        self._send_frames(frames, name, tag, dst, retry=True, size=len(payload))

    def _mark_sent(self, name: str, tag: str, parties: list[Party]) -> None:
        for party in parties:
            key = (name, tag, party)
            if key in self._sent:
                raise FederationError(f"{name} with tag {tag!r} was already sent to {party}")
            self._sent.add(key)

    def remote_table(self, name: str, tag: str, table: TableSource, parties: list[Party]) -> None:
        """Stream a table to each party as Arrow IPC batches (memory: one batch, not the table).

        `table` is a pyarrow Table, a RecordBatchReader or an iterable of RecordBatches. A
        Table is streamed to the parties one after the other; a one-pass reader or iterator
        is read once and fanned out to every party at the same time.
        """
        self._mark_sent(name, tag, parties)
        if isinstance(table, pa.Table) or len(parties) == 1:
            for party in parties:
                whole = isinstance(table, pa.Table)
                self._send_table_stream(name, tag, party, lambda: arrow_ipc_chunks(table), retry=whole,
                                        size=table.nbytes if isinstance(table, pa.Table) else None)
            return
        self._fan_out_table(name, tag, table, parties)

    def _send_table_stream(self, name: str, tag: str, dst: Party,
                           chunks: Callable[[], Iterator[bytes]], retry: bool, size: int | None = None) -> None:
        header = self._header(name, tag, dst, transfer_pb2.PAYLOAD_KIND_TABLE)
        source_errors: list[BaseException] = []

        def frames() -> Iterator[OutFrame]:
            yield encode_header(header)
            checksum = new_checksum()
            seq = size = 0
            try:
                for data in chunks():
                    checksum.update(data)
                    yield chunk_parts(seq, data)
                    seq += 1
                    size += len(data)
            except Exception as exc:
                # gRPC would swallow it; stop without an end frame so nothing is stored.
                source_errors.append(exc)
                return
            yield encode_end(seq, size, checksum.digest())

        try:
            self._send_frames(frames, name, tag, dst, retry, size)
        except WeftError:
            if source_errors:
                raise source_errors[0] from None
            raise

    def _fan_out_table(self, name: str, tag: str, table: TableSource, parties: list[Party]) -> None:
        done, failed = object(), object()
        queues: list[queue.Queue[Any]] = [queue.Queue(FANOUT_QUEUE_CHUNKS) for _ in parties]
        errors: list[BaseException] = []

        finished = [False] * len(parties)

        def from_queue(index: int) -> Iterator[bytes]:
            while (item := queues[index].get()) is not done:
                if item is failed:
                    finished[index] = True
                    raise FederationError(f"{name} (tag {tag!r}): the table source failed")
                yield item
            finished[index] = True

        def send(index: int) -> None:
            try:
                self._send_table_stream(name, tag, parties[index], lambda: from_queue(index), retry=False)
            except BaseException as exc:  # reported by the producing thread below
                errors.append(exc)
            finally:
                # A failed party keeps draining its queue so the producer never blocks on it.
                while not finished[index]:
                    finished[index] = queues[index].get() in (done, failed)

        workers = [threading.Thread(target=send, args=(index,), daemon=True) for index in range(len(parties))]
        for worker in workers:
            worker.start()
        outcome = failed
        try:
            for data in arrow_ipc_chunks(table):
                for q in queues:
                    q.put(data)
            outcome = done
        finally:
            for q in queues:
                q.put(outcome)
            for worker in workers:
                worker.join()
        if errors:
            raise errors[0]

    # ---- receiving -------------------------------------------------------------------

    def _timeout_error(self, name: str, tag: str, src: Party, timeout: float) -> FederationTimeout:
        return FederationTimeout(f"timed out after {timeout:g}s waiting for {name} (tag {tag!r}) from {src}")

    def _receive_chunks(self, name: str, tag: str, src: Party, timeout: float,
                        header_seen: Callable[[transfer_pb2.FrameHeader], None] | None = None,
                        ) -> Iterator[memoryview]:
        """The payload chunks of one message as they arrive (the checksum verified at the end frame)."""
        request = transfer_pb2.ReceiveRequest(
            session_id=self.session_id, name=name, tag=tag, src=to_proto_party(src), dst=to_proto_party(self.local),
            timeout_ms=max(1, int(timeout * 1000)),
        )
        try:
            stream = self._call_receive(request)
            checksum = new_checksum()
            seq = size = 0
            ended = False
            for raw in stream:
                frame = parse_frame(raw)
                kind = frame.kind
                if kind == "header":
                    if header_seen is not None and frame.header is not None:
                        header_seen(frame.header)
                elif kind == "chunk":
                    if frame.seq != seq:
                        raise FederationError(f"{name} (tag {tag!r}) from {src}: chunk {frame.seq} out of order")
                    checksum.update(frame.data)
                    seq += 1
                    size += len(frame.data)
                    yield frame.data
                elif kind == "end" and frame.end is not None:
                    if frame.end.checksum != checksum.digest() or frame.end.total_size != size:
                        raise ChecksumMismatch(f"{name} (tag {tag!r}) from {src}: checksum mismatch")
                    ended = True
            if not ended:
                raise FederationError(f"{name} (tag {tag!r}) from {src}: the stream ended before its end frame")
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise self._timeout_error(name, tag, src, timeout) from None
            raise error_for_status(
                code, f"receiving {name} (tag {tag!r}) from {src} failed: {exc.details()}"
            ) from None

    def _receive_bytes(self, name: str, tag: str, src: Party, timeout: float) -> bytes:
        def receive() -> bytes:
            return b"".join(self._receive_chunks(name, tag, src, timeout))

        try:
            return retry_sync(receive, lambda exc: isinstance(exc, Unavailable), LOCAL_BACKOFF)
        except Unavailable as exc:
            raise Unavailable(f"the transfer service at {self.endpoint} is unreachable: {exc}") from None

    def _mark_received(self, name: str, tag: str, src: Party) -> None:
        key = (name, tag, src)
        if key in self._received:
            raise FederationError(f"{name} with tag {tag!r} was already received from {src}")
        self._received.add(key)

    def _table_stream(self, name: str, tag: str, src: Party, timeout: float) -> Iterator[pa.Schema | pa.RecordBatch]:
        """The table's schema, then its record batches as they arrive."""
        self._mark_received(name, tag, src)

        waiting = Waiting(name, tag, src, time.time())

        def check_kind(header: transfer_pb2.FrameHeader) -> None:
            self._waiting(None)  # the table has started to arrive
            if header.kind != transfer_pb2.PAYLOAD_KIND_TABLE:
                raise FederationError(f"{name} (tag {tag!r}) from {src} is not a table message")

        chunks = self._receive_chunks(name, tag, src, timeout, check_kind)
        self._waiting(waiting)
        try:
            reader = pa.ipc.open_stream(io.BufferedReader(_ChunkReader(chunks), CHUNK_BYTES))
            yield reader.schema
            yield from reader
        except pa.ArrowInvalid as exc:
            raise FederationError(f"{name} (tag {tag!r}) from {src}: malformed Arrow stream: {exc}") from None
        except FederationTimeout as exc:
            raise FederationTimeout(f"{waiting.sentence()} (get timeout {timeout:g} s): {exc}") from None
        finally:
            self._waiting(None)
        for _ in chunks:  # read to the end frame so the checksum is verified
            pass

    def iter_table(self, name: str, tag: str, src: Party, timeout: float) -> Iterator[pa.RecordBatch]:
        """The record batches of a table `src` sent with `remote_table`, as they arrive."""
        for item in self._table_stream(name, tag, src, timeout):
            if isinstance(item, pa.RecordBatch):
                yield item

    def get_table(self, name: str, tag: str, src: Party, timeout: float) -> pa.Table:
        """A whole table `src` sent with `remote_table`."""
        stream = self._table_stream(name, tag, src, timeout)
        schema = next(stream)
        assert isinstance(schema, pa.Schema)
        return pa.Table.from_batches([b for b in stream if isinstance(b, pa.RecordBatch)], schema=schema)

    def save_table(self, name: str, tag: str, src: Party, path: str | Path, timeout: float) -> int:
        """Write a table `src` sent with `remote_table` to a Parquet file as it arrives; returns rows."""
        import pyarrow.parquet as pq

        target = Path(path)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        stream = self._table_stream(name, tag, src, timeout)
        schema = next(stream)
        assert isinstance(schema, pa.Schema)
        rows = 0
        try:
            with pq.ParquetWriter(temp, schema) as writer:
                for batch in stream:
                    if isinstance(batch, pa.RecordBatch):
                        writer.write_batch(batch)
                        rows += batch.num_rows
            temp.replace(target)
        finally:
            temp.unlink(missing_ok=True)
        return rows

    def close(self) -> None:
        self.direct.close()
        self.channel.close()
