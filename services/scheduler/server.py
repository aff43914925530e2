"""Assemble and run one member's scheduler: database, peers, executors, gRPC server, consumers."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import ConfError
from protos.weft.v1 import admin_pb2_grpc, scheduler_pb2_grpc
from services.common.config import MemberConfig
from services.common.db import create_engine, migrate_engine
from services.common.db.records import MemberRecord
from services.common.db.repository import upsert_member
from services.common.internal_auth import load_member_key
from services.common.observability import ServiceMetrics, enable_reflection, start_metrics
from services.scheduler.access import Authenticator, ClientAccessInterceptor, ensure_bootstrap_admin
from services.scheduler.admin_service import AdminServicer
from services.scheduler.constants import MAX_MESSAGE_BYTES, SHUTDOWN_GRACE_S
from services.scheduler.executors import ExecutorPool
from services.scheduler.members_view import MembersView
from services.scheduler.metrics import SchedulerMetrics
from services.scheduler.peers import PeerClient, RelayPeerClient, TransferClient
from services.scheduler.scheduler import Scheduler
from services.scheduler.service import SchedulerPeerServicer, SchedulerServicer
from services.scheduler.settings import SchedulerSettings
from services.scheduler.work_mode import mark_member

log = logging.getLogger("weft.scheduler")

SERVICE_NAMES = ("weft.v1.SchedulerService", "weft.v1.SchedulerPeerService", "weft.v1.AdminService")


@dataclass
class RunningScheduler:
    """A started scheduler: its core, its gRPC server and the port it listens on."""

    scheduler: Scheduler
    server: grpc.aio.Server
    engine: AsyncEngine
    port: int
    #: The TLS listener's port, where clients may present a user certificate; 0 when off.
    tls_port: int = 0

    async def stop(self) -> None:
        await self.server.stop(SHUTDOWN_GRACE_S)
        await self.scheduler.close()
        await self.engine.dispose()


def build_interceptors(
    config: MemberConfig, engine: AsyncEngine, authenticator: Authenticator, metrics: ServiceMetrics | None
) -> list[grpc.aio.ServerInterceptor]:
    """Every check a call to the scheduler's port passes, in order, before its handler runs.

    Metrics first (refused calls are counted too), then each service's own guard: the
    client-access interceptor verifies callers of SchedulerService and AdminService and
    lets every other service through untouched.
    """
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if metrics is not None:
        interceptors.append(metrics.interceptor())
    if config.scheduler.auth.enabled:
        interceptors.append(ClientAccessInterceptor(engine, authenticator))
    return interceptors


def client_tls_credentials(config: MemberConfig) -> grpc.ServerCredentials:
    """The TLS listener's credentials: the scheduler's certificate, and user certificates required.

    The handshake itself refuses a client without a certificate of the configured CA;
    the client-access interceptor then maps the certificate's user to this member's users.
    """
    auth = config.scheduler.auth
    files = {"scheduler.auth.tls_cert_file": auth.tls_cert_file, "scheduler.auth.tls_key_file": auth.tls_key_file,
             "scheduler.auth.client_ca_file": auth.client_ca_file}
    contents: dict[str, bytes] = {}
    for key, path in files.items():
        if not path:
            raise ConfError(f"{key}: required when scheduler.auth.tls_listen is set")
        try:
            contents[key] = Path(path).read_bytes()
        except OSError as exc:
            raise ConfError(f"{key}: cannot read {path}: {exc.strerror or exc}") from None
    return grpc.ssl_server_credentials(
        [(contents["scheduler.auth.tls_key_file"], contents["scheduler.auth.tls_cert_file"])],
        root_certificates=contents["scheduler.auth.client_ca_file"], require_client_auth=True)


async def start_scheduler(
    config: MemberConfig,
    *,
    peers: PeerClient | None = None,
    metrics: ServiceMetrics | None = None,
) -> RunningScheduler:
    """Migrate the database, start the gRPC server on `scheduler.listen`, recover, consume.

    Member-to-member calls go through the local transfer service's control relay, and the
    peer API accepts only calls that came the same way (signed by the transfer service
    with the member-internal key, which the scheduler refuses to start without).
    """
    key = load_member_key(config)
    data_dir = Path(config.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    storage_root = config.resolved_storage_root()
    storage_root.mkdir(parents=True, exist_ok=True)
    engine = create_engine(config.resolved_database_url())
    await migrate_engine(engine)
    for member_id, peer in config.peers.items():
        await upsert_member(engine, MemberRecord(member_id=member_id, endpoint=peer.endpoint, name=peer.name))
    transfer = TransferClient(config.transfer.internal_listen, key, config.scheduler.peer_call_timeout_s)
    if peers is None:
        peers = RelayPeerClient(transfer)
    spool_dir = config.resolved_spool_dir().resolve()
    settings = SchedulerSettings(
        member_id=config.member_id, storage_root=storage_root,
        lease_seconds=config.scheduler.lease_seconds, consumers=config.scheduler.consumers,
        auto_retries=config.scheduler.auto_retries,
        known_members=frozenset({config.member_id, *config.peers}),
        spool_dir=spool_dir,
        executor_wait_s=config.executor.restart_wait_s,
    )
    mark_member(spool_dir, config.member_id)
    own_metrics = SchedulerMetrics(metrics) if metrics is not None else None
    if own_metrics is not None:
        own_metrics.watch_database(engine, asyncio.get_running_loop())
    executors = ExecutorPool(config.scheduler.executors, key,
                             on_task_finished=own_metrics.observe_task if own_metrics is not None else None,
                             call_timeout_s=config.scheduler.executor_call_timeout_s)
    scheduler = Scheduler(settings, engine, peers, executors, transfer)
    if own_metrics is not None:
        own_metrics.watch_peer_waits(scheduler.peer_waits, asyncio.get_running_loop())
    authenticator = Authenticator(engine, config.scheduler.auth.token_cache_s)
    if config.scheduler.auth.enabled:
        await ensure_bootstrap_admin(engine, config)
    else:
        log.warning("scheduler.auth.enabled is false: anyone who reaches %s may call every client RPC",
                    config.scheduler.listen)
    interceptors = build_interceptors(config, engine, authenticator, metrics)
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)],
    )
    scheduler_pb2_grpc.add_SchedulerServiceServicer_to_server(
        SchedulerServicer(scheduler, data_dir / "uploads", MembersView(config, transfer)), server
    )
    scheduler_pb2_grpc.add_SchedulerPeerServiceServicer_to_server(SchedulerPeerServicer(scheduler, key), server)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(
        engine, config.scheduler.auth.token_ttl_days, on_revoked=authenticator.forget), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection(server, SERVICE_NAMES)
    port = server.add_insecure_port(config.scheduler.listen)
    if port == 0:
        await engine.dispose()
        raise ConfError(f"scheduler.listen: cannot listen on {config.scheduler.listen}")
    tls_port = 0
    if config.scheduler.auth.tls_listen:
        tls_port = server.add_secure_port(config.scheduler.auth.tls_listen, client_tls_credentials(config))
        if tls_port == 0:
            await engine.dispose()
            raise ConfError(f"scheduler.auth.tls_listen: cannot listen on {config.scheduler.auth.tls_listen}")
    await server.start()
    await scheduler.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("scheduler of member %s listening on %s (port %d)", config.member_id, config.scheduler.listen, port)
    return RunningScheduler(scheduler, server, engine, port, tls_port)


async def serve(config: MemberConfig) -> None:
    """Run the scheduler until SIGTERM or SIGINT."""
    metrics = ServiceMetrics("scheduler")
    endpoint = start_metrics(metrics, config.scheduler.metrics_listen)
    running = await start_scheduler(config, metrics=metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()
        if endpoint is not None:
            endpoint.close()
