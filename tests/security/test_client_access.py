"""The client API refuses callers without a valid credential or role, and audits every change."""

from __future__ import annotations

import asyncio
import hashlib
import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos.weft.v1 import admin_pb2, scheduler_pb2
from services.common.auth import METHOD_ROLES, new_token
from services.common.db import access as repo
from services.scheduler.access import BAD_TOKEN, NO_CREDENTIAL
from tests.security.client_kit import MEMBER, GuardedScheduler, guarded_scheduler

SPEC = json.dumps({
    "name": "attack", "initiator": {"member_id": MEMBER, "role": "promoter"}, "role": {"promoter": [MEMBER]},
    "job_args": {MEMBER: {"data": {"train": {"namespace": "x", "name": "rows"}}}},
    "components": {"dataio_0": {"module": "DataIO", "input": {"data": {"data": ["args.train"]}},
                                "output": {"data": ["train"]}}},
})


@pytest.fixture()
async def member(tmp_path: Path) -> AsyncIterator[GuardedScheduler]:
    async with guarded_scheduler(tmp_path) as scheduler:
        yield scheduler


def _upload(name: str) -> list[scheduler_pb2.UploadDataSetRequest]:
    data = b"id,x\nu1,1\nu2,2\n"
    header = scheduler_pb2.UploadDataSetHeader(
        namespace="stolen", name=name, format=scheduler_pb2.DATA_FORMAT_CSV, id_column="id",
        total_size=len(data), sha256=hashlib.sha256(data).digest(), overwrite=True)
    return [scheduler_pb2.UploadDataSetRequest(header=header), scheduler_pb2.UploadDataSetRequest(chunk=data)]


