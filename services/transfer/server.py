"""The transfer service: internal API for tasks and the scheduler, peer API over mutual TLS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kernel.allocator import AllocatorSettings, reuse_large_buffers
from kernel.constants import ROLES
from kernel.errors import InvalidArgument, PermissionDenied, Unavailable, WeftError
from kernel.federation.wire.frames import frame_bytes
from kernel.federation.wire.lane import describe as describe_lane
from kernel.federation.wire.messages import check_header, first_header, party_of, wire_frames
from protos.weft.v1 import common_pb2, transfer_pb2, transfer_pb2_grpc
from services.common import internal_auth
from services.common.certs import task_member_id
from services.common.config import MEMBER_ID_PATTERN, MemberConfig
from services.common.grpc_errors import grpc_method
from services.common.observability import (
    CertificateCollector,
    MetricsEndpoint,
    ServiceMetrics,
    enable_reflection,
    start_metrics,
)
from services.transfer.constants import (
    INTERNAL_SERVICE_NAME,
    MIB,
    PEER_SERVICE_NAME,
    SERVER_OPTIONS,
)
from services.transfer.core import TransferCore
from services.transfer.lane import LaneListener
from services.transfer.routing import server_credentials
from services.transfer.serving_route import check_signer
from services.transfer.sessions import DefinitionSource, Session, registry_definitions
from services.transfer.stats import TransferCollector
from services.transfer.tickets import ticket_of, verify_ticket

log = logging.getLogger("weft.transfer")

# Calls whose frames the service handles as bytes (see kernel/federation/wire/frames.py).
_RAW_REQUESTS: frozenset[str] = frozenset({"Send", "Deliver"})
_RAW_RESPONSES: frozenset[str] = frozenset({"Receive"})


def add_servicer(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor) -> None:
    """Register a servicer's methods; the frame streams skip protobuf objects (they stay bytes).

    The other methods take and return their protobuf messages as the generated code would.
    """
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for method in service.methods:
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        deserialize = None if method.name in _RAW_REQUESTS else request_class.FromString
        serialize = None if method.name in _RAW_RESPONSES else response_class.SerializeToString
        if method.client_streaming and method.server_streaming:
            factory = grpc.stream_stream_rpc_method_handler
        elif method.client_streaming:
            factory = grpc.stream_unary_rpc_method_handler
        elif method.server_streaming:
            factory = grpc.unary_stream_rpc_method_handler
        else:
            factory = grpc.unary_unary_rpc_method_handler
        handlers[method.name] = factory(
            getattr(servicer, method.name), request_deserializer=deserialize, response_serializer=serialize)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)


def peer_member_id(context: grpc.aio.ServicerContext) -> str:
    """The CN of the client certificate TLS verified (a member's id, or a task certificate's `<member>.task`)."""
    auth = context.auth_context()
    names = auth.get("x509_common_name") or []
    if not names:
        raise PermissionDenied("the caller showed no client certificate with a member id (CN)")
    return bytes(names[0]).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Caller:
    """Who called the external listener: a member (its certificate) or a member's task (its task certificate)."""

    member_id: str
    task: bool

    def describe(self) -> str:
        return f"the task certificate of member {self.member_id}" if self.task else f"member {self.member_id}"


def peer_caller(context: grpc.aio.ServicerContext) -> Caller:
    """The caller of the external listener, from the CN of its verified client certificate."""
    common_name = peer_member_id(context)
    member = task_member_id(common_name)
    return Caller(member, True) if member is not None else Caller(common_name, False)


