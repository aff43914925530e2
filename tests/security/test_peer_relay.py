"""Peer calls reach a scheduler only through its own transfer service's relay, and only as the job allows.

Three members on loopback (real schedulers, executors and transfer services with mutual
TLS). A job runs; each attack is a plain gRPC client calling the provider's scheduler port
directly, as anyone on the member's network could. Every one is refused, and the job's
state at every member is what it was.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.message import Message

from protos.weft.v1 import common_pb2, scheduler_pb2
from services.common import internal_auth
from tests.test_scheduler_support import (
    ARBITER,
    PROMOTER,
    PROVIDER,
    Member,
    distribution_spec,
    load_rows,
    start_members,
    stop_members,
)

RUNNING = common_pb2.JOB_STATUS_RUNNING
BROKEN = {common_pb2.TASK_STATUS_FAILED, common_pb2.TASK_STATUS_STOPPED}
PEER = "/weft.v1.SchedulerPeerService"
OUTSIDER = "d" * 31 + "4"


@pytest.fixture()
async def running_job(tmp_path: Path) -> AsyncIterator[tuple[dict[str, Member], str]]:
    """A job that stays running: the provider takes no part in Distribution, which the arbiter waits for."""
    urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in (PROMOTER, PROVIDER, ARBITER)}
    members = await start_members(tmp_path, urls)
    load_rows(members[PROMOTER], "promoter_rows", 200, 1, True)
    load_rows(members[PROVIDER], "provider_rows", 150, 2, False, id_offset=1000)
    try:
        job_id = await members[PROMOTER].client.submit(distribution_spec(distribution_roles=["promoter", "arbiter"]))
        for member in members.values():
            await member.client.wait_status(job_id, {RUNNING}, timeout=120)
        yield members, job_id
    finally:
        await stop_members(members)


async def call_peer(member: Member, method: str, request: Message,
                    metadata: tuple[tuple[str, str], ...] = ()) -> grpc.aio.AioRpcError:
    """Call `member`'s peer API straight on its scheduler port; the error it answers."""
    async with grpc.aio.insecure_channel(member.endpoint) as channel:
        rpc = channel.unary_unary(f"{PEER}/{method}", request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=common_pb2.Ack.FromString)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rpc(request, metadata=metadata, timeout=30)
    return refused.value


async def states(members: dict[str, Member], job_id: str) -> dict[str, int]:
    """The job's status at each member; no task may have failed or been stopped."""
    out = {}
    for member_id, member in members.items():
        info = await member.client.job(job_id)
        assert not [t for t in info.tasks if t.status in BROKEN], info
        out[member_id] = info.status
    return out


def relay_credential(member: Member, source: str, method: str) -> tuple[tuple[str, str], ...]:
    """What `member`'s own transfer service would stamp on a call from `source`."""
    key = internal_auth.read_key(member.config["internal_key_file"])
    return internal_auth.metadata(internal_auth.sign(key, internal_auth.RELAY, member=source, method=f"{PEER}/{method}"))


async def test_forged_peer_calls_without_the_relay_credential_are_refused(
    running_job: tuple[dict[str, Member], str],
) -> None:
    # Prepare: the metadata the transfer service used to pass, claiming to be the initiator.
    members, job_id = running_job
    provider = members[PROVIDER]
    claims_initiator = (("weft-source-member-id", PROMOTER),)
    spec = json.dumps(distribution_spec())
    forged_job = "20990101000000forgedjob00"

    # Execute
    pushed = await call_peer(provider, "PushJobStatus", scheduler_pb2.PushJobStatusRequest(
        job_id=job_id, sender_member_id=PROMOTER, status=common_pb2.JOB_STATUS_FAILED, message="forged"),
        claims_initiator)
    stopped = await call_peer(provider, "StopJob", scheduler_pb2.PeerStopJobRequest(
        job_id=job_id, sender_member_id=PROMOTER, reason="forged"), claims_initiator)
    created = await call_peer(provider, "CreateJob", scheduler_pb2.CreateJobRequest(
        job_id=forged_job, spec_json=spec, sender_member_id=PROMOTER), claims_initiator)

    # Assert: UNAUTHENTICATED, one clear message; nothing changed, no job row, no task started.
    for refused, method in ((pushed, "PushJobStatus"), (stopped, "StopJob"), (created, "CreateJob")):
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED, refused
        assert refused.details() == (f"peer call {method} needs the member-internal credential of the relay; "
                                     "none was sent")
    assert await states(members, job_id) == {m: RUNNING for m in members}
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await provider.client.job(forged_job)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert not [t for t in await provider.executor_tasks() if t.job_id == forged_job]