async def _refused(member: GuardedScheduler, method: str, request: object, token: str | None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await member.call(method, request, token)
    return caught.value


async def _nothing_stored(member: GuardedScheduler) -> None:
    assert await member.job_count() == 0
    data_sets = await member.call("ListDataSets", scheduler_pb2.ListDataSetsRequest(), member.admin_token)
    assert list(data_sets.data_sets) == []
    assert [e for e in await member.audit() if e.outcome == "OK"] == []


async def test_a_call_without_a_credential_is_unauthenticated_and_stores_nothing(member: GuardedScheduler) -> None:
    # Execute
    submit = await _refused(member, "SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=SPEC), None)
    upload = await _refused(member, "UploadDataSet", iter(_upload("rows")), None)
    listed = await _refused(member, "ListDataSets", scheduler_pb2.ListDataSetsRequest(), None)

    # Assert
    for error in (submit, upload, listed):
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == NO_CREDENTIAL
    await _nothing_stored(member)
    assert await member.audit() == []


async def test_a_forged_token_is_unauthenticated(member: GuardedScheduler) -> None:
    # Prepare: a well-formed token never issued here, and a real token id with a made-up secret.
    forged = new_token().text
    real_id = (await member.token_for("olga", "operator")).split(".")[0]
    guessed = f"{real_id}.{new_token().text.split('.')[1]}"

    # Execute
    errors = [await _refused(member, "SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=SPEC), token)
              for token in (forged, guessed)]
    garbage = await _refused(member, "SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=SPEC), "letmein")

    # Assert
    for error in errors:
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == BAD_TOKEN
    assert garbage.code() is grpc.StatusCode.UNAUTHENTICATED
    assert garbage.details().startswith(BAD_TOKEN)
    await _nothing_stored(member)


@pytest.fixture()
async def uncached(tmp_path: Path) -> AsyncIterator[GuardedScheduler]:
    """A scheduler that reads a token's row at every call (no verified token remembered)."""
    async with guarded_scheduler(tmp_path, auth={"token_cache_s": 0}) as scheduler:
        yield scheduler


async def test_a_revoked_token_is_unauthenticated(uncached: GuardedScheduler) -> None:
    # Prepare: revoked in the database (as another replica would) right after a call that worked
    member = uncached
    token = await member.token_for("olga", "operator")
    token_id = token.split(".")[0].removeprefix("weft_")
    await member.call("ListJobs", scheduler_pb2.ListJobsRequest(), token)  # works before the revocation
    await repo.revoke_token(member.running.engine, token_id)

    # Execute
    error = await _refused(member, "SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=SPEC), token)

    # Assert
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == f"API token {token_id} was revoked"
    await _nothing_stored(member)


async def test_a_token_revoked_through_this_scheduler_is_refused_at_its_next_call(member: GuardedScheduler) -> None:
    # Prepare: a token trusted from a call that worked (remembered for token_cache_s)
    token = await member.token_for("olga", "operator")
    token_id = token.split(".")[0].removeprefix("weft_")
    await member.call("ListJobs", scheduler_pb2.ListJobsRequest(), token)
    async with grpc.aio.insecure_channel(member.endpoint) as channel:
        await channel.unary_unary("/weft.v1.AdminService/RevokeToken")(
            admin_pb2.RevokeTokenRequest(token_id=token_id).SerializeToString(),
            metadata=(("authorization", f"Bearer {member.admin_token}"),), timeout=30)

    # Execute
    error = await _refused(member, "SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=SPEC), token)

    # Assert: refused, nothing submitted; the audit log holds the revocation only
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == f"API token {token_id} was revoked"
    assert await member.job_count() == 0
    assert [(e.method, e.outcome) for e in await member.audit()] == [("RevokeToken", "OK")]


async def test_a_token_revoked_at_another_replica_is_refused_once_the_cache_time_passed(tmp_path: Path) -> None:
    # Prepare: a short cache time; the token is trusted, then revoked straight in the database
    async with guarded_scheduler(tmp_path, auth={"token_cache_s": 0.5}) as member:
        token = await member.token_for("olga", "operator")
        token_id = token.split(".")[0].removeprefix("weft_")
        await member.call("ListJobs", scheduler_pb2.ListJobsRequest(), token)
        await repo.revoke_token(member.running.engine, token_id)

        # Execute: call until refused (bounded by the test's timeout, far past the cache time)
        async def refusal() -> grpc.aio.AioRpcError:
            while True:
                try:
                    await member.call("ListJobs", scheduler_pb2.ListJobsRequest(), token)
                except grpc.aio.AioRpcError as exc:
                    return exc
                await asyncio.sleep(0.1)

        error = await asyncio.wait_for(refusal(), 30)

        # Assert
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == f"API token {token_id} was revoked"


async def test_a_remembered_token_is_no_key_for_another_secret_of_its_id(member: GuardedScheduler) -> None:
    # Prepare: the token is trusted; a caller knows its public id but not its secret
    token = await member.token_for("olga", "operator")
    await member.call("ListJobs", scheduler_pb2.ListJobsRequest(), token)
    token_id = token.split(".")[0]
    forged = f"{token_id}.{new_token().text.split('.')[1]}"

    # Execute
    error = await _refused(member, "SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=SPEC), forged)

    # Assert
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == BAD_TOKEN
    await _nothing_stored(member)


async def test_an_expired_token_is_unauthenticated(member: GuardedScheduler) -> None:
    # Prepare: a token whose lifetime ended a minute ago.
    token = await member.token_for("olga", "operator", ttl_seconds=-60)
    token_id = token.split(".")[0].removeprefix("weft_")

    # Execute
    error = await _refused(member, "SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=SPEC), token)

    # Assert
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert error.details().startswith(f"API token {token_id} expired at ")
    await _nothing_stored(member)


async def test_a_viewer_may_read_but_not_change(member: GuardedScheduler) -> None:
    # Prepare
    token = await member.token_for("vera", "viewer")

    # Execute
    listed = await member.call("ListJobs", scheduler_pb2.ListJobsRequest(), token)
    submit = await _refused(member, "SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=SPEC), token)
    upload = await _refused(member, "UploadDataSet", iter(_upload("rows")), token)
    stop = await _refused(member, "StopJob", scheduler_pb2.StopJobRequest(job_id="j1"), token)

    # Assert
    assert list(listed.jobs) == []
    for error, method in ((submit, "SubmitJob"), (upload, "UploadDataSet"), (stop, "StopJob")):
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
        assert error.details() == f"user 'vera' (role viewer) may not call {method}; it needs role operator or above"
    await _nothing_stored(member)
    audit = await member.audit()
    assert sorted((e.user_name, e.method, e.outcome) for e in audit) == [
        ("vera", m, "PERMISSION_DENIED") for m in ("StopJob", "SubmitJob", "UploadDataSet")]


async def test_an_operator_changes_and_every_change_is_audited(member: GuardedScheduler) -> None:
    # Prepare
    token = await member.token_for("olga", "operator")

    # Execute: an upload that succeeds, a submission the spec check refuses.
    info = await member.call("UploadDataSet", iter(_upload("rows")), token)
    refused = await _refused(member, "SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json="{}"), token)

    # Assert
    assert info.row_count == 2
    assert refused.code() is grpc.StatusCode.INVALID_ARGUMENT
    audit = sorted(await member.audit(), key=lambda e: e.at)
    assert [(e.user_name, e.via, e.method, e.target, e.outcome) for e in audit] == [
        ("olga", "token", "UploadDataSet", "data_set stolen/rows", "OK"),
        ("olga", "token", "SubmitJob", "", "INVALID_ARGUMENT"),
    ]
    assert all(e.credential_id == token.split(".")[0].removeprefix("weft_") for e in audit)


async def test_health_and_the_peer_api_are_not_behind_client_logins(member: GuardedScheduler) -> None:
    # Execute
    async with grpc.aio.insecure_channel(member.endpoint) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)

    # Assert
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_bootstrap_token_is_private_and_made_once(tmp_path: Path) -> None:
    # Execute: start the member twice on the same database.
    async with guarded_scheduler(tmp_path) as first:
        token = first.admin_token
    mode = stat.S_IMODE((tmp_path / "admin.token").stat().st_mode)
    async with guarded_scheduler(tmp_path) as second:
        again = second.admin_token
        users = await repo.list_users(second.running.engine)

    # Assert
    assert mode == 0o600
    assert again == token
    assert [(u.name, u.role, u.active_tokens) for u in users] == [("admin", "admin", 1)]


def test_every_client_rpc_names_its_least_role() -> None:
    # Prepare
    from protos.weft.v1 import scheduler_pb2 as module

    service = module.DESCRIPTOR.services_by_name["SchedulerService"]

    # Assert
    missing = [m.name for m in service.methods if f"/weft.v1.SchedulerService/{m.name}" not in METHOD_ROLES]
    assert missing == []
