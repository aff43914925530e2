"""The transfer service's end of the data lane (the protocol: kernel/federation/wire/lane.py).

Each connection carries one call, `Send` or `Receive`, served by the same code as the
gRPC calls (`TransferCore.send` / `TransferCore.receive`), so the lane checks and stores
exactly what gRPC would. Sockets are non-blocking and read on demand: a send is read no
faster than its frames are forwarded, which keeps memory bounded by the window as on gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any, Final

import grpc
from google.protobuf.message import DecodeError

from kernel.errors import InvalidArgument, Unavailable, WeftError
from kernel.federation.wire.frames import OutFrame, frame_pieces
from kernel.federation.wire.lane import (
    CREDENTIAL_LENGTH,
    LENGTH,
    MAGIC,
    MAX_RECORD_BYTES,
    OPEN_RECEIVE,
    OPEN_SEND,
    STATUS_FLAG,
    LaneAddress,
    abstract_sockets,
    describe,
    is_loopback,
    split_host_port,
    status_record,
    tune,
)
from protos.weft.v1 import transfer_pb2
from services.common import internal_auth
from services.common.grpc_errors import status_code_of
from services.transfer.core import TransferCore

log = logging.getLogger("weft.transfer.lane")

# A refused send's remaining frames are read and dropped this long at most, so the task
# can read the refusal before the connection closes.
DRAIN_TIMEOUT_S: Final = 30.0
ACCEPT_BACKLOG: Final = 128


class _Closed(Exception):
    """The task closed its end of the connection."""


class _TaskLeft(Unavailable):
    """A send's connection closed before the end of its message (nothing is stored)."""


class _Stalled(Exception):
    """A record did not arrive within its deadline: the connection is closed."""


class _LaneConnection:
    """Records on one accepted, non-blocking socket.

    A record's body must arrive within `record_timeout_s` of its length word, and the next
    record within `idle_timeout_s`: a task that stalls mid-record or goes quiet loses the
    connection (nothing of a send is stored then).
    """

    def __init__(self, sock: socket.socket, record_timeout_s: float = 30.0, idle_timeout_s: float = 300.0) -> None:
        self.sock = sock
        self.loop = asyncio.get_running_loop()
        self.record_timeout_s = record_timeout_s
        self.idle_timeout_s = idle_timeout_s

    async def _fill(self, buffer: bytearray) -> None:
        view = memoryview(buffer)
        got = 0
        while got < len(buffer):
            count = await self.loop.sock_recv_into(self.sock, view[got:])
            if count == 0:
                raise _Closed()
            got += count

    async def record(self, first: bool = False) -> bytes:
        """The next record's body (b"" for the empty record that ends a send's frames).

        The opening record (`first`) must come whole within the record deadline."""
        word = bytearray(LENGTH.size)
        wait = self.record_timeout_s if first else self.idle_timeout_s
        try:
            await asyncio.wait_for(self._fill(word), wait)
        except TimeoutError:
            raise _Stalled(f"no record within {wait:g} s") from None
        (size,) = LENGTH.unpack(word)
        if size & STATUS_FLAG or size > MAX_RECORD_BYTES:
            raise InvalidArgument(f"data lane: a record of {size & ~STATUS_FLAG} bytes (at most {MAX_RECORD_BYTES})")
        if size == 0:
            return b""
        try:
            return await asyncio.wait_for(self._body(size), self.record_timeout_s)
        except TimeoutError:
            raise _Stalled(f"a record of {size} bytes did not arrive within {self.record_timeout_s:g} s") from None

    async def _body(self, size: int) -> bytes:
        # Read as bytes (what gRPC sends on to the peer): a frame that is all there already
        # takes no copy; one that arrives in pieces takes one join.
        parts: list[bytes] = []
        missing = size
        while missing:
            part = await self.loop.sock_recv(self.sock, missing)
            if not part:
                raise _Closed()
            parts.append(part)
            missing -= len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def write(self, *parts: bytes | memoryview) -> None:
        """Write `parts` as they are (the caller includes the length words)."""
        buffers = [memoryview(part) for part in parts]
        while buffers:
            try:
                sent = self.sock.sendmsg(buffers)
            except (BlockingIOError, InterruptedError):
                await self._writable()
                continue
            while buffers and sent >= len(buffers[0]):
                sent -= len(buffers[0])
                buffers.pop(0)
            if buffers and sent:
                buffers[0] = buffers[0][sent:]

    async def _writable(self) -> None:
        ready = self.loop.create_future()
        fd = self.sock.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        self.loop.add_writer(fd, wake)
        try:
            await ready
        finally:
            self.loop.remove_writer(fd)

    async def frame(self, frame: OutFrame) -> None:
        pieces = frame_pieces(frame)
        await self.write(LENGTH.pack(sum(len(piece) for piece in pieces)), *pieces)

    async def status(self, code: grpc.StatusCode, details: str = "") -> None:
        await self.write(status_record(code, details))


