"""A task's direct path: a large message goes straight to the destination member's transfer service.

On the service path a task's frames cross its own member's transfer service, which
forwards them to the destination member over mutual TLS. For a message of at least
`transfer.direct_min_bytes` (the service reports it in `GetDataLane`) the task skips that
hop: it asks its service for a delivery ticket (`IssueTicket`: the ticket, the peer's
endpoint, the federation CA, the peer's TLS name and the member's task certificate and
key, all over the internal channel, so a task needs no files), opens a TLS channel to the
peer's external listener with the task certificate and calls `Deliver` with the same
frames the service would send and the ticket in the `weft-ticket-bin` metadata. The peer
checks the ticket (services/transfer/tickets.py) and then the message as for any delivery.

Tickets are kept per (session, destination) until shortly before they expire, channels per
(endpoint, certificate). A Deliver that finds the peer UNAVAILABLE is retried with
backoff. When the member has no task certificate (IssueTicket: FAILED_PRECONDITION) the
client stops trying; when the peer stays unreachable or refuses the task certificate
(an older peer, say) the message, and later ones to that member, go through the service,
which checks everything again. A message sent again after a stream broke keeps its
message id, and the peer's mailbox drops a second copy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import grpc

from kernel.federation.wire.frames import MAX_FRAME_BYTES, OutFrame, frame_bytes
from kernel.federation.wire.lane import GET_DATA_LANE_METHOD, TICKET_METADATA
from kernel.retry import Backoff, retry_sync
from protos.weft.v1 import transfer_pb2

log = logging.getLogger("weft.task.direct")

ISSUE_TICKET_METHOD: Final = "/weft.v1.TransferService/IssueTicket"
DELIVER_METHOD: Final = "/weft.v1.TransferPeerService/Deliver"
#: A ticket is asked for again when it has less than this left.
TICKET_RENEW_S: Final = 60.0
#: Deliver retried while the peer is UNAVAILABLE (a restart, say) before the service path takes over.
DIRECT_BACKOFF: Final = Backoff(attempts=8, base_delay=0.1, max_delay=2.0, deadline=10.0)
#: Channel options toward a peer's external listener (a member's service uses the same): reconnect
#: quickly after a peer restarts, keep the channel alive.
PEER_CHANNEL_OPTIONS: Final[tuple[tuple[str, int], ...]] = (
    ("grpc.max_send_message_length", MAX_FRAME_BYTES),
    ("grpc.max_receive_message_length", MAX_FRAME_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)
# Answers of the peer after which the service path is used instead (it checks everything again).
_FALL_BACK: Final = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.PERMISSION_DENIED,
                               grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED})


def direct_channel(endpoint: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, server_name: str) -> grpc.Channel:
    """A TLS channel to a peer's external listener with this client certificate; the peer's
    certificate must come from the CA in `ca_pem` and name `server_name` (its member id)."""
    credentials = grpc.ssl_channel_credentials(ca_pem, key_pem, cert_pem)
    return grpc.secure_channel(endpoint, credentials,
                               options=[*PEER_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", server_name)])


def deliver(channel: grpc.Channel, frames: Iterator[OutFrame], ticket: bytes = b"",
            timeout: float | None = None) -> transfer_pb2.DeliverAck:
    """One Deliver call with these frames (and a ticket in the metadata when given)."""
    call = channel.stream_unary(DELIVER_METHOD, request_serializer=None,
                                response_deserializer=transfer_pb2.DeliverAck.FromString)
    metadata = ((TICKET_METADATA, ticket),) if ticket else None
    ack: transfer_pb2.DeliverAck = call((frame_bytes(frame) for frame in frames), metadata=metadata, timeout=timeout)
    return ack


@dataclass(frozen=True)
class _Grant:
    response: transfer_pb2.IssueTicketResponse

    def fresh(self) -> bool:
        return self.response.expires_at_ms / 1000 - time.time() > TICKET_RENEW_S


class DirectPath:
    """The direct path of one task's federation client (thread-safe: a table fan-out sends in threads)."""

    def __init__(self, service: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> None:
        self._issue = service.unary_unary(ISSUE_TICKET_METHOD,
                                          request_serializer=transfer_pb2.IssueTicketRequest.SerializeToString,
                                          response_deserializer=transfer_pb2.IssueTicketResponse.FromString)
        self._get_lane = service.unary_unary(GET_DATA_LANE_METHOD,
                                             request_serializer=transfer_pb2.GetDataLaneRequest.SerializeToString,
                                             response_deserializer=transfer_pb2.DataLane.FromString)
        self._metadata = metadata
        self._min_bytes: int | None = None
        self._off = False
        self._off_members: set[str] = set()
        self._grants: dict[tuple[str, str], _Grant] = {}
        self._channels: dict[tuple[str, bytes], grpc.Channel] = {}
        self._lock = threading.Lock()

    def min_bytes(self) -> int:
        """Messages of at least this many bytes go direct; 0 when the direct path is off."""
        if self._off:
            return 0
        if self._min_bytes is None:
            try:
                lane: transfer_pb2.DataLane = self._get_lane(transfer_pb2.GetDataLaneRequest(),
                                                             metadata=self._metadata, timeout=30)
            except grpc.RpcError as exc:
                log.info("direct path off: the transfer service did not say its threshold (%s)", exc.code().name)
                self._off = True
                return 0
            self._min_bytes = int(lane.direct_min_bytes)
        return self._min_bytes

    def wants(self, size: int, member_id: str) -> bool:
        """Whether a message of `size` bytes to `member_id` should go direct."""
        threshold = self.min_bytes()
        return bool(threshold) and size >= threshold and member_id not in self._off_members

    def _grant(self, session_id: str, member_id: str) -> _Grant | None:
        key = (session_id, member_id)
        with self._lock:
            grant = self._grants.get(key)
            if grant is not None and grant.fresh():
                return grant
        try:
            response = self._issue(transfer_pb2.IssueTicketRequest(session_id=session_id, target_member_id=member_id),
                                   metadata=self._metadata, timeout=30)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNIMPLEMENTED):
                log.info("direct path off, messages go through the transfer service: %s", exc.details())
                self._off = True
                return None
            raise
        grant = _Grant(response)
        with self._lock:
            first = not self._grants and not self._channels
            self._grants[key] = grant
        if first:
            log.info("messages of at least %d bytes go straight to the destination member's transfer service "
                     "(first: member %s at %s)", self.min_bytes(), member_id, response.peer_endpoint)
        return grant

    def _channel(self, response: transfer_pb2.IssueTicketResponse) -> grpc.Channel:
        key = (response.peer_endpoint, response.task_cert_pem)
        with self._lock:
            channel = self._channels.get(key)
            if channel is None:
                channel = direct_channel(response.peer_endpoint, response.ca_pem, response.task_cert_pem,
                                         response.task_key_pem, response.server_name)
                self._channels[key] = channel
            return channel

    def prepare(self, session_id: str, member_id: str, timeout: float = 30.0) -> bool:
        """Fetch the ticket for (session, member) and connect its channel ahead of a send; False
        when the direct path is off."""
        grant = self._grant(session_id, member_id)
        if grant is None:
            return False
        grpc.channel_ready_future(self._channel(grant.response)).result(timeout=timeout)
        return True

    def send(self, frames: Callable[[], Iterator[OutFrame]], session_id: str,
             member_id: str) -> transfer_pb2.DeliverAck | None:
        """Deliver the message straight to `member_id`; None when it must go through the service.

        `frames` gives the message's frames afresh for each attempt (the same message id)."""
        grant = self._grant(session_id, member_id)
        if grant is None:
            return None
        channel = self._channel(grant.response)
        ticket = grant.response.ticket

        def attempt() -> transfer_pb2.DeliverAck:
            return deliver(channel, frames(), ticket)

        def unavailable(exc: BaseException) -> bool:
            return isinstance(exc, grpc.RpcError) and exc.code() == grpc.StatusCode.UNAVAILABLE

        try:
            return retry_sync(attempt, unavailable, DIRECT_BACKOFF)
        except grpc.RpcError as exc:
            if exc.code() not in _FALL_BACK:
                raise
            with self._lock:
                self._grants.pop((session_id, member_id), None)
                first = member_id not in self._off_members
                self._off_members.add(member_id)
            if first:
                log.warning("the direct path to member %s at %s failed (%s: %s); messages to it go through the "
                            "transfer service", member_id, grant.response.peer_endpoint, exc.code().name,
                            exc.details())
            return None

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