class InternalServicer(transfer_pb2_grpc.TransferServiceServicer):
    """TransferService: what task processes and the local scheduler call.

    Every call carries a member-internal credential: the scheduler's for the session table,
    the control relay and the counters; a task's (bound to its job) for Send and Receive,
    which then reach only that job's sessions.
    """

    def __init__(self, core: TransferCore) -> None:
        self.core = core
        self.lane = transfer_pb2.DataLane()  # set once the data lane listens
        self.replays = internal_auth.ReplayGuard()

    def _claims(self, context: grpc.aio.ServicerContext, signers: set[str], method: str) -> internal_auth.Claims:
        token = internal_auth.token_of(context.invocation_metadata())
        claims = internal_auth.verify(self.core.key, token, signers, what=f"transfer {method}")
        if claims.signer in (internal_auth.SCHEDULER, internal_auth.SERVING):  # per call; a task's credential lasts its task
            self.replays.check(claims, f"transfer {method}")
        return claims

    @grpc_method
    async def Send(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> transfer_pb2.SendAck:
        claims = self._claims(context, {internal_auth.TASK}, "Send")
        return await self.core.send(request_iterator, claims.job)

    @grpc_method
    async def Receive(
        self, request: transfer_pb2.ReceiveRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        claims = self._claims(context, {internal_auth.TASK}, "Receive")
        async with contextlib.aclosing(self.core.receive(request, claims.job)) as frames:
            async for frame in frames:
                yield frame_bytes(frame)

    @grpc_method
    async def RegisterSession(
        self, request: transfer_pb2.RegisterSessionRequest, context: grpc.aio.ServicerContext
    ) -> common_pb2.Ack:
        self._claims(context, {internal_auth.SCHEDULER}, "RegisterSession")
        if not request.session_id:
            raise InvalidArgument("session_id is required")
        if not request.parties:
            raise InvalidArgument("parties: at least one party is required")
        parties = []
        for index, proto in enumerate(request.parties):
            party = party_of(proto, f"parties[{index}]")
            if party.role not in ROLES:
                raise InvalidArgument(f"parties[{index}].role {party.role!r} is not one of {', '.join(ROLES)}")
            if not MEMBER_ID_PATTERN.match(party.member_id):
                raise InvalidArgument(f"parties[{index}].member_id must be 32 lowercase hex characters")
            parties.append(party)
        if request.ttl_s < 0:
            raise InvalidArgument(f"ttl_s must not be negative (got {request.ttl_s})")
        ttl = float(request.ttl_s) if request.ttl_s > 0 else self.core.config.transfer.message_ttl_s
        self.core.sessions.register(Session(request.session_id, request.job_id, frozenset(parties), ttl))
        self.core.mailbox.set_session_ttl(request.session_id, ttl)
        log.info("session %s of job %s registered with %d parties", request.session_id, request.job_id, len(parties))
        return common_pb2.Ack()

    @grpc_method
    async def CleanSession(
        self, request: transfer_pb2.CleanSessionRequest, context: grpc.aio.ServicerContext
    ) -> transfer_pb2.CleanSessionResponse:
        self._claims(context, {internal_auth.SCHEDULER}, "CleanSession")
        if not request.session_id:
            raise InvalidArgument("session_id is required")
        removed, freed = await self.core.mailbox.clean_session(request.session_id)
        self.core.sessions.remove(request.session_id)
        log.info("session %s cleaned: %d messages, %d bytes freed", request.session_id, removed, freed)
        return transfer_pb2.CleanSessionResponse(messages_removed=removed, bytes_freed=freed)

    @grpc_method
    async def RelayControl(
        self, request: transfer_pb2.ControlRequest, context: grpc.aio.ServicerContext
    ) -> transfer_pb2.ControlReply:
        claims = self._claims(context, {internal_auth.SCHEDULER, internal_auth.SERVING}, "RelayControl")
        check_signer(claims.signer, request.method)
        if not MEMBER_ID_PATTERN.match(request.target_member_id):
            raise InvalidArgument("target_member_id must be 32 lowercase hex characters")
        self.core.check_relayable(request.method)
        return await self.core.relay(request)

    @grpc_method
    async def GetDataLane(
        self, request: transfer_pb2.GetDataLaneRequest, context: grpc.aio.ServicerContext
    ) -> transfer_pb2.DataLane:
        self._claims(context, {internal_auth.SCHEDULER, internal_auth.TASK}, "GetDataLane")
        lane = transfer_pb2.DataLane()
        lane.CopyFrom(self.lane)
        lane.direct_min_bytes = self.core.direct_min_bytes()
        return lane

    @grpc_method
    async def IssueTicket(
        self, request: transfer_pb2.IssueTicketRequest, context: grpc.aio.ServicerContext
    ) -> transfer_pb2.IssueTicketResponse:
        claims = self._claims(context, {internal_auth.TASK}, "IssueTicket")
        try:
            return self.core.issue_ticket(request, claims.job)
        except PermissionDenied as exc:
            log.warning("refused a delivery ticket: %s", exc)
            raise

    @grpc_method
    async def GetStats(
        self, request: transfer_pb2.GetStatsRequest, context: grpc.aio.ServicerContext
    ) -> transfer_pb2.TransferStats:
        self._claims(context, {internal_auth.SCHEDULER}, "GetStats")
        return self.core.stats.to_proto(self.core.mailbox.stats(), len(self.core.sessions))


class PeerServicer(transfer_pb2_grpc.TransferPeerServiceServicer):
    """TransferPeerService: what other members call, over mutual TLS."""

    def __init__(self, core: TransferCore) -> None:
        self.core = core

    def _refuse(self, caller: Caller, exc: WeftError) -> None:
        self.core.stats.peer(caller.member_id).refused += 1
        log.warning("refused a call from %s: %s", caller.describe(), exc)

    @grpc_method
    async def Deliver(
        self, request_iterator: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> transfer_pb2.DeliverAck:
        core = self.core
        caller = peer_caller(context)
        peer = caller.member_id
        frames = wire_frames(request_iterator)
        try:
            ticket = None
            if caller.task:
                # A task certificate proves only that the CA issued it to one of the member's
                # tasks; the ticket, signed with the member's own key, is the authority.
                ticket = verify_ticket(ticket_of(context.invocation_metadata()), core.ca_certs,
                                       caller_member=peer, this_member=core.member_id)
            header = await first_header(frames)
            key = check_header(header)
            if ticket is not None and key.session_id != ticket.session_id:
                raise PermissionDenied(
                    f"{key.name}: frame session {key.session_id} is not the delivery ticket's {ticket.session_id}")
            if ticket is not None and key.src.member_id != ticket.source_member_id:
                raise PermissionDenied(f"{key.name}: frame source member {key.src.member_id} is not the delivery "
                                       f"ticket's {ticket.source_member_id}")
            if key.src.member_id != peer:
                raise PermissionDenied(
                    f"{key.name}: frame source member {key.src.member_id} is not the certificate's member {peer}"
                )
            if key.dst.member_id != core.member_id:
                raise PermissionDenied(
                    f"{key.name}: frame addressed to member {key.dst.member_id}, this is {core.member_id}"
                )
            core.sessions.authorise(key, unknown_session=PermissionDenied)
            size, duplicate = await core.store(header, frames)
        except Unavailable:
            raise  # a hand-off whose reader left: the sender delivers again
        except WeftError as exc:
            self._refuse(caller, exc)
            raise
        counters = core.stats.peer(peer)
        if not duplicate:
            counters.messages_in += 1
            counters.bytes_in += size
            if core.metrics is not None:
                core.metrics.add_transfer_bytes("received", peer, size)
        return transfer_pb2.DeliverAck(message_id=header.message_id, stored_size=size, duplicate=duplicate)

    @grpc_method
    async def Control(
        self, request: transfer_pb2.ControlRequest, context: grpc.aio.ServicerContext
    ) -> transfer_pb2.ControlReply:
        caller = peer_caller(context)
        peer = caller.member_id
        try:
            if caller.task:
                raise PermissionDenied("a task certificate may call nothing but Deliver with a delivery ticket")
            if request.target_member_id != self.core.member_id:
                raise PermissionDenied(
                    f"control call for member {request.target_member_id} reached member {self.core.member_id}"
                )
            self.core.check_relayable(request.method)
        except WeftError as exc:
            self._refuse(caller, exc)
            raise
        return await self.core.call_local_scheduler(request, peer)


def server_options(window_bytes: int) -> list[tuple[str, int]]:
    """gRPC server options; each incoming stream may buffer at most `window_bytes`.

    gRPC would otherwise grow its HTTP/2 receive window from bandwidth-delay probes, and a
    fast sender could park far more than the window in the service's memory while it
    writes a spilled message to disk. A fixed window keeps memory bounded by the window as
    DESIGN.md asks; a link with a long round trip wants a larger `transfer.window_mb`.
    """
    return [*SERVER_OPTIONS, ("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", window_bytes)]


class TransferServer:
    """Both listeners of one member's transfer service in one process."""

    def __init__(
        self, config: MemberConfig, config_path: str | Path | None = None,
        definitions: DefinitionSource = registry_definitions,
    ) -> None:
        self.config = config
        self.core = TransferCore(config, config_path, definitions)
        self.metrics = ServiceMetrics("transfer")
        self.core.metrics = self.metrics
        self.metrics.registry.register(TransferCollector(
            self.core.stats, self.core.mailbox.stats, lambda: len(self.core.sessions)))
        self.metrics.registry.register(CertificateCollector(
            {"member": config.tls.cert_file, "ca": config.tls.ca_file}))
        self.metrics_endpoint: MetricsEndpoint | None = None
        interceptors = [self.metrics.interceptor()]
        options = server_options(config.transfer.window_mb * MIB)
        self.internal = grpc.aio.server(options=options, interceptors=interceptors)
        self.external = grpc.aio.server(options=options, interceptors=interceptors)
        self.internal_health = health.aio.HealthServicer()
        self.external_health = health.aio.HealthServicer()
        services = transfer_pb2.DESCRIPTOR.services_by_name
        self.internal_servicer = InternalServicer(self.core)
        add_servicer(self.internal, self.internal_servicer, services["TransferService"])
        add_servicer(self.external, PeerServicer(self.core), services["TransferPeerService"])
        health_pb2_grpc.add_HealthServicer_to_server(self.internal_health, self.internal)
        health_pb2_grpc.add_HealthServicer_to_server(self.external_health, self.external)
        # Reflection on the internal listener only: the external one answers other members.
        enable_reflection(self.internal, (INTERNAL_SERVICE_NAME,))
        self.internal_port = 0
        self.external_port = 0
        self.lane: LaneListener | None = None
        self._expiry: asyncio.Task[None] | None = None

    async def start(self) -> None:
        settings = self.config.transfer
        if settings.allocator_keep_mb:
            reuse_large_buffers(AllocatorSettings(trim_mb=settings.allocator_keep_mb))
        self.core.start()
        self.internal_port = self.internal.add_insecure_port(settings.internal_listen)
        self.external_port = self.external.add_secure_port(settings.external_listen, server_credentials(self.config))
        if not self.internal_port:
            raise Unavailable(f"transfer.internal_listen: cannot listen on {settings.internal_listen}")
        if not self.external_port:
            raise Unavailable(f"transfer.external_listen: cannot listen on {settings.external_listen}")
        self.lane = LaneListener.for_config(
            self.core, settings.internal_listen, self.internal_port, settings.data_lane_port)
        if self.lane is not None:
            await self.lane.start()
            self.internal_servicer.lane = self.lane.describe()
        await self.internal.start()
        await self.external.start()
        self._expiry = asyncio.create_task(self.core.mailbox.run_expiry())
        self.metrics_endpoint = start_metrics(self.metrics, settings.metrics_listen)
        serving = health_pb2.HealthCheckResponse.SERVING
        for name in ("", INTERNAL_SERVICE_NAME):
            await self.internal_health.set(name, serving)
        for name in ("", PEER_SERVICE_NAME):
            await self.external_health.set(name, serving)
        log.info(
            "transfer service of member %s: internal %s (port %d, data lane %s), external %s (port %d, "
            "mutual TLS)", self.config.member_id, settings.internal_listen, self.internal_port,
            describe_lane(self.lane.address) if self.lane is not None else "off", settings.external_listen,
            self.external_port,
        )

    def reload_routes(self) -> bool:
        return self.core.router.reload()

    async def stop(self, grace: float | None = 5.0) -> None:
        await self.internal_health.enter_graceful_shutdown()
        await self.external_health.enter_graceful_shutdown()
        await asyncio.gather(self.external.stop(grace), self.internal.stop(grace))
        if self.lane is not None:
            await self.lane.stop()
        if self._expiry is not None:
            self._expiry.cancel()
        await self.core.close()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()

    async def wait_for_termination(self) -> None:
        await asyncio.gather(self.internal.wait_for_termination(), self.external.wait_for_termination())


async def serve(config: MemberConfig, config_path: str | Path | None = None, stop: asyncio.Event | None = None) -> None:
    """Run a member's transfer service until `stop` is set (or forever)."""
    server = TransferServer(config, config_path)
    await server.start()
    try:
        if stop is None:
            await server.wait_for_termination()
        else:
            await stop.wait()
    finally:
        await server.stop()

