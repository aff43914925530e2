"""The data lane's records: what a task and its own member's transfer service say over a plain socket.

Between a task and its own transfer service (loopback or the member's private network)
gRPC costs more CPU than the bytes it carries: each 1 MiB frame is copied into and out of
gRPC's buffers and handed between its threads on both ends. The lane carries the very same
frames (`kernel.federation.wire.frames`) with nothing around them but a length, so a frame costs
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

The task's end is `kernel.federation.lane`, the service's `services.transfer.lane`.
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Final

import grpc

from kernel.federation.wire.frames import MAX_FRAME_BYTES

MAGIC: Final = b"WEFTLANE2"
#: gRPC metadata key of a member-internal credential (services/common/internal_auth.py).
CREDENTIAL_METADATA: Final = "weft-internal-credential"
#: gRPC metadata key (binary) of a delivery ticket on a task's direct Deliver (services/transfer/tickets.py).
TICKET_METADATA: Final = "weft-ticket-bin"
#: The variable in which the executor hands a task process its task credential.
TASK_CREDENTIAL_ENV: Final = "WEFT_TASK_CREDENTIAL"
#: Length word of the credential in an opening record.
CREDENTIAL_LENGTH: Final = struct.Struct(">H")
OPEN_SEND: Final = 1
OPEN_RECEIVE: Final = 2
# Set in a record's length word: the record is a status, not data.
STATUS_FLAG: Final = 1 << 31
# Largest record either side accepts: a whole chunk frame.
MAX_RECORD_BYTES: Final = MAX_FRAME_BYTES
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
