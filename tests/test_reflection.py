"""gRPC server reflection on every service: a real reflection client lists each listener's services
and resolves their methods (scheduler, executor, transfer, serving), and the transfer service's
external (peer-facing) listener offers none."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from services.common import internal_auth
from services.common.certs import create_ca, issue_member_cert
from services.common.config import MemberConfig
from services.executor.server import ExecutorServer
from services.scheduler.server import RunningScheduler, start_scheduler
from services.serving.server import ServingServer
from services.transfer.server import TransferServer

MEMBER = "e" * 31 + "5"
HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


@dataclass
class Member:
    scheduler: RunningScheduler
    executor: ExecutorServer
    transfer: TransferServer
    serving: ServingServer


@pytest.fixture
async def member(tmp_path: Path) -> AsyncIterator[Member]:
    """A member's scheduler, executor, transfer and serving service, each on a free loopback port."""
    create_ca(tmp_path / "ca")
    tls = issue_member_cert(tmp_path / "ca", MEMBER, ["127.0.0.1"], tmp_path / "tls")
    config = MemberConfig.model_validate({
        "member_id": MEMBER, "data_dir": str(tmp_path / "data"),
        "internal_key_file": str(internal_auth.write_key(tmp_path / "internal.key")),
        "scheduler": {"listen": "127.0.0.1:0", "executors": ["127.0.0.1:1"]},
        "executor": {"listen": "127.0.0.1:0", "warm_pool": 0},
        "transfer": {"internal_listen": "127.0.0.1:0", "external_listen": "127.0.0.1:0", "data_lane_port": -1},
        "serving": {"listen": "127.0.0.1:0"},
        "tls": {"ca_file": str(tls.ca_file), "cert_file": str(tls.cert_file), "key_file": str(tls.key_file)},
    })
    transfer = TransferServer(config)
    await transfer.start()
    executor = ExecutorServer(config)
    await executor.start()
    scheduler = await start_scheduler(config)
    serving = ServingServer(config)
    await serving.start()
    try:
        yield Member(scheduler, executor, transfer, serving)
    finally:
        await serving.stop(0)
        await scheduler.stop()
        await executor.stop(0)
        await transfer.stop(0)


def reflect(port: int, service: str) -> tuple[set[str], list[str]]:
    """(services listed, methods of `service`) as a reflection client sees them, without any .proto."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        listed = set(database.get_services())
        methods = [m.name for m in DescriptorPool(database).FindServiceByName(service).methods]
    return listed, methods


async def test_every_service_lists_its_services_through_reflection(member: Member) -> None:
    # Execute
    scheduler = await asyncio.to_thread(reflect, member.scheduler.port, "weft.v1.SchedulerService")
    executor = await asyncio.to_thread(reflect, member.executor.port, "weft.v1.ExecutorService")
    transfer = await asyncio.to_thread(reflect, member.transfer.internal_port, "weft.v1.TransferService")
    serving = await asyncio.to_thread(reflect, member.serving.port, "weft.v1.ServingService")
    serving_peer = await asyncio.to_thread(reflect, member.serving.port, "weft.v1.ServingPeerService")

    # Assert
    assert scheduler[0] == {"weft.v1.SchedulerService", "weft.v1.SchedulerPeerService", "weft.v1.AdminService",
                            HEALTH, REFLECTION}
    assert {"SubmitJob", "WatchJob", "GetJob"} <= set(scheduler[1])
    assert executor[0] == {"weft.v1.ExecutorService", HEALTH, REFLECTION}
    assert {"RunTask", "StopTask", "ListTasks"} <= set(executor[1])
    assert transfer[0] == {"weft.v1.TransferService", HEALTH, REFLECTION}
    assert {"Send", "Receive"} <= set(transfer[1])
    assert serving[0] == {"weft.v1.ServingService", "weft.v1.ServingPeerService", HEALTH, REFLECTION}
    assert {"Predict", "BatchPredict"} <= set(serving[1])
    assert {"PartialPredict", "PublishPart"} <= set(serving_peer[1])


@pytest.mark.parametrize(("which", "service", "method"), [
    ("scheduler", "weft.v1.SchedulerService", "ListJobs"),
    ("serving", "weft.v1.ServingService", "ListModels"),
])
async def test_reflection_is_no_way_around_the_client_api_check(
        member: Member, which: str, service: str, method: str) -> None:
    # Prepare: a caller that learnt the API by reflection, with no credential
    port = member.scheduler.port if which == "scheduler" else member.serving.port
    _, methods = await asyncio.to_thread(reflect, port, service)
    assert method in methods

    # Execute
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(f"/{service}/{method}")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(b"", timeout=30)

    # Assert
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_the_external_transfer_listener_offers_no_reflection(member: Member) -> None:
    # Prepare: a peer's view of the external listener (mutual TLS with a member certificate)
    root = Path(member.transfer.config.tls.ca_file).parent.parent
    peer = issue_member_cert(root / "ca", "f" * 32, ["127.0.0.1"], root / "peer-tls")
    credentials = grpc.ssl_channel_credentials(
        peer.ca_file.read_bytes(), peer.key_file.read_bytes(), peer.cert_file.read_bytes())

    def listed() -> grpc.StatusCode:
        with grpc.secure_channel(f"127.0.0.1:{member.transfer.external_port}", credentials,
                                 options=[("grpc.ssl_target_name_override", "127.0.0.1")]) as channel:
            try:
                ProtoReflectionDescriptorDatabase(channel).get_services()
            except grpc.RpcError as exc:
                return exc.code()  # type: ignore[attr-defined,no-any-return]
        return grpc.StatusCode.OK

    # Execute
    code = await asyncio.to_thread(listed)

    # Assert
    assert code is grpc.StatusCode.UNIMPLEMENTED
