"""Users, tokens and the audit log through AdminService and `weft users` / `weft audit`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from protos.weft.v1 import admin_pb2, admin_pb2_grpc, scheduler_pb2
from services.client import cli
from services.common.auth import METHOD_ROLES
from tests.security.client_kit import GuardedScheduler, guarded_scheduler


@pytest.fixture()
async def member(tmp_path: Path) -> AsyncIterator[GuardedScheduler]:
    async with guarded_scheduler(tmp_path) as scheduler:
        yield scheduler


async def _admin(member: GuardedScheduler, method: str, request: object, token: str | None) -> object:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    async with grpc.aio.insecure_channel(member.endpoint) as channel:
        return await getattr(admin_pb2_grpc.AdminServiceStub(channel), method)(request, metadata=metadata, timeout=30)


async def test_an_admin_adds_a_user_whose_token_works_until_revoked(member: GuardedScheduler) -> None:
    # Execute
    added = await _admin(member, "AddUser", admin_pb2.AddUserRequest(name="olga", role="operator"), member.admin_token)
    token = added.token.token  # type: ignore[attr-defined]
    listed = await member.call("ListJobs", scheduler_pb2.ListJobsRequest(), token)
    await _admin(member, "RevokeUser", admin_pb2.RevokeUserRequest(name="olga"), member.admin_token)
    with pytest.raises(grpc.aio.AioRpcError) as after:
        await member.call("ListJobs", scheduler_pb2.ListJobsRequest(), token)

    # Assert
    assert token.startswith("weft_") and added.token.expires_at_ms > 0  # type: ignore[attr-defined]
    assert list(listed.jobs) == []
    assert after.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert after.value.details() == f"API token {added.token.token_id} was revoked"  # type: ignore[attr-defined]
    users = await _admin(member, "ListUsers", admin_pb2.ListUsersRequest(), member.admin_token)
    assert [(u.name, u.role, u.created_by, u.revoked_at_ms > 0) for u in users.users] == [  # type: ignore[attr-defined]
        ("admin", "admin", "bootstrap", False), ("olga", "operator", "admin", True)]


async def test_only_an_admin_manages_users(member: GuardedScheduler) -> None:
    # Prepare
    operator = await member.token_for("olga", "operator")

    # Execute
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _admin(member, "AddUser", admin_pb2.AddUserRequest(name="mallory", role="admin"), operator)
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await _admin(member, "ListAudit", admin_pb2.ListAuditRequest(), None)

    # Assert
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == "user 'olga' (role operator) may not call AddUser; it needs role admin or above"
    assert anonymous.value.code() is grpc.StatusCode.UNAUTHENTICATED
    users = await _admin(member, "ListUsers", admin_pb2.ListUsersRequest(), member.admin_token)
    assert "mallory" not in [u.name for u in users.users]  # type: ignore[attr-defined]


async def test_the_last_admin_cannot_be_revoked(member: GuardedScheduler) -> None:
    # Execute
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _admin(member, "RevokeUser", admin_pb2.RevokeUserRequest(name="admin"), member.admin_token)

    # Assert
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "last active admin" in (caught.value.details() or "")
    assert len((await member.call("ListJobs", scheduler_pb2.ListJobsRequest(), member.admin_token)).jobs) == 0


async def test_weft_users_and_weft_audit(member: GuardedScheduler, capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare
    base = ["--scheduler", member.endpoint, "--token", member.admin_token]

    # Execute: the CLI blocks, so it runs in a thread while this loop serves the scheduler.
    added = await asyncio.to_thread(cli.main, [*base, "users", "add", "vera", "--role", "viewer"])
    token = capsys.readouterr().out.strip()
    listed = await asyncio.to_thread(cli.main, [*base, "users", "list"])
    users_out = capsys.readouterr().out
    denied = await asyncio.to_thread(cli.main, ["--scheduler", member.endpoint, "--token", token, "audit"])
    denied_err = capsys.readouterr().err
    revoked = await asyncio.to_thread(cli.main, [*base, "users", "revoke", "vera"])
    audit = await asyncio.to_thread(cli.main, [*base, "audit", "--limit", "10"])
    audit_out = capsys.readouterr().out

    # Assert
    assert (added, listed, denied, revoked, audit) == (0, 0, 1, 0, 0)
    assert token.startswith("weft_")
    assert "vera" in users_out and "viewer" in users_out
    assert denied_err.strip() == "weft: user 'vera' (role viewer) may not call ListAudit; it needs role admin or above"
    assert "AddUser" in audit_out and "RevokeUser" in audit_out and "user vera" in audit_out
    entries = await _admin(member, "ListAudit", admin_pb2.ListAuditRequest(limit=10), member.admin_token)
    assert [(e.user, e.method, e.target, e.outcome) for e in entries.entries] == [  # type: ignore[attr-defined]
        ("admin", "RevokeUser", "user vera", "OK"), ("admin", "AddUser", "user vera", "OK")]


def test_every_admin_rpc_names_its_least_role() -> None:
    service = admin_pb2.DESCRIPTOR.services_by_name["AdminService"]
    assert [m.name for m in service.methods if f"/weft.v1.AdminService/{m.name}" not in METHOD_ROLES] == []