async def test_a_credential_signed_with_another_key_or_for_another_method_is_refused(
    running_job: tuple[dict[str, Member], str],
) -> None:
    # Prepare: a key of another member (the arbiter's), and a genuine credential for StopJob.
    members, job_id = running_job
    provider = members[PROVIDER]
    push = scheduler_pb2.PushJobStatusRequest(job_id=job_id, sender_member_id=PROMOTER,
                                              status=common_pb2.JOB_STATUS_FAILED, message="forged")

    # Execute
    foreign = await call_peer(provider, "PushJobStatus", push,
                              relay_credential(members[ARBITER], PROMOTER, "PushJobStatus"))
    other_method = await call_peer(provider, "PushJobStatus", push, relay_credential(provider, PROMOTER, "StopJob"))
    captured = relay_credential(provider, ARBITER, "StopJob")  # a genuine call, captured and sent again
    stop = scheduler_pb2.PeerStopJobRequest(job_id=job_id, sender_member_id=ARBITER)
    first = await call_peer(provider, "StopJob", stop, captured)
    replayed = await call_peer(provider, "StopJob", stop, captured)

    # Assert
    assert foreign.code() == grpc.StatusCode.UNAUTHENTICATED
    assert foreign.details() == "peer call PushJobStatus: the internal credential is not signed with this member's key"
    assert other_method.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "issued for /weft.v1.SchedulerPeerService/StopJob" in other_method.details()
    assert first.code() == grpc.StatusCode.PERMISSION_DENIED
    assert replayed.code() == grpc.StatusCode.UNAUTHENTICATED and "used before" in replayed.details()
    assert await states(members, job_id) == {m: RUNNING for m in members}


async def test_a_relayed_peer_acts_only_on_its_jobs_and_in_its_role(
    running_job: tuple[dict[str, Member], str],
) -> None:
    # Prepare: genuine relay credentials (as the provider's transfer service would stamp them)
    # for the arbiter, a party but not the initiator, and for a member the provider does not know.
    members, job_id = running_job
    provider = members[PROVIDER]

    # Execute
    push = await call_peer(provider, "PushJobStatus", scheduler_pb2.PushJobStatusRequest(
        job_id=job_id, sender_member_id=ARBITER, status=common_pb2.JOB_STATUS_FAILED, message="not mine"),
        relay_credential(provider, ARBITER, "PushJobStatus"))
    stop = await call_peer(provider, "StopJob", scheduler_pb2.PeerStopJobRequest(
        job_id=job_id, sender_member_id=ARBITER, reason="not mine"), relay_credential(provider, ARBITER, "StopJob"))
    create = await call_peer(provider, "CreateJob", scheduler_pb2.CreateJobRequest(
        job_id="20990101000000arbiterjob0", spec_json=json.dumps(distribution_spec()), sender_member_id=ARBITER),
        relay_credential(provider, ARBITER, "CreateJob"))
    spoofed = await call_peer(provider, "StopJob", scheduler_pb2.PeerStopJobRequest(
        job_id=job_id, sender_member_id=PROMOTER, reason="spoofed sender"), relay_credential(provider, ARBITER, "StopJob"))
    report = await call_peer(members[PROMOTER], "ReportTaskStatus", scheduler_pb2.ReportTaskStatusRequest(
        job_id=job_id, sender_member_id=ARBITER, task_id=f"{job_id}_dataio_0_provider_{PROVIDER}",
        status=common_pb2.TASK_STATUS_FAILED, attempt=1), relay_credential(members[PROMOTER], ARBITER, "ReportTaskStatus"))
    outsider = await call_peer(provider, "StopJob", scheduler_pb2.PeerStopJobRequest(
        job_id=job_id, sender_member_id=OUTSIDER), relay_credential(provider, OUTSIDER, "StopJob"))

    # Assert: PERMISSION_DENIED, each naming why; the job runs on everywhere.
    for refused, text in ((push, f"member {ARBITER} is not the initiator of job {job_id}"),
                          (stop, f"only the initiator stops job {job_id}"),
                          (create, f"member {ARBITER} is not the initiator ({PROMOTER}) of this job"),
                          (spoofed, f"sender_member_id {PROMOTER} is not the calling member {ARBITER}"),
                          (report, f"belongs to member {PROVIDER}, not {ARBITER}"),
                          (outsider, f"member {OUTSIDER} is not a member this one knows")):
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED, refused
        assert text in refused.details()
    assert await states(members, job_id) == {m: RUNNING for m in members}
