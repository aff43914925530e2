"""Observability of a Weft service: Prometheus metrics, their HTTP endpoint, a gRPC interceptor, and
gRPC server reflection."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from wsgiref.simple_server import WSGIServer

import grpc
from cryptography import x509
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kernel.errors import ConfError

#: Environment variable with the port of the metrics endpoint; `off` disables the endpoint.
METRICS_PORT_ENV: Final = "WEFT_METRICS_PORT"
#: Environment variable with the address the metrics endpoint binds (`0.0.0.0` in containers).
METRICS_HOST_ENV: Final = "WEFT_METRICS_HOST"
DEFAULT_METRICS_HOST: Final = "127.0.0.1"
#: One port per service so that the services can share a host.
DEFAULT_METRICS_PORTS: Final[Mapping[str, int]] = {"scheduler": 9371, "executor": 9381, "transfer": 9392,
                                                   "serving": 9401}
METRICS_DISABLED_VALUES: Final = frozenset({"off", "none", "disabled"})
#: Latency buckets in seconds: quick unary calls up to long server streams (WatchJob, transfers).
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                          10.0, 30.0, 60.0, 300.0)
TASK_STATUSES: Final = ("waiting", "running", "success", "failed", "stopped")
TRANSFER_DIRECTIONS: Final = ("sent", "received")


class ServiceMetrics:
    """The metrics one service process exports, on a registry of its own (no process-wide state)."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        if not service:
            raise ConfError("service: give the service name the metrics are labelled with")
        self.service = service
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "weft_grpc_requests", "gRPC calls handled, by method",
            ["service", "method"], registry=self.registry)
        self.errors = Counter(
            "weft_grpc_errors", "gRPC calls that ended with a status other than OK",
            ["service", "method", "code"], registry=self.registry)
        self.latency = Histogram(
            "weft_grpc_latency_seconds", "time from a call's arrival to its last response",
            ["service", "method"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tasks = Gauge(
            "weft_tasks", "tasks this service knows, by status",
            ["service", "status"], registry=self.registry)
        self.transfer_bytes = Counter(
            "weft_transfer_bytes", "payload bytes moved between members",
            ["service", "direction", "peer"], registry=self.registry)

    def set_tasks(self, counts: Mapping[str, int]) -> None:
        """Publish task counts by status; statuses missing from `counts` read 0."""
        for status in sorted(set(TASK_STATUSES) | set(counts)):
            self.tasks.labels(service=self.service, status=status).set(counts.get(status, 0))

    def add_transfer_bytes(self, direction: str, peer: str, size: int) -> None:
        """Count `size` bytes sent to or received from the member `peer`."""
        if direction not in TRANSFER_DIRECTIONS:
            raise ConfError(f"direction: expected one of {', '.join(TRANSFER_DIRECTIONS)}, got {direction!r}")
        if size < 0:
            raise ConfError(f"size: a byte count cannot be negative, got {size}")
        self.transfer_bytes.labels(service=self.service, direction=direction, peer=peer).inc(size)

    def observe_call(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        self.requests.labels(service=self.service, method=method).inc()
        self.latency.labels(service=self.service, method=method).observe(seconds)
        if code is not grpc.StatusCode.OK:
            self.errors.labels(service=self.service, method=method, code=code.name).inc()

    def interceptor(self) -> MetricsInterceptor:
        return MetricsInterceptor(self)

    def start_http_server(self, port: int | None = None, host: str | None = None,
                          environ: Mapping[str, str] | None = None) -> MetricsEndpoint | None:
        """Serve /metrics; port and host default to `WEFT_METRICS_PORT`/`WEFT_METRICS_HOST`, then
        the service's default port. Returns None when the endpoint is switched off."""
        env = os.environ if environ is None else environ
        if port is None:
            port = metrics_port_from_env(self.service, env)
            if port is None:
                return None
        bind = host if host is not None else env.get(METRICS_HOST_ENV, DEFAULT_METRICS_HOST)
        try:
            server, thread = start_http_server(port, addr=bind, registry=self.registry)
        except OSError as exc:
            raise ConfError(f"{METRICS_PORT_ENV}: cannot serve metrics on {bind}:{port}: "
                            f"{exc.strerror or exc}") from None
        return MetricsEndpoint(server=server, thread=thread, host=bind, port=server.server_port)


@dataclass
class MetricsEndpoint:
    """A running /metrics HTTP endpoint."""

    server: WSGIServer
    thread: threading.Thread
    host: str
    port: int

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def metrics_port_from_env(service: str, environ: Mapping[str, str] | None = None) -> int | None:
    """The metrics port for `service`: `WEFT_METRICS_PORT` if set (None when `off`), else the default."""
    env = os.environ if environ is None else environ
    raw = env.get(METRICS_PORT_ENV, "").strip()
    if not raw:
        if service not in DEFAULT_METRICS_PORTS:
            raise ConfError(f"{METRICS_PORT_ENV}: service {service!r} has no default metrics port; "
                            "set the variable")
        return DEFAULT_METRICS_PORTS[service]
    if raw.lower() in METRICS_DISABLED_VALUES:
        return None
    try:
        port = int(raw)
    except ValueError:
        raise ConfError(f"{METRICS_PORT_ENV}: expected a port number or 'off', got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ConfError(f"{METRICS_PORT_ENV}: port {port} is outside 0..65535")
    return port


def _final_code(context: grpc.aio.ServicerContext, failure: BaseException | None) -> grpc.StatusCode:
    """The status a call ended with: what the handler set or aborted with, else from the failure."""
    code: Any = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status
    if failure is None:
        return grpc.StatusCode.OK
    if isinstance(failure, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc ships no type stubs
    """Counts requests and errors and times every call of a grpc.aio server, streams included."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # unknown method: grpc answers UNIMPLEMENTED itself
        method: str = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(method, handler.stream_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)

    def _wrap_unary(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        metrics = self._metrics

        async def timed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            failure: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as exc:
                failure = exc
                raise
            finally:
                metrics.observe_call(method, _final_code(context, failure), time.perf_counter() - started)

        return timed

    def _wrap_stream(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        metrics = self._metrics

        async def timed(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            failure: BaseException | None = None
            try:
                result = behavior(request, context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                else:
                    # a handler that writes with context.write() and returns a coroutine
                    await result
            except BaseException as exc:
                failure = exc
                raise
            finally:
                metrics.observe_call(method, _final_code(context, failure), time.perf_counter() - started)

        return timed


def start_metrics(metrics: ServiceMetrics, listen: str) -> MetricsEndpoint | None:
    """Serve /metrics on a config's `metrics_listen` ("host:port"); an empty value means off."""
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ConfError(f"metrics_listen: expected host:port, got {listen!r}")
    return metrics.start_http_server(int(port), host)


class CertificateCollector(Collector):
    """The expiry of the TLS certificates a service uses, read from their files at each scrape, so a
    rotated certificate shows at once (and an unreadable one as `weft_tls_certificate_readable 0`)."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = {which: path for which, path in files.items() if path}

    def describe(self) -> list[Metric]:
        return []  # the files are read per scrape

    def collect(self) -> Iterator[Metric]:
        expiry = GaugeMetricFamily("weft_tls_certificate_expiry_timestamp_seconds",
                                   "when the certificate stops being valid (Unix time)", labels=["certificate"])
        readable = GaugeMetricFamily("weft_tls_certificate_readable",
                                     "1 when the certificate file could be read and parsed", labels=["certificate"])
        for which, path in sorted(self.files.items()):
            try:
                cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
            except (OSError, ValueError):
                readable.add_metric([which], 0)
                continue
            readable.add_metric([which], 1)
            expiry.add_metric([which], cert.not_valid_after_utc.timestamp())
        yield expiry
        yield readable


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> tuple[str, ...]:
    """Serve gRPC server reflection on `server`: `service_names`, health and reflection itself.

    Tools such as grpcurl then list a listener's services and call them without the .proto
    files. Reflection describes the API only (the same as the published protos); every call
    it leads to passes the listener's usual checks. Returns the names it lists.
    """
    names = (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    return names
