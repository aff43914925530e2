"""The transfer services' serving route: only the serving credential relays serving calls, and they arrive stamped."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from protos.weft.v1 import serving_pb2, transfer_pb2, transfer_pb2_grpc
from services.common import internal_auth
from services.common.config import load_config
from services.common.ports import free_port as _free_port
from services.serving.server import ServingServer
from services.transfer.loopback_services import LocalCluster

A, C = "a" * 31 + "5", "c" * 31 + "6"
PARTIAL = "/weft.v1.ServingPeerService/PartialPredict"
STOP_JOB = "/weft.v1.SchedulerPeerService/StopJob"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    serving = {"serving": {"listen": f"127.0.0.1:{_free_port()}"}}
    with LocalCluster(tmp_path_factory.mktemp("route"), [A, C], extra=serving) as members:
        yield members


def _partial() -> bytes:
    request = serving_pb2.PartialPredictRequest(model_name="credit", model_version=1, job_id="j1", ids=["7"])
    return bytes(request.SerializeToString())


async def _relay(cluster: LocalCluster, token: str | None, method: str, timeout_ms: int = 3000) -> transfer_pb2.ControlReply:
    async with grpc.aio.insecure_channel(cluster[A].internal) as channel:
        stub = transfer_pb2_grpc.TransferServiceStub(channel)
        request = transfer_pb2.ControlRequest(target_member_id=C, method=method, payload=_partial(),
                                              timeout_ms=timeout_ms)
        metadata = internal_auth.metadata(token) if token else None
        reply: transfer_pb2.ControlReply = await stub.RelayControl(request, timeout=10, metadata=metadata)
        return reply


async def test_only_the_serving_credential_relays_serving_calls_and_only_those(cluster: LocalCluster) -> None:
    # Prepare
    key = cluster[A].key
    cases = {
        "serving relays a scheduler call": (internal_auth.sign(key, internal_auth.SERVING), STOP_JOB),
        "scheduler relays a serving call": (internal_auth.sign(key, internal_auth.SCHEDULER), PARTIAL),
        "a task relays a serving call": (cluster[A].task_credential("some-session"), PARTIAL),
        "no credential": (None, PARTIAL),
    }

    # Execute
    codes = {}
    for name, (token, method) in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _relay(cluster, token, method)
        codes[name] = refused.value.code()

    # Assert
    assert codes == {
        "serving relays a scheduler call": grpc.StatusCode.PERMISSION_DENIED,
        "scheduler relays a serving call": grpc.StatusCode.PERMISSION_DENIED,
        "a task relays a serving call": grpc.StatusCode.PERMISSION_DENIED,
        "no credential": grpc.StatusCode.UNAUTHENTICATED,
    }


async def test_a_relayed_call_reaches_the_peers_serving_service_stamped_with_the_callers_member_id(
        cluster: LocalCluster) -> None:
    # Prepare: C's serving service runs; no model is published there.
    config = load_config(cluster[C].config_path)
    server = ServingServer(config)
    await server.start()
    try:
        # Execute
        reply = await _relay(cluster, internal_auth.sign(cluster[A].key, internal_auth.SERVING), PARTIAL)
    finally:
        await server.stop()
    # C's serving service down: the call ends within the caller's deadline.
    with pytest.raises(grpc.aio.AioRpcError) as stopped:
        await _relay(cluster, internal_auth.sign(cluster[A].key, internal_auth.SERVING), PARTIAL, timeout_ms=300)

    # Assert
    assert reply.status_code == grpc.StatusCode.NOT_FOUND.value[0] and "not published" in reply.message
    audit = (cluster[C].directory / "data" / "serving" / "audit.log").read_text(encoding="utf-8").splitlines()
    entry = json.loads(audit[-1])
    assert (entry["method"], entry["caller"], entry["outcome"]) == ("PartialPredict", f"member {A}", "NOT_FOUND")
    assert stopped.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and C in (stopped.value.details() or "")
