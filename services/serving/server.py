"""The serving service of one member: ServingService and ServingPeerService on `serving.listen`, with health,
metrics and gRPC server reflection."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kernel.errors import Unavailable
from protos.weft.v1 import serving_pb2_grpc
from services.common import internal_auth
from services.common.config import MemberConfig
from services.common.db import create_engine
from services.common.observability import (
    MetricsEndpoint,
    ServiceMetrics,
    enable_reflection,
    start_metrics,
)
from services.serving.access import AuditLog, ServingAccess
from services.serving.constants import AUDIT_FILE, CLIENT_SERVICE, PEER_SERVICE, SERVING_DIR
from services.serving.registry import ModelRegistry
from services.serving.service import (
    ServingCore,
    ServingPeerServicer,
    ServingServicer,
    registry_root,
)

log = logging.getLogger("weft.serving")


class ServingServer:
    """One member's serving service in this process."""

    def __init__(self, config: MemberConfig) -> None:
        self.config = config
        key = internal_auth.load_member_key(config)
        self.engine = create_engine(config.resolved_database_url())
        self.audit = AuditLog(Path(config.data_dir) / SERVING_DIR / AUDIT_FILE)
        self.core = ServingCore(config, self.engine, key, ModelRegistry(registry_root(config)), self.audit)
        access = ServingAccess(self.engine, key, enabled=config.scheduler.auth.enabled,
                               token_cache_s=config.serving.token_cache_s)
        self.metrics = ServiceMetrics("serving")
        self.server = grpc.aio.server(interceptors=[self.metrics.interceptor()])
        serving_pb2_grpc.add_ServingServiceServicer_to_server(ServingServicer(self.core, access), self.server)
        serving_pb2_grpc.add_ServingPeerServiceServicer_to_server(ServingPeerServicer(self.core, access), self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, (CLIENT_SERVICE, PEER_SERVICE))
        self.port = 0
        self.metrics_endpoint: MetricsEndpoint | None = None

    async def start(self) -> None:
        listen = self.config.serving.listen
        self.port = self.server.add_insecure_port(listen)
        if not self.port:
            raise Unavailable(f"serving.listen: cannot listen on {listen}")
        await self.server.start()
        self.metrics_endpoint = start_metrics(self.metrics, self.config.serving.metrics_listen)
        await self.core.warm()  # health says SERVING once the published models are in memory
        for name in ("", CLIENT_SERVICE, PEER_SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving service of member %s on %s (port %d)", self.config.member_id, listen, self.port)

    async def stop(self, grace: float | None = 5.0) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.core.close()
        await self.engine.dispose()
        self.audit.close()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()


async def serve(config: MemberConfig, stop: asyncio.Event | None = None) -> None:
    """Run the serving service until SIGTERM / SIGINT (or until `stop` is set)."""
    server = ServingServer(config)
    await server.start()
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
