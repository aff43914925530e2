"""The transfer service's core, shared by both its APIs: store, forward, receive, relay control calls."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import grpc

from kernel.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from kernel.federation.cluster import error_for_status
from kernel.federation.wire.frames import (
    MAX_CHUNK_BYTES,
    OutFrame,
    WireFrame,
    chunk_parts,
    encode_end,
    encode_header,
)
from kernel.federation.wire.messages import (
    MessageKey,
    check_header,
    consume_frames,
    first_header,
    party_of,
    wire_frames,
)
from kernel.retry import retry_async
from protos.weft.v1 import scheduler_pb2, transfer_pb2, transfer_pb2_grpc
from services.common import internal_auth
from services.common.config import MEMBER_ID_PATTERN, MemberConfig
from services.common.grpc_errors import retryable
from services.common.observability import ServiceMetrics
from services.transfer.constants import (
    CONTROL_BACKOFF,
    DELIVER_BACKOFF,
    MIB,
    RELAYED_SERVICE,
    SESSIONS_DIR,
    STATE_DIR,
)
from services.transfer.mailbox import END, Mailbox, Quotas, Signal, StoredMessage
from services.transfer.outbox import Outbox
from services.transfer.routing import PeerRouter
from services.transfer.serving_route import SERVING_METHODS, ServingRoute, is_serving_method
from services.transfer.sessions import DefinitionSource, Session, SessionTable, registry_definitions
from services.transfer.stats import TrafficStats
from services.transfer.tickets import check_task_certificate, load_ca_certificates, sign_ticket

log = logging.getLogger("weft.transfer")

DELIVER_METHOD = "/weft.v1.TransferPeerService/Deliver"


def _relayable_methods() -> frozenset[str]:
    service = scheduler_pb2.DESCRIPTOR.services_by_name[RELAYED_SERVICE.rsplit(".", 1)[1]]
    return frozenset(f"/{RELAYED_SERVICE}/{method.name}" for method in service.methods)


class TransferCore:
    """State shared by both APIs: mailbox, sessions, routes, counters."""

    def __init__(
        self, config: MemberConfig, config_path: str | Path | None = None,
        definitions: DefinitionSource = registry_definitions,
    ) -> None:
        self.config = config
        self.member_id = config.member_id
        self.key = internal_auth.load_member_key(config)
        self.settings = settings = config.transfer
        self.deliver_backoff = dataclasses.replace(DELIVER_BACKOFF, deadline=settings.deliver_deadline_s)
        self.window_bytes = settings.window_mb * MIB
        self.spill_dir = config.resolved_spill_dir()
        self.mailbox = Mailbox(
            self.spill_dir / "mailbox", settings.mailbox_memory_mb * MIB, self.window_bytes, settings.message_ttl_s,
            Quotas(session_bytes=settings.mailbox_session_max_mb * MIB,
                   session_messages=settings.mailbox_session_max_messages,
                   peer_bytes=settings.mailbox_peer_max_mb * MIB, peer_messages=settings.mailbox_peer_max_messages),
        )
        self.sessions = SessionTable(Path(config.data_dir) / STATE_DIR / SESSIONS_DIR, definitions)
        self.router = PeerRouter(config, config_path)
        self.stats = TrafficStats()
        self.relayable = _relayable_methods() | SERVING_METHODS
        self.serving = ServingRoute(config, self.key)
        # The federation CA, which must have issued the member certificate of a delivery ticket.
        self.ca_certs = load_ca_certificates(config.tls.ca_file) if config.tls.ca_file else []
        if config.tls.task_cert_file or config.tls.task_key_file:
            check_task_certificate(config, self.ca_certs)
        self._scheduler_channel: grpc.aio.Channel | None = None
        self.metrics: ServiceMetrics | None = None

    def start(self) -> None:
        self.mailbox.clear_spill_dir()
        for session in self.sessions.load():
            self.mailbox.set_session_ttl(session.session_id, session.ttl_s)

    async def close(self) -> None:
        await self.router.close()
        await self.serving.close()
        if self._scheduler_channel is not None:
            await self._scheduler_channel.close()

    # ---- storing ---------------------------------------------------------------------

    async def store(
        self, header: transfer_pb2.FrameHeader, frames: AsyncIterator[WireFrame]
    ) -> tuple[int, bool]:
        """Write one message into the mailbox; (stored bytes, duplicate)."""
        reservation = await self.mailbox.reserve(header)
        if reservation is None:
            log.info("dropped duplicate message %s of %s", header.message_id, header.name)
            return 0, True
        try:
            checksum = await consume_frames(header, frames, reservation.write)
            if self.sessions.get(header.session_id) is None:
                # The job ended (CleanSession) while the message was arriving: keep nothing.
                raise PermissionDenied(f"session {header.session_id!r} ended while {header.name} was arriving")
        except BaseException:
            self.mailbox.abort(reservation)
            raise
        message = await self.mailbox.commit(reservation, checksum)
        return (message.size if message.pipe is not None else message.payload.size), False

    # ---- forwarding ------------------------------------------------------------------

    async def forward(
        self, header: transfer_pb2.FrameHeader, frames: AsyncIterator[WireFrame]
    ) -> transfer_pb2.SendAck:
        """Stream a task's message to the destination member and wait for its acknowledgement.

        The chunk frames go on as the bytes the task sent (their order and sizes checked).
        """
        peer = header.dst.member_id
        channel = self.router.channel(peer)  # NotFound before reading any chunk
        deliver = channel.stream_unary(DELIVER_METHOD, response_deserializer=transfer_pb2.DeliverAck.FromString)
        counters = self.stats.peer(peer)
        outbox = Outbox(self.window_bytes)
        attempts = 0

        async def to_outbox(frame: WireFrame) -> None:
            await outbox.append(frame.raw, len(frame.data))

        async def pump() -> None:
            try:
                checksum = await consume_frames(header, frames, to_outbox, verify=False)
            except BaseException:
                outbox.fail()
                raise
            outbox.finish(checksum)

        async def frames_to_peer() -> AsyncIterator[bytes]:
            yield encode_header(header)
            offset = seq = 0
            while (item := await outbox.next_chunk()) is not None:
                frame, size = item
                yield frame
                offset += size
                seq += 1
                counters.bytes_out += size
            if outbox.finished:
                yield encode_end(seq, offset, outbox.checksum)

        async def deliver_once() -> transfer_pb2.DeliverAck:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                if not outbox.restart():
                    raise Unavailable(
                        f"delivery of {header.name} (tag {header.tag!r}) to member {peer} broke off after "
                        f"the first window of a {outbox.size}+ byte message; send it again"
                    )
                counters.retries += 1
                log.warning("retrying delivery of %s to %s (attempt %d)", header.message_id, peer, attempts)
            ack: transfer_pb2.DeliverAck = await deliver(frames_to_peer())
            return ack

        pump_task = asyncio.create_task(pump())
        deliver_task = asyncio.create_task(retry_async(deliver_once, retryable, self.deliver_backoff))
        try:
            await asyncio.wait({pump_task, deliver_task}, return_when=asyncio.FIRST_EXCEPTION)
            if pump_task.done() and pump_task.exception() is not None:
                deliver_task.cancel()
                await pump_task  # raises the task's stream error
            try:
                ack = await deliver_task
            except grpc.aio.AioRpcError as exc:
                raise error_for_status(
                    exc.code(), f"member {peer} did not store {header.name} (tag {header.tag!r}): {exc.details()}"
                ) from None
            await pump_task
        finally:
            for task in (pump_task, deliver_task):
                if not task.done():
                    task.cancel()
        counters.messages_out += 1
        if self.metrics is not None:
            self.metrics.add_transfer_bytes("sent", peer, ack.stored_size)
        return transfer_pb2.SendAck(message_id=ack.message_id, stored_size=ack.stored_size, duplicate=ack.duplicate)

    # ---- a task's calls (gRPC Send / Receive, or the data lane) --------------------------

    def check_job(self, session: Session, job: str, what: str) -> None:
        """A task acts only in its own job's sessions (`job` is its credential's)."""
        if session.job_id != job:
            raise PermissionDenied(
                f"{what}: session {session.session_id} belongs to job {session.job_id or '(none)'}, "
                f"the task's credential to job {job or '(none)'}")

    async def send(self, stream: AsyncIterator[bytes], job: str) -> transfer_pb2.SendAck:
        """A task's message: checked, then stored here or forwarded to its destination member.

        `job` is the job of the calling task's credential: the session must be that job's."""
        frames = wire_frames(stream)
        header = await first_header(frames)
        key = check_header(header)
        if key.src.member_id != self.member_id:
            raise PermissionDenied(
                f"{key.name}: header.src.member_id {key.src.member_id} is not this member ({self.member_id})"
            )
        try:
            session = self.sessions.authorise(key)
            self.check_job(session, job, key.name)
        except PermissionDenied as exc:
            log.warning("refused to send: %s", exc)
            raise
        if key.dst.member_id == self.member_id:
            size, duplicate = await self.store(header, frames)
            return transfer_pb2.SendAck(message_id=header.message_id, stored_size=size, duplicate=duplicate)
        return await self.forward(header, frames)

    async def receive(self, request: transfer_pb2.ReceiveRequest, job: str) -> AsyncGenerator[OutFrame, None]:
        """The frames of the message a task asks for, once it is here (or a timeout error).

        A chunk read from the mailbox comes as (prefix, payload), which the data lane
        writes as it is and gRPC joins."""
        for field in ("session_id", "name", "tag"):
            if not getattr(request, field):
                raise InvalidArgument(f"{field} is required")
        key = MessageKey(request.session_id, request.name, request.tag,
                         party_of(request.src, "src"), party_of(request.dst, "dst"))
        if key.dst.member_id != self.member_id:
            raise InvalidArgument(f"dst.member_id {key.dst.member_id} is not this member ({self.member_id})")
        session = self.sessions.get(key.session_id)
        if session is None:
            raise NotFound(f"session {key.session_id!r} is not registered at this member "
                           "(the scheduler registers it when the job starts; it ends with the job)")
        self.check_job(session, job, key.name)
        timeout = request.timeout_ms / 1000 if request.timeout_ms > 0 else self.settings.receive_timeout_s
        message = await self.mailbox.take(key, timeout)
        try:
            async for frame in _message_frames(message):
                yield frame
        except BaseException:
            await self.mailbox.cancel_read(message)
            raise
        await self.mailbox.finish_read(message)

    # ---- delivery tickets (a task's direct path) ------------------------------------------

    def direct_min_bytes(self) -> int:
        """The size from which tasks send direct (0: never; also 0 without TLS to peers)."""
        return self.settings.direct_min_bytes if self.config.tls.enabled else 0

    def issue_ticket(self, request: transfer_pb2.IssueTicketRequest, job: str) -> transfer_pb2.IssueTicketResponse:
        """A delivery ticket for a task of `job` (services/transfer/tickets.py) and what it needs to use it."""
        tls = self.config.tls
        if not (tls.enabled and tls.task_cert_file and tls.task_key_file):
            raise FailedPrecondition(
                f"member {self.member_id} has no task certificate (tls.task_cert_file, tls.task_key_file): "
                "its tasks send through the transfer service")
        target = request.target_member_id
        if not MEMBER_ID_PATTERN.match(target):
            raise InvalidArgument(f"target_member_id {target!r} must be 32 lowercase hex characters")
        if target == self.member_id:
            raise InvalidArgument(f"target_member_id {target} is this member: its messages stay in this service")
        if not request.session_id:
            raise InvalidArgument("session_id is required")
        session = self.sessions.get(request.session_id)
        if session is None:
            raise NotFound(f"session {request.session_id!r} is not registered at this member")
        self.check_job(session, job, "IssueTicket")
        if target not in {party.member_id for party in session.parties}:
            raise PermissionDenied(f"IssueTicket: member {target} takes no part in session {session.session_id}")
        endpoint = self.router.endpoint(target)
        try:
            files = {field: Path(getattr(tls, field)).read_bytes()
                     for field in ("ca_file", "cert_file", "key_file", "task_cert_file", "task_key_file")}
        except OSError as exc:  # the task sends through the service instead
            raise FailedPrecondition(f"member {self.member_id} cannot issue a delivery ticket: {exc}") from None
        ticket, expires_ms = sign_ticket(
            files["key_file"], files["cert_file"], source=self.member_id, target=target,
            session_id=session.session_id, job_id=session.job_id, ttl_s=self.settings.ticket_ttl_s)
        return transfer_pb2.IssueTicketResponse(
            ticket=ticket, expires_at_ms=expires_ms, peer_endpoint=endpoint, ca_pem=files["ca_file"],
            server_name=target, task_cert_pem=files["task_cert_file"], task_key_pem=files["task_key_file"])

    # ---- control relay ---------------------------------------------------------------

    def check_relayable(self, method: str) -> None:
        if method not in self.relayable:
            raise PermissionDenied(f"method {method!r} is not a {RELAYED_SERVICE} or serving peer method; "
                                   "only those are relayed")

    def scheduler_channel(self) -> grpc.aio.Channel:
        if self._scheduler_channel is None:
            self._scheduler_channel = grpc.aio.insecure_channel(self.config.scheduler.listen)
        return self._scheduler_channel

    async def call_local_scheduler(self, request: transfer_pb2.ControlRequest, source: str) -> transfer_pb2.ControlReply:
        """Hand a relayed call to this member's scheduler; its answer, error or not, is the reply.

        The call carries a relay credential signed with the member-internal key that names
        `source` (the member id verified from the peer's certificate) and the method; the
        scheduler's peer API accepts nothing else. Serving peer calls go to the serving service
        the same way (services/transfer/serving_route.py).
        """
        if is_serving_method(request.method):
            return await self.serving.call(request, source)
        call = self.scheduler_channel().unary_unary(request.method)
        timeout = request.timeout_ms / 1000 if request.timeout_ms > 0 else self.settings.control_timeout_s
        credential = internal_auth.sign(self.key, internal_auth.RELAY, member=source, method=request.method)
        try:
            payload = await call(request.payload, timeout=timeout, metadata=internal_auth.metadata(credential))
        except grpc.aio.AioRpcError as exc:
            return transfer_pb2.ControlReply(status_code=exc.code().value[0], message=exc.details() or "")
        return transfer_pb2.ControlReply(payload=payload, status_code=0)

    async def relay(self, request: transfer_pb2.ControlRequest) -> transfer_pb2.ControlReply:
        target = request.target_member_id
        if target == self.member_id:
            return await self.call_local_scheduler(request, self.member_id)
        stub = transfer_pb2_grpc.TransferPeerServiceStub(self.router.channel(target))
        counters = self.stats.peer(target)
        timeout = request.timeout_ms / 1000 if request.timeout_ms > 0 else self.settings.control_timeout_s
        attempts = 0

        async def call() -> transfer_pb2.ControlReply:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                counters.retries += 1
            reply: transfer_pb2.ControlReply = await stub.Control(request, timeout=timeout)
            return reply

        try:
            policy = dataclasses.replace(CONTROL_BACKOFF, deadline=min(CONTROL_BACKOFF.deadline or timeout, timeout))
            return await retry_async(call, retryable, policy)
        except grpc.aio.AioRpcError as exc:
            raise error_for_status(
                exc.code(), f"relaying {request.method} to member {target} failed: {exc.details()}"
            ) from None


async def _message_frames(message: StoredMessage) -> AsyncIterator[OutFrame]:
    """The frames of a message for its reader."""
    if message.pipe is not None:
        async for frame in _handoff_frames(message, message.pipe):
            yield frame
        return
    yield encode_header(message.header)
    seq = 0
    for data in message.payload.chunks(MAX_CHUNK_BYTES):
        yield chunk_parts(seq, data)
        seq += 1
    yield encode_end(seq, message.payload.size, message.checksum)


async def _handoff_frames(message: StoredMessage, pipe: asyncio.Queue[bytes | Signal]) -> AsyncIterator[bytes]:
    """Frames of a message handed straight from the delivering stream (the end only once verified).

    The chunk frames are the bytes that arrived: a single message per call numbers its
    chunks from 0 on every hop.
    """
    yield encode_header(message.header)
    seq = 0
    while True:
        item = await pipe.get()
        if item is END:
            break
        if isinstance(item, Signal):
            raise Unavailable(f"{message.key.describe()}: {message.closed}")
        yield item
        seq += 1
    yield encode_end(seq, message.size, message.checksum)