def _status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, WeftError):
        return status_code_of(exc), str(exc)
    log.error("data lane call failed", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


class LaneListener:
    """Accepts lane connections and serves their calls.

    `address` is (host, TCP port) or the name of an abstract Unix socket (see
    kernel/federation/wire/lane.py).
    """

    def __init__(self, core: TransferCore, address: LaneAddress) -> None:
        self.core = core
        self.address = address
        settings = core.config.transfer
        self.record_timeout_s = settings.lane_record_timeout_s
        self.idle_timeout_s = settings.lane_idle_timeout_s
        self.max_connections = settings.lane_max_connections
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._refusals: set[asyncio.Task[None]] = set()

    @classmethod
    def for_config(cls, core: TransferCore, internal_listen: str, internal_port: int,
                   data_lane_port: int) -> LaneListener | None:
        """The lane `transfer.data_lane_port` asks for next to the internal listener (None: off)."""
        host = split_host_port(internal_listen)[0]
        if data_lane_port > 0:
            return cls(core, (host, data_lane_port))
        if data_lane_port == 0 and is_loopback(host) and abstract_sockets():
            return cls(core, f"weft-transfer-lane-{core.member_id}-{internal_port}")
        return None

    def describe(self) -> transfer_pb2.DataLane:
        """What GetDataLane answers."""
        if isinstance(self.address, str):
            return transfer_pb2.DataLane(unix_name=self.address)
        return transfer_pb2.DataLane(port=self.address[1])

    async def start(self) -> None:
        try:
            if isinstance(self.address, str):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                bind_to: Any = "\0" + self.address
            else:
                family, kind, proto, _, bind_to = socket.getaddrinfo(
                    *self.address, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
                sock = socket.socket(family, kind, proto)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        except OSError as exc:
            raise Unavailable(f"transfer.data_lane_port: cannot listen on {describe(self.address)}: {exc}") from None
        try:
            sock.bind(bind_to)
            sock.listen(ACCEPT_BACKLOG)
        except OSError as exc:
            sock.close()
            raise Unavailable(f"transfer.data_lane_port: cannot listen on {describe(self.address)}: {exc}") from None
        sock.setblocking(False)
        self._sock = sock
        self._accepting = asyncio.create_task(self._accept())

    async def stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        for call in list(self._calls):
            call.cancel()
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()

    async def _accept(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(self._sock)
            except OSError as exc:  # out of file descriptors and the like: keep serving
                log.warning("data lane: accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            if len(self._calls) >= self.max_connections:
                self._spawn_refusal(sock)
                continue
            call = asyncio.create_task(self._serve(sock))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    def _spawn_refusal(self, sock: socket.socket) -> None:
        """Answer a connection over the cap with RESOURCE_EXHAUSTED and close it."""
        async def refuse() -> None:
            sock.setblocking(False)
            try:
                await asyncio.wait_for(_LaneConnection(sock).status(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"transfer.lane_max_connections: {self.max_connections} data lane connections are open"),
                    self.record_timeout_s)
            except (OSError, TimeoutError):
                pass
            finally:
                sock.close()

        log.warning("data lane: refused a connection, %d are open (transfer.lane_max_connections)",
                    self.max_connections)
        task = asyncio.create_task(refuse())
        self._refusals.add(task)
        task.add_done_callback(self._refusals.discard)

    def _task_job(self, body: bytes) -> tuple[str, bytes]:
        """The job of the task credential at the start of an opening's body, and the rest."""
        if len(body) < CREDENTIAL_LENGTH.size:
            raise InvalidArgument("data lane: the opening record has no credential length")
        (length,) = CREDENTIAL_LENGTH.unpack_from(body)
        start = CREDENTIAL_LENGTH.size
        token = body[start:start + length].decode("ascii", "replace")
        claims = internal_auth.verify(self.core.key, token, {internal_auth.TASK}, what="a data lane call")
        return claims.job, body[start + length:]

    async def _serve(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        tune(sock)
        connection = _LaneConnection(sock, self.record_timeout_s, self.idle_timeout_s)
        try:
            opening = await connection.record(first=True)
            if not opening.startswith(MAGIC) or len(opening) <= len(MAGIC):
                await connection.status(grpc.StatusCode.INVALID_ARGUMENT, "not a data lane call")
                return
            call = opening[len(MAGIC)]
            if call not in (OPEN_SEND, OPEN_RECEIVE):
                await connection.status(grpc.StatusCode.INVALID_ARGUMENT, f"unknown data lane call {call}")
                return
            try:
                job, body = self._task_job(opening[len(MAGIC) + 1:])
            except WeftError as exc:
                log.warning("data lane: refused a call: %s", exc)
                await connection.status(*_status_of(exc))
                return
            if call == OPEN_SEND:
                await self._send(connection, job)
            else:
                await self._receive(connection, body, job)
        except _Stalled as exc:
            log.warning("data lane: closed a connection: %s", exc)
        except (_Closed, ConnectionError):
            log.info("data lane: a task closed its connection mid-call")
        except InvalidArgument as exc:  # a malformed record
            with contextlib.suppress(OSError):
                await connection.status(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        finally:
            sock.close()

    async def _send(self, connection: _LaneConnection, job: str) -> None:
        async def frames() -> AsyncIterator[bytes]:
            try:
                while record := await connection.record():
                    yield record
            except _Closed:
                raise _TaskLeft("the task closed the data lane before the end of its message") from None

        stream = frames()
        try:
            ack = await self.core.send(stream, job)
        except _TaskLeft as exc:
            log.info("data lane: %s", exc)
            return
        except _Stalled:
            raise
        except Exception as exc:
            await connection.status(*_status_of(exc))
            await self._drain(stream)
            return
        async for _ in stream:  # the empty record after the end frame
            pass
        await connection.frame(ack.SerializeToString())
        await connection.status(grpc.StatusCode.OK)

    async def _drain(self, stream: AsyncIterator[bytes]) -> None:
        """Read and drop what the task still sends (it stops once it sees the refusal)."""
        async def drop() -> None:
            async for _ in stream:
                pass

        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(drop(), DRAIN_TIMEOUT_S)

    async def _receive(self, connection: _LaneConnection, body: bytes, job: str) -> None:
        try:
            request = transfer_pb2.ReceiveRequest.FromString(body)
        except DecodeError as exc:
            await connection.status(grpc.StatusCode.INVALID_ARGUMENT, f"a ReceiveRequest that does not parse: {exc}")
            return
        streaming = asyncio.create_task(self._stream(connection, request, job))
        # The task sends nothing more: a readable socket means it went away (a receive may
        # wait long for its message, and must not keep it or stay counted as waiting).
        gone = asyncio.create_task(connection.loop.sock_recv(connection.sock, 1))
        try:
            await asyncio.wait({streaming, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, gone):
                if not task.done():
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await gone
        if not streaming.cancelled():
            await streaming  # its own errors were answered; connection errors end the call here

    async def _stream(self, connection: _LaneConnection, request: transfer_pb2.ReceiveRequest, job: str) -> None:
        try:
            async with contextlib.aclosing(self.core.receive(request, job)) as frames:
                async for frame in frames:
                    await connection.frame(frame)
        except (ConnectionError, _Closed):
            raise
        except Exception as exc:
            await connection.status(*_status_of(exc))
            return
        await connection.status(grpc.StatusCode.OK)
