"""The shared metrics helper: a real grpc.aio server with the interceptor, scraped over HTTP."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from kernel.errors import ConfError
from services.common.observability import (
    DEFAULT_METRICS_PORTS,
    MetricsEndpoint,
    ServiceMetrics,
    metrics_port_from_env,
)

BROKEN_METHOD = "/weft.test.Broken/Explode"
COUNT_METHOD = "/weft.test.Broken/Count"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _scrape(endpoint: MetricsEndpoint) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=10) as resp:
        return _samples(resp.read().decode())


@pytest.fixture
def metrics() -> ServiceMetrics:
    return ServiceMetrics("scheduler")


@pytest.fixture
def endpoint(metrics: ServiceMetrics) -> Iterator[MetricsEndpoint]:
    started = metrics.start_http_server(port=0, host="127.0.0.1")
    assert started is not None
    yield started
    started.close()


async def _explode(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise RuntimeError("a bug in a handler")


async def _count(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    """Stream 0..n-1; a negative n streams one message, then aborts."""
    n = int(request)
    for i in range(max(n, 1)):
        yield str(i).encode()
    if n < 0:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "n must not be negative")


@pytest.fixture
async def served(metrics: ServiceMetrics) -> AsyncIterator[tuple[grpc.aio.Channel, health.aio.HealthServicer]]:
    server = grpc.aio.server(interceptors=[metrics.interceptor()])
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    broken: Any = grpc.method_handlers_generic_handler(
        "weft.test.Broken", {"Explode": grpc.unary_unary_rpc_method_handler(_explode),
                               "Count": grpc.unary_stream_rpc_method_handler(_count)})
    server.add_generic_rpc_handlers((broken,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield channel, servicer
    await channel.close()
    await server.stop(None)


async def test_interceptor_counts_requests_errors_and_latency(
        metrics: ServiceMetrics, endpoint: MetricsEndpoint,
        served: tuple[grpc.aio.Channel, health.aio.HealthServicer]) -> None:
    # Prepare
    channel, _ = served
    stub = health_pb2_grpc.HealthStub(channel)
    check = "/grpc.health.v1.Health/Check"
    # Execute: two good calls, one NOT_FOUND (the servicer aborts), one handler bug
    for _ in range(2):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as not_found:
        await stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
    with pytest.raises(grpc.aio.AioRpcError) as broken:
        await channel.unary_unary(BROKEN_METHOD)(b"x")
    samples = _scrape(endpoint)
    # Assert
    assert not_found.value.code() is grpc.StatusCode.NOT_FOUND
    assert broken.value.code() is grpc.StatusCode.UNKNOWN
    labels = (("method", check), ("service", "scheduler"))
    assert samples[("weft_grpc_requests_total", labels)] == 3
    assert samples[("weft_grpc_latency_seconds_count", labels)] == 3
    assert samples[("weft_grpc_errors_total", (("code", "NOT_FOUND"),) + labels)] == 1
    assert (("weft_grpc_errors_total", (("code", "OK"),) + labels)) not in samples
    broken_labels = (("code", "UNKNOWN"), ("method", BROKEN_METHOD), ("service", "scheduler"))
    assert samples[("weft_grpc_errors_total", broken_labels)] == 1


async def test_interceptor_counts_server_streams_when_they_end(
        metrics: ServiceMetrics, endpoint: MetricsEndpoint,
        served: tuple[grpc.aio.Channel, health.aio.HealthServicer]) -> None:
    # Prepare
    channel, _ = served
    # Execute: one stream that ends well, one that aborts after its first message
    good = [reply async for reply in channel.unary_stream(COUNT_METHOD)(b"3")]
    failing = channel.unary_stream(COUNT_METHOD)(b"-1")
    first = await failing.read()
    with pytest.raises(grpc.aio.AioRpcError) as aborted:
        await failing.read()
    samples = _scrape(endpoint)
    # Assert
    assert good == [b"0", b"1", b"2"]
    assert first == b"0"
    assert aborted.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    labels = (("method", COUNT_METHOD), ("service", "scheduler"))
    assert samples[("weft_grpc_requests_total", labels)] == 2
    assert samples[("weft_grpc_latency_seconds_count", labels)] == 2
    assert samples[("weft_grpc_errors_total", (("code", "INVALID_ARGUMENT"),) + labels)] == 1


def test_task_and_transfer_metrics_are_exported(metrics: ServiceMetrics, endpoint: MetricsEndpoint) -> None:
    # Prepare
    peer = "0123456789abcdef0123456789abcdef"
    # Execute
    metrics.set_tasks({"running": 3, "success": 5})
    metrics.add_transfer_bytes("sent", peer, 1024)
    metrics.add_transfer_bytes("sent", peer, 2048)
    samples = _scrape(endpoint)
    # Assert
    assert samples[("weft_tasks", (("service", "scheduler"), ("status", "running")))] == 3
    assert samples[("weft_tasks", (("service", "scheduler"), ("status", "failed")))] == 0
    sent = (("direction", "sent"), ("peer", peer), ("service", "scheduler"))
    assert samples[("weft_transfer_bytes_total", sent)] == 3072


def test_bad_transfer_arguments_are_refused(metrics: ServiceMetrics) -> None:
    with pytest.raises(ConfError, match="direction"):
        metrics.add_transfer_bytes("sideways", "peer", 1)
    with pytest.raises(ConfError, match="size"):
        metrics.add_transfer_bytes("received", "peer", -1)


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, DEFAULT_METRICS_PORTS["executor"]),
    ({"WEFT_METRICS_PORT": "19999"}, 19999),
    ({"WEFT_METRICS_PORT": "off"}, None),
])
def test_metrics_port_comes_from_the_environment(environ: dict[str, str], expected: int | None) -> None:
    assert metrics_port_from_env("executor", environ) == expected


@pytest.mark.parametrize("raw", ["ninety", "70000", "-1"])
def test_bad_metrics_port_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfError, match="WEFT_METRICS_PORT"):
        metrics_port_from_env("transfer", {"WEFT_METRICS_PORT": raw})


def test_endpoint_port_taken_is_a_clear_error() -> None:
    # Prepare: hold a port
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        # Execute / Assert
        with pytest.raises(ConfError, match=f"127.0.0.1:{port}"):
            ServiceMetrics("transfer").start_http_server(
                host="127.0.0.1", environ={"WEFT_METRICS_PORT": str(port)})


def test_endpoint_switched_off_starts_nothing() -> None:
    assert ServiceMetrics("transfer").start_http_server(environ={"WEFT_METRICS_PORT": "off"}) is None
