"""Client certificates on the scheduler's TLS listener: the member's CA, a known user, the lower role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from protos.weft.v1 import admin_pb2, admin_pb2_grpc, scheduler_pb2, scheduler_pb2_grpc
from services.common.certs import create_ca, issue_member_cert, issue_user_cert
from services.common.db import access as repo
from services.scheduler.access import NO_CREDENTIAL
from tests.security.client_kit import MEMBER, GuardedScheduler, guarded_scheduler


@dataclass
class TlsMember:
    scheduler: GuardedScheduler
    root: Path

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.scheduler.running.tls_port}"

    def channel(self, ca_dir: Path, cert: Path, key: Path) -> grpc.aio.Channel:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(self.root / "member-ca" / "ca.crt").read_bytes(),
            private_key=key.read_bytes(), certificate_chain=cert.read_bytes())
        return grpc.aio.secure_channel(self.endpoint, credentials)

    def user_cert(self, user: str, role: str, ca: str = "member-ca") -> tuple[Path, Path]:
        files = issue_user_cert(self.root / ca, user, role, self.root / f"{ca}-users")
        return files.cert_file, files.key_file


@pytest.fixture()
async def member(tmp_path: Path) -> AsyncIterator[TlsMember]:
    # The member's own CA issues the scheduler's server certificate and its users' certificates.
    create_ca(tmp_path / "member-ca", name="member CA")
    server = issue_member_cert(tmp_path / "member-ca", MEMBER, ["127.0.0.1"], tmp_path / "server")
    async with guarded_scheduler(tmp_path / "data", auth={
        "tls_listen": "127.0.0.1:0", "tls_cert_file": str(server.cert_file), "tls_key_file": str(server.key_file),
        "client_ca_file": str(server.ca_file),
    }) as scheduler:
        yield TlsMember(scheduler, tmp_path)


async def _list_jobs(member: TlsMember, cert: Path, key: Path) -> scheduler_pb2.ListJobsResponse:
    async with member.channel(member.root, cert, key) as channel:
        return await scheduler_pb2_grpc.SchedulerServiceStub(channel).ListJobs(scheduler_pb2.ListJobsRequest(), timeout=30)


async def test_a_user_certificate_of_the_member_ca_authenticates_and_is_audited(member: TlsMember) -> None:
    # Prepare
    await member.scheduler.token_for("otto", "operator")
    cert, key = member.user_cert("otto", "operator")

    # Execute
    listed = await _list_jobs(member, cert, key)
    async with member.channel(member.root, cert, key) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await scheduler_pb2_grpc.SchedulerServiceStub(channel).SubmitJob(
                scheduler_pb2.SubmitJobRequest(spec_json="{}"), timeout=30)

    # Assert: authorized (the spec check ran and refused the empty spec), audited as a certificate.
    assert list(listed.jobs) == []
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    audit = await member.scheduler.audit()
    assert [(e.user_name, e.via, e.method, e.outcome) for e in audit] == [
        ("otto", "certificate", "SubmitJob", "INVALID_ARGUMENT")]


async def test_a_certificate_signed_by_another_ca_is_refused_at_the_handshake(member: TlsMember) -> None:
    # Prepare: a forger's CA issues a certificate for a real admin's name.
    create_ca(member.root / "forger-ca", name="member CA")
    cert, key = member.user_cert("admin", "admin", ca="forger-ca")

    # Execute
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _list_jobs(member, cert, key)

    # Assert: the TLS handshake fails, so no call reaches the scheduler; nothing is stored.
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert await member.scheduler.job_count() == 0
    assert await member.scheduler.audit() == []


async def test_a_certificate_cannot_raise_its_users_role(member: TlsMember) -> None:
    # Prepare: the certificate says admin, the member knows otto as an operator.
    await member.scheduler.token_for("otto", "operator")
    cert, key = member.user_cert("otto", "admin")

    # Execute
    async with member.channel(member.root, cert, key) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await admin_pb2_grpc.AdminServiceStub(channel).AddUser(
                admin_pb2.AddUserRequest(name="mallory", role="admin"), timeout=30)

    # Assert
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == "user 'otto' (role operator) may not call AddUser; it needs role admin or above"
    assert await repo.get_user(member.scheduler.running.engine, "mallory") is None


async def test_a_certificate_of_a_revoked_or_unknown_user_is_unauthenticated(member: TlsMember) -> None:
    # Prepare
    await member.scheduler.token_for("otto", "operator")
    await repo.revoke_user(member.scheduler.running.engine, "otto")
    revoked = member.user_cert("otto", "operator")
    unknown = member.user_cert("nobody", "viewer")

    # Execute
    errors = []
    for cert, key in (revoked, unknown):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _list_jobs(member, cert, key)
        errors.append(caught.value)

    # Assert
    assert [e.code() for e in errors] == [grpc.StatusCode.UNAUTHENTICATED] * 2
    assert errors[0].details() == "user 'otto' of the client certificate was revoked"
    assert errors[1].details() == "client certificate names user 'nobody', who is not a user of this member"


async def test_a_member_certificate_is_not_a_user_credential(member: TlsMember) -> None:
    # Prepare: a certificate of the same CA without a user role (a member's own certificate).
    files = issue_member_cert(member.root / "member-ca", "e" * 32, ["127.0.0.1"], member.root / "other")

    # Execute
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _list_jobs(member, files.cert_file, files.key_file)

    # Assert
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == NO_CREDENTIAL


async def test_weft_certs_issue_user_writes_a_certificate_the_listener_accepts(member: TlsMember) -> None:
    # Prepare
    from services.client import cli

    await member.scheduler.token_for("ci-bot", "viewer")

    # Execute
    code = cli.main(["certs", "issue-user", "ci-bot", "--role", "viewer", "--ca-dir", str(member.root / "member-ca"),
                     "--out", str(member.root / "ci-bot")])
    listed = await _list_jobs(member, member.root / "ci-bot" / "ci-bot.crt", member.root / "ci-bot" / "ci-bot.key")

    # Assert
    assert code == 0
    assert list(listed.jobs) == []
    assert oct((member.root / "ci-bot" / "ci-bot.key").stat().st_mode & 0o777) == "0o600"
