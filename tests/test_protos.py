"""The weft.v1 protobuf contracts: generated modules import, round-trip, list the agreed RPCs, are current."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from grpc_tools import protoc

from protos.weft.v1 import (
    common_pb2,
    executor_pb2,
    scheduler_pb2,
    transfer_pb2,
    transfer_pb2_grpc,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTO_NAMES = ("common", "scheduler", "admin", "executor", "transfer", "serving")

# RPC name -> (client streams, server streams), per service: the contract other issues build on.
UNARY = (False, False)
SERVER_STREAM = (False, True)
CLIENT_STREAM = (True, False)
EXPECTED_SERVICES: dict[str, dict[str, tuple[bool, bool]]] = {
    "SchedulerService": {
        "SubmitJob": UNARY, "GetJob": UNARY, "ListJobs": UNARY, "StopJob": UNARY,
        "RerunJob": UNARY, "WatchJob": SERVER_STREAM, "UploadDataSet": CLIENT_STREAM,
        "ListDataSets": UNARY, "GetTaskResult": UNARY, "GetMetrics": UNARY, "WhoAmI": UNARY, "GetModel": UNARY,
        "GetMembers": UNARY, "GetDataSetSummary": UNARY, "GetTaskLog": UNARY,
    },
    "AdminService": {
        "AddUser": UNARY, "ListUsers": UNARY, "IssueToken": UNARY, "RevokeToken": UNARY,
        "RevokeUser": UNARY, "ListAudit": UNARY,
    },
    "SchedulerPeerService": {
        "CreateJob": UNARY, "ReportTaskStatus": UNARY, "PushJobStatus": UNARY,
        "StopJob": UNARY, "RerunJob": UNARY,
    },
    "ExecutorService": {
        "RunTask": SERVER_STREAM, "WatchTask": SERVER_STREAM, "StopTask": UNARY,
        "GetTask": UNARY, "ListTasks": UNARY, "TailTaskLog": UNARY,
    },
    "TransferService": {
        "Send": CLIENT_STREAM, "Receive": SERVER_STREAM, "RegisterSession": UNARY,
        "CleanSession": UNARY, "RelayControl": UNARY, "GetStats": UNARY,
        "GetDataLane": UNARY, "IssueTicket": UNARY,
    },
    "TransferPeerService": {"Deliver": CLIENT_STREAM, "Control": UNARY},
    "ServingService": {
        "Predict": UNARY, "BatchPredict": SERVER_STREAM, "PublishModel": UNARY, "ListModels": UNARY,
        "RollbackModel": UNARY, "UnpublishModel": UNARY, "SetFeatureTable": UNARY,
    },
    "ServingPeerService": {
        "PartialPredict": UNARY, "PublishPart": UNARY, "RollbackPart": UNARY, "UnpublishPart": UNARY,
    },
}


def _modules() -> list[ModuleType]:
    names = [f"protos.weft.v1.{proto}{suffix}" for proto in PROTO_NAMES for suffix in ("_pb2", "_pb2_grpc")]
    return [importlib.import_module(name) for name in names]


def _file_descriptors() -> list[FileDescriptor]:
    return [importlib.import_module(f"protos.weft.v1.{proto}_pb2").DESCRIPTOR for proto in PROTO_NAMES]


def test_every_generated_module_imports_with_package_prefix() -> None:
    # Execute
    modules = _modules()

    # Assert
    assert len(modules) == 2 * len(PROTO_NAMES)
    for proto in PROTO_NAMES:
        descriptor = importlib.import_module(f"protos.weft.v1.{proto}_pb2").DESCRIPTOR
        assert descriptor.package == "weft.v1"
        assert descriptor.name == f"weft/v1/{proto}.proto"


def test_services_offer_the_agreed_rpcs_with_their_streaming_shape() -> None:
    # Prepare
    services = {
        service.name: service for file in _file_descriptors() for service in file.services_by_name.values()
    }

    # Execute
    actual = {
        name: {
            method.name: (method.client_streaming, method.server_streaming)
            for method in service.methods
        }
        for name, service in services.items()
    }

    # Assert
    assert actual == EXPECTED_SERVICES


def test_task_spec_and_event_round_trip() -> None:
    # Prepare
    spec = executor_pb2.TaskSpec(
        job_id="job-1", task_id="task-1", component_name="vert_lr_0", module="VertLR",
        role="promoter", member_id="a" * 32, federation_session_id="session-1",
        runtime_conf_json='{"module": "VertLR"}', priority=5, backend=common_pb2.BACKEND_SPARK,
        spark=executor_pb2.SparkOptions(
            master="local[2]", driver_memory="1g", executor_memory="2g", executor_cores=2,
            conf={"spark.sql.shuffle.partitions": "4"},
        ),
        attempt=2,
    )
    event = executor_pb2.TaskEvent(
        task_id="task-1", attempt=2, timestamp_ms=1_700_000_000_000,
        finished=executor_pb2.TaskFinished(
            status=common_pb2.TASK_STATUS_FAILED, error="column y missing", exit_code=1,
        ),
    )

    # Execute
    spec_back = executor_pb2.TaskSpec.FromString(spec.SerializeToString())
    event_back = executor_pb2.TaskEvent.FromString(event.SerializeToString())

    # Assert
    assert spec_back == spec
    assert spec_back.spark.conf["spark.sql.shuffle.partitions"] == "4"
    assert event_back.WhichOneof("event") == "finished"
    assert event_back.finished.status == common_pb2.TASK_STATUS_FAILED
    assert event_back.finished.error == "column y missing"


def test_job_event_and_upload_round_trip() -> None:
    # Prepare
    promoter = common_pb2.Party(role="promoter", member_id="a" * 32)
    task = common_pb2.TaskKey(job_id="job-1", task_id="t-1", component_name="dataio_0", party=promoter)
    event = scheduler_pb2.JobEvent(
        job_id="job-1", seq=3, timestamp_ms=5,
        metric=scheduler_pb2.MetricEvent(
            task=task,
            metric=common_pb2.Metric(name="auc", namespace="train", points_json="0.98"),
        ),
    )
    header = scheduler_pb2.UploadDataSetRequest(
        header=scheduler_pb2.UploadDataSetHeader(
            namespace="credit", name="a", format=scheduler_pb2.DATA_FORMAT_CSV,
            id_column="id", label_column="y",
        )
    )
    chunk = scheduler_pb2.UploadDataSetRequest(chunk=b"id,y\n1,0\n")

    # Execute
    event_back = scheduler_pb2.JobEvent.FromString(event.SerializeToString())
    header_back = scheduler_pb2.UploadDataSetRequest.FromString(header.SerializeToString())
    chunk_back = scheduler_pb2.UploadDataSetRequest.FromString(chunk.SerializeToString())

    # Assert
    assert event_back.WhichOneof("event") == "metric"
    assert event_back.metric.task.party.role == "promoter"
    assert event_back.metric.metric.points_json == "0.98"
    assert header_back.WhichOneof("part") == "header"
    assert header_back.header.format == scheduler_pb2.DATA_FORMAT_CSV
    assert chunk_back.WhichOneof("part") == "chunk"
    assert chunk_back.chunk == b"id,y\n1,0\n"


def test_status_enums_share_one_lifecycle() -> None:
    # Execute
    job_states = [name.removeprefix("JOB_STATUS_") for name in common_pb2.JobStatus.keys()]
    task_states = [name.removeprefix("TASK_STATUS_") for name in common_pb2.TaskStatus.keys()]

    # Assert
    assert job_states == ["UNSPECIFIED", "WAITING", "RUNNING", "SUCCESS", "FAILED", "STOPPED"]
    assert task_states == job_states
    assert common_pb2.JOB_STATUS_UNSPECIFIED == 0
    assert common_pb2.TASK_STATUS_UNSPECIFIED == 0


def test_every_rpc_field_and_enum_value_is_commented(tmp_path: Path) -> None:
    # Prepare
    include_dir = Path(protoc.__file__).resolve().parent / "_proto"
    descriptor_set = tmp_path / "weft.pb"
    sources = [f"weft/v1/{proto}.proto" for proto in PROTO_NAMES]
    assert protoc.main([
        "grpc_tools.protoc", f"--proto_path={REPO_ROOT / 'protos'}", f"--proto_path={include_dir}",
        "--include_source_info", f"--descriptor_set_out={descriptor_set}", *sources,
    ]) == 0
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file

    # Execute
    uncommented = []
    for file in files:
        commented = {
            tuple(location.path) for location in file.source_code_info.location
            if location.leading_comments.strip() or location.trailing_comments.strip()
        }
        # Field numbers of FileDescriptorProto / DescriptorProto / ... in descriptor.proto.
        for m, message in enumerate(file.message_type):
            uncommented += [f"{message.name}"] * ((4, m) not in commented)
            uncommented += [
                f"{message.name}.{field.name}"
                for f, field in enumerate(message.field) if (4, m, 2, f) not in commented
            ]
        for e, enum in enumerate(file.enum_type):
            uncommented += [f"{enum.name}"] * ((5, e) not in commented)
            uncommented += [
                f"{enum.name}.{value.name}"
                for v, value in enumerate(enum.value) if (5, e, 2, v) not in commented
            ]
        for s, service in enumerate(file.service):
            uncommented += [f"{service.name}"] * ((6, s) not in commented)
            uncommented += [
                f"{service.name}.{method.name}"
                for r, method in enumerate(service.method) if (6, s, 2, r) not in commented
            ]

    # Assert
    assert uncommented == []


class _RecordingPeer(transfer_pb2_grpc.TransferPeerServiceServicer):
    """A TransferPeerService that keeps the frames it is given, to exercise the stubs."""

    def __init__(self) -> None:
        self.frames: list[transfer_pb2.Frame] = []

    async def Deliver(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[transfer_pb2.Frame], context: grpc.aio.ServicerContext,
    ) -> transfer_pb2.DeliverAck:
        async for frame in request_iterator:
            self.frames.append(frame)
        header = self.frames[0].header
        size = sum(len(frame.chunk.data) for frame in self.frames if frame.WhichOneof("kind") == "chunk")
        return transfer_pb2.DeliverAck(message_id=header.message_id, stored_size=size)


async def test_generated_stubs_stream_frames_over_a_real_socket() -> None:
    # Prepare
    peer = _RecordingPeer()
    server = grpc.aio.server()
    transfer_pb2_grpc.add_TransferPeerServiceServicer_to_server(peer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    frames = [
        transfer_pb2.Frame(header=transfer_pb2.FrameHeader(
            message_id="m-1", session_id="s-1", name="VertLRTransferVariable.pubkey", tag="fit",
            src=common_pb2.Party(role="promoter", member_id="a" * 32),
            dst=common_pb2.Party(role="provider", member_id="b" * 32),
            total_size=6, kind=transfer_pb2.PAYLOAD_KIND_OBJECT,
        )),
        transfer_pb2.Frame(chunk=transfer_pb2.FrameChunk(seq=0, data=b"abc")),
        transfer_pb2.Frame(chunk=transfer_pb2.FrameChunk(seq=1, data=b"def")),
        transfer_pb2.Frame(end=transfer_pb2.FrameEnd(chunk_count=2, total_size=6, checksum=b"\x00" * 16)),
    ]

    # Execute
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            ack = await transfer_pb2_grpc.TransferPeerServiceStub(channel).Deliver(iter(frames))
    finally:
        await server.stop(None)

    # Assert
    assert ack.message_id == "m-1"
    assert ack.stored_size == 6
    assert [frame.WhichOneof("kind") for frame in peer.frames] == ["header", "chunk", "chunk", "end"]
    assert peer.frames[0].header.src.role == "promoter"


def test_committed_modules_are_current() -> None:
    # Execute
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )

    # Assert
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_names_a_stale_module(tmp_path: Path) -> None:
    # Prepare: a copy of the repository's protos with one generated module edited.
    shutil.copytree(REPO_ROOT / "protos", tmp_path / "protos")
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO_ROOT / "scripts" / "gen_protos.py", tmp_path / "scripts" / "gen_protos.py")
    stale = tmp_path / "protos" / "weft" / "v1" / "executor_pb2.pyi"
    stale.write_text(stale.read_text(encoding="utf-8") + "# edited by hand\n", encoding="utf-8")

    # Execute
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )

    # Assert
    assert result.returncode == 1
    assert "executor_pb2.pyi (differs from its .proto)" in result.stderr
    assert "scheduler_pb2.py" not in result.stderr


@pytest.mark.parametrize("proto", PROTO_NAMES)
def test_no_guest_or_host_wording(proto: str) -> None:
    # Execute
    text = (REPO_ROOT / "protos" / "weft" / "v1" / f"{proto}.proto").read_text(encoding="utf-8").lower()

    # Assert
    assert "guest" not in text
    assert "host" not in text.replace("host:port", "")
