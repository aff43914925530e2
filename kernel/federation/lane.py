"""The data lane: a task's frame streams to and from its own member's transfer service over a plain socket.

Between a task and its own transfer service (loopback or the member's private network)
gRPC costs more CPU than the bytes it carries: each 1 MiB frame is copied into and out of
gRPC's buffers and handed between its threads on both ends. The lane carries the very same
frames (kernel/federation/wire.py) with nothing around them but a length, so a frame costs
one kernel copy on each side. It serves only `Send` and `Receive` of the internal API; the
service learns nothing new from it and checks everything exactly as for the gRPC calls.
Member-to-member traffic stays gRPC over mutual TLS.

The lane is a Unix socket in Linux's abstract namespace when the internal listener is on
loopback (only processes of the same host reach it, and no port is taken), and a TCP port
on the internal listener's host when `transfer.data_lane_port` names one (tasks in other
pods of the member). A task asks the service where it is with `GetDataLane`.

A record is a 4-byte big-endian length and that many bytes.

- Task -> service: the opening record is `MAGIC`, one byte naming the call (`OPEN_SEND`,
  `OPEN_RECEIVE`), the task's credential (a 2-byte big-endian length, then the token the
  executor gave the task) and, for a receive, the serialized `ReceiveRequest`. A send's
  frames follow, one record each; an empty record ends them. The service reads each record
  within a deadline and closes connections that stay idle.
- Service -> task: data records (a frame of a receive, the `SendAck` of a send) and status
  records, told apart by the top bit of the length (`STATUS_FLAG`); a status record holds a
  gRPC status code byte, then the details in UTF-8. Every call ends with one status record;
  code 0 is success.

Errors reach the caller as `LaneError`, a `grpc.RpcError` with the code and details the
service chose, so callers handle both paths alike.
"""

from __future__ import annotations

import select
import socket
import struct
import sys
from collections.abc import Iterable, Iterator
from typing import Final

import grpc

from kernel.federation.wire import OutFrame, frame_pieces
from protos.weft.v1 import transfer_pb2

MAGIC: Final = b"WEFTLANE2"
#: gRPC metadata key of a member-internal credential (services/common/internal_auth.py).
CREDENTIAL_METADATA: Final = "weft-internal-credential"
#: The variable in which the executor hands a task process its task credential.
TASK_CREDENTIAL_ENV: Final = "WEFT_TASK_CREDENTIAL"
#: Length word of the credential in an opening record.
CREDENTIAL_LENGTH: Final = struct.Struct(">H")
OPEN_SEND: Final = 1
OPEN_RECEIVE: Final = 2
# Set in a record's length word: the record is a status, not data.
STATUS_FLAG: Final = 1 << 31
# Largest record either side accepts: a 1 MiB chunk frame plus room for its framing.
MAX_RECORD_BYTES: Final = 1024 * 1024 + 64 * 1024
LENGTH: Final = struct.Struct(">I")
# A Unix socket's send buffer: room for a few chunk frames, so one usually moves in one read.
UNIX_SEND_BUFFER_BYTES: Final = 4 * 1024 * 1024
# Keepalive probes notice a connection that died silently while a receive waits.
KEEPALIVE_IDLE_S: Final = 30
KEEPALIVE_INTERVAL_S: Final = 10
KEEPALIVE_PROBES: Final = 3

_CODES: Final = {code.value[0]: code for code in grpc.StatusCode}
GET_DATA_LANE_METHOD: Final = "/weft.v1.TransferService/GetDataLane"


class LaneError(grpc.RpcError):  # type: ignore[misc]  # grpc ships no type stubs: RpcError is Any
    """A lane call that failed, with the gRPC status code the service (or the connection) gave."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def status_record(code: grpc.StatusCode, details: str = "") -> bytes:
    """A whole status record (length word included)."""
    body = bytes((code.value[0],)) + details.encode("utf-8", errors="replace")[:MAX_RECORD_BYTES - 1]
    return LENGTH.pack(STATUS_FLAG | len(body)) + body


def status_of(body: bytes) -> tuple[grpc.StatusCode, str]:
    """(code, details) of a status record's body."""
    if not body:
        return grpc.StatusCode.INTERNAL, "an empty status record"
    return _CODES.get(body[0], grpc.StatusCode.UNKNOWN), body[1:].decode("utf-8", errors="replace")


# A lane address: (host, TCP port) or the name of an abstract Unix socket.
LaneAddress = tuple[str, int] | str
LOOPBACK_HOSTS: Final = frozenset({"localhost", "::1", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def abstract_sockets() -> bool:
    """Whether this system has abstract Unix sockets (Linux)."""
    return sys.platform.startswith("linux")


def describe(address: LaneAddress) -> str:
    return f"unix:@{address}" if isinstance(address, str) else f"{address[0]}:{address[1]}"


def split_host_port(endpoint: str) -> tuple[str, int]:
    """("host", port) of "host:port" or "[v6]:port"."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{endpoint!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


def tune(sock: socket.socket) -> None:
    """Records go out at once (no Nagle delay on small ones); dead peers are noticed.

    TCP buffer sizes are left to the kernel (setting them would cap its autotuning); a Unix
    socket's send buffer is raised so a whole chunk frame fits (capped by net.core.wmem_max)."""
    if sock.family == socket.AF_UNIX:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UNIX_SEND_BUFFER_BYTES)
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE_S), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
                              ("TCP_KEEPCNT", KEEPALIVE_PROBES)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


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
