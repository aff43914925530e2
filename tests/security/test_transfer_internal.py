"""The transfer service's internal API: the scheduler's calls need its credential, a task's reach only its job."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kernel.federation.base import Party, RoleTable
from kernel.federation.lane import _Connection, lane_of
from kernel.federation.wire.lane import CREDENTIAL_LENGTH, MAGIC, OPEN_RECEIVE
from protos.weft.v1 import common_pb2, transfer_pb2, transfer_pb2_grpc
from services.common import internal_auth
from services.transfer.loopback_services import LocalCluster, LocalMember

A, C = "a" * 32, "c" * 32
PROMOTER, ARBITER = Party("promoter", A), Party("arbiter", C)
ROLES = RoleTable({"promoter": (A,), "arbiter": (C,)})
STATS_VAR = "DistributionTransferVariable.local_statistics"  # promoter -> arbiter


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("internal"), [A, C]) as cluster:
        yield cluster


@pytest.fixture()
def session(members: LocalCluster) -> str:
    session_id = f"session-{uuid.uuid4().hex[:8]}"
    members.register_session(session_id, [PROMOTER, ARBITER])
    return session_id


def stub_with(member: LocalMember, token: str | None) -> transfer_pb2_grpc.TransferServiceStub:
    channel = grpc.insecure_channel(member.internal)
    if token is not None:
        channel = internal_auth.signed_channel(channel, lambda: token)
    return transfer_pb2_grpc.TransferServiceStub(channel)


def receive_request(session_id: str, tag: str) -> transfer_pb2.ReceiveRequest:
    return transfer_pb2.ReceiveRequest(
        session_id=session_id, name=STATS_VAR, tag=tag, timeout_ms=2000,
        src=common_pb2.Party(role="promoter", member_id=A), dst=common_pb2.Party(role="arbiter", member_id=C))


def test_a_local_process_without_the_jobs_credential_cannot_read_its_mailbox(
    members: LocalCluster, session: str,
) -> None:
    # Prepare: a message waits in C's mailbox for the session's arbiter task.
    members[A].federation(session, PROMOTER, ROLES).remote(STATS_VAR, "fit", {"k": 1}, [ARBITER])
    other_job = f"{session}-other"
    members.register_session(other_job, [PROMOTER, ARBITER])

    # Execute: no credential, another job's task credential, a foreign key, over gRPC and the lane.
    refused = {}
    for name, token in (("none", None), ("other job", members[C].task_credential(other_job)),
                        ("foreign key", internal_auth.sign(bytes(32), internal_auth.TASK, job=f"job-{session}"))):
        with pytest.raises(grpc.RpcError) as error:
            list(stub_with(members[C], token).Receive(receive_request(session, "fit"), timeout=10))
        refused[name] = error.value
    with grpc.insecure_channel(members[C].internal) as channel:
        lane = lane_of(channel, members[C].internal, credential=members[C].task_credential(session))
    assert lane is not None
    connection = _Connection(lane.address, connect_timeout=5)
    connection.write(MAGIC + bytes((OPEN_RECEIVE,)) + CREDENTIAL_LENGTH.pack(0),
                     receive_request(session, "fit").SerializeToString())
    is_status, lane_body = connection.read()
    connection.close()

    # Assert: refused with the reason; the message is still there for the job's own task.
    assert refused["none"].code() == grpc.StatusCode.UNAUTHENTICATED
    assert refused["none"].details() == ("transfer Receive needs the member-internal credential of the task; "
                                         "none was sent")
    assert refused["other job"].code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"session {session} belongs to job job-{session}, the task's credential to job job-{other_job}" in \
        refused["other job"].details()
    assert refused["foreign key"].code() == grpc.StatusCode.UNAUTHENTICATED
    assert is_status and lane_body[0] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert b"data lane call needs the member-internal credential" in lane_body
    got = members[C].federation(session, ARBITER, ROLES).get(STATS_VAR, "fit", [PROMOTER], timeout=10)
    assert got == [{"k": 1}]


def test_session_table_and_control_relay_answer_the_scheduler_only(members: LocalCluster, session: str) -> None:
    # Prepare
    register = transfer_pb2.RegisterSessionRequest(
        session_id="planted", job_id="job-planted", parties=[common_pb2.Party(role="promoter", member_id=A)])
    relay = transfer_pb2.ControlRequest(target_member_id=C, method="/weft.v1.SchedulerPeerService/StopJob",
                                        payload=b"", timeout_ms=2000)
    as_task = stub_with(members[A], members[A].task_credential(session))
    anonymous = stub_with(members[A], None)

    # Execute
    errors = []
    for call in (lambda s: s.RegisterSession(register, timeout=10), lambda s: s.RelayControl(relay, timeout=10),
                 lambda s: s.CleanSession(transfer_pb2.CleanSessionRequest(session_id=session), timeout=10)):
        for stub in (anonymous, as_task):
            with pytest.raises(grpc.RpcError) as error:
                call(stub)
            errors.append(error.value.code())

    # Assert: UNAUTHENTICATED without a credential, PERMISSION_DENIED for a task; the session stays.
    assert errors == [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED] * 3
    members[A].federation(session, PROMOTER, ROLES).remote(STATS_VAR, "still", 1, [ARBITER])
    assert members[C].federation(session, ARBITER, ROLES).get(STATS_VAR, "still", [PROMOTER], timeout=10) == [1]


def test_the_key_file_must_exist_for_the_service_to_start(tmp_path: Path) -> None:
    # Prepare: a member whose key file is gone.
    cluster = LocalCluster(tmp_path, [A])
    (cluster[A].directory / "internal.key").unlink()

    # Execute
    cluster[A].start(wait=False)
    assert cluster[A].process is not None
    code = cluster[A].process.wait(timeout=60)

    # Assert
    assert code != 0
    assert "internal.key does not exist" in cluster[A].log_text()


def test_a_task_retries_its_transfer_service_for_about_thirty_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: the policy the CLUSTER client uses while its transfer service is away, on a
    # clock that sleeping advances (the test measures the policy, not the machine).
    import types

    import kernel.retry as retry_module
    from kernel.federation.cluster import LOCAL_BACKOFF

    clock = [0.0]
    calls: list[float] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    # The loop is tenacity's: its clock (tenacity.time) and its pause (tenacity.nap.time.sleep).
    import tenacity
    import tenacity.nap

    fake_time = types.SimpleNamespace(monotonic=lambda: clock[0], sleep=sleep)
    monkeypatch.setattr(tenacity, "time", fake_time)
    monkeypatch.setattr(tenacity.nap, "time", fake_time)

    def unavailable() -> None:
        calls.append(clock[0])
        raise ConnectionError("transfer service away")

    # Execute
    with pytest.raises(ConnectionError):
        retry_module.retry_sync(unavailable, lambda exc: True, LOCAL_BACKOFF)

    # Assert: the last attempt comes between 25 and 30 seconds after the first.
    assert 25.0 <= calls[-1] - calls[0] <= 30.0, calls
