"""The task's end of the data lane: its frame streams to and from its own member's transfer service.

The records and their rules are `kernel.federation.wire.lane`; the service's end is
`services.transfer.lane`. A call that cannot use the lane goes over gRPC with the same
frames, and a lane error is a `grpc.RpcError`, so callers handle both paths alike.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterable, Iterator

import grpc

from kernel.federation.wire.frames import OutFrame, frame_pieces
from kernel.federation.wire.lane import (
    CREDENTIAL_LENGTH,
    CREDENTIAL_METADATA,
    GET_DATA_LANE_METHOD,
    LENGTH,
    MAGIC,
    MAX_RECORD_BYTES,
    OPEN_RECEIVE,
    OPEN_SEND,
    STATUS_FLAG,
    LaneAddress,
    LaneError,
    abstract_sockets,
    describe,
    split_host_port,
    status_of,
    tune,
)
from protos.weft.v1 import transfer_pb2


class _Connection:
    """One blocking lane connection of a task."""

    def __init__(self, address: LaneAddress, connect_timeout: float) -> None:
        self.address = address
        try:
            if isinstance(address, str):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    self.sock.settimeout(connect_timeout)
                    self.sock.connect("\0" + address)
                except OSError:
                    self.sock.close()
                    raise
            else:
                self.sock = socket.create_connection(address, timeout=connect_timeout)
        except OSError as exc:
            raise LaneError(grpc.StatusCode.UNAVAILABLE, f"cannot reach the data lane at {self._where()}: {exc}") from None
        self.sock.settimeout(None)
        tune(self.sock)

    def _where(self) -> str:
        return describe(self.address)

    def close(self) -> None:
        self.sock.close()

    def _lost(self, exc: BaseException | str) -> LaneError:
        return LaneError(grpc.StatusCode.UNAVAILABLE, f"the data lane at {self._where()} closed the call: {exc}")

    def write(self, *parts: bytes | memoryview) -> None:
        """One record made of `parts`."""
        size = sum(len(part) for part in parts)
        buffers = [memoryview(LENGTH.pack(size)), *(memoryview(part).cast("B") for part in parts)]
        try:
            while buffers:
                sent = self.sock.sendmsg(buffers)
                while buffers and sent >= len(buffers[0]):
                    sent -= len(buffers[0])
                    buffers.pop(0)
                if buffers and sent:
                    buffers[0] = buffers[0][sent:]
        except OSError as exc:
            raise self._lost(exc) from None

    def _exactly(self, size: int) -> bytes:
        try:
            data = self.sock.recv(size, socket.MSG_WAITALL)
            while len(data) < size:  # a signal cut the wait short, or the service closed
                more = self.sock.recv(size - len(data), socket.MSG_WAITALL)
                if not more:
                    raise self._lost("end of stream")
                data += more
        except OSError as exc:
            raise self._lost(exc) from None
        return data

    def read(self) -> tuple[bool, bytes]:
        """(is a status, body) of the next record from the service."""
        (word,) = LENGTH.unpack(self._exactly(LENGTH.size))
        size = word & ~STATUS_FLAG
        if size > MAX_RECORD_BYTES:
            raise LaneError(grpc.StatusCode.INTERNAL, f"the data lane sent a record of {size} bytes")
        return bool(word & STATUS_FLAG), self._exactly(size) if size else b""

    def answered(self) -> bool:
        """True when the service has written something (it only does mid-send to refuse)."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)


def _raise_unless_ok(body: bytes) -> None:
    code, details = status_of(body)
    if code != grpc.StatusCode.OK:
        raise LaneError(code, details)


class LaneClient:
    """Send and Receive of the internal API over the data lane (blocking; one connection per call)."""

    def __init__(self, address: LaneAddress, connect_timeout: float = 10.0, credential: str = "") -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self.credential = credential

    def _opening(self, call: int) -> bytes:
        token = self.credential.encode("ascii")
        return MAGIC + bytes((call,)) + CREDENTIAL_LENGTH.pack(len(token)) + token

    def send(self, frames: Iterable[OutFrame]) -> transfer_pb2.SendAck:
        """Stream a message's frames; the SendAck once the destination stored it.

        A chunk frame given as (prefix, payload) goes out as those two pieces: the payload
        is not copied into a frame first."""
        connection = _Connection(self.address, self.connect_timeout)
        try:
            connection.write(self._opening(OPEN_SEND))
            refused = False
            for frame in frames:
                if connection.answered():  # refused mid-stream: stop sending, read why
                    refused = True
                    break
                connection.write(*frame_pieces(frame))
            if not refused:
                connection.write()
            ack: transfer_pb2.SendAck | None = None
            while True:
                is_status, body = connection.read()
                if is_status:
                    _raise_unless_ok(body)
                    break
                ack = transfer_pb2.SendAck.FromString(body)
            if ack is None:
                raise LaneError(grpc.StatusCode.INTERNAL, "the data lane ended a send without its acknowledgement")
            return ack
        finally:
            connection.close()

    def receive(self, request: transfer_pb2.ReceiveRequest) -> FrameStream:
        """The frames of the message `request` names, as they arrive (the call starts at once)."""
        connection = _Connection(self.address, self.connect_timeout)
        try:
            connection.write(self._opening(OPEN_RECEIVE), request.SerializeToString())
        except BaseException:
            connection.close()
            raise
        return FrameStream(connection)


class FrameStream:
    """The frames of one lane receive; `close` ends the call (the message stays for another reader)."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        try:
            is_status, body = self._connection.read()
            if not is_status:
                return body
            self.close()
            _raise_unless_ok(body)
        except BaseException:
            self.close()
            raise
        raise StopIteration

    def close(self) -> None:
        self._done = True
        self._connection.close()

def lane_of(channel: grpc.Channel, endpoint: str, timeout: float = 10.0, credential: str = "") -> LaneClient | None:
    """The data lane of the transfer service at `endpoint` (reached through `channel`); None
    when the service runs without one. `credential` is the task's (sent on every call)."""
    get_lane = channel.unary_unary(
        GET_DATA_LANE_METHOD, request_serializer=transfer_pb2.GetDataLaneRequest.SerializeToString,
        response_deserializer=transfer_pb2.DataLane.FromString)
    try:
        lane: transfer_pb2.DataLane = get_lane(transfer_pb2.GetDataLaneRequest(), timeout=timeout,
                                               metadata=((CREDENTIAL_METADATA, credential),))
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
            return None
        raise
    if lane.unix_name and abstract_sockets():
        return LaneClient(lane.unix_name, credential=credential)
    if lane.port > 0:
        return LaneClient((split_host_port(endpoint)[0], lane.port), credential=credential)
    return None
