"""A real scheduler on loopback with its client API guarded, and plain gRPC calls to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from protos.weft.v1 import scheduler_pb2, scheduler_pb2_grpc
from services.common import internal_auth
from services.common.config import MemberConfig
from services.common.db import access as repo
from services.common.ports import free_port
from services.scheduler.server import RunningScheduler, start_scheduler

MEMBER = "d" * 31 + "4"


@dataclass
class GuardedScheduler:
    """A started scheduler, its config and the admin token it bootstrapped."""

    running: RunningScheduler
    config: MemberConfig
    admin_token: str

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    async def token_for(self, user: str, role: str, ttl_seconds: float | None = None) -> str:
        """A new user of `role` and a token of it, made directly in the member's database."""
        if await repo.get_user(self.running.engine, user) is None:
            await repo.add_user(self.running.engine, user, role, created_by="test")
        return (await repo.issue_token(self.running.engine, user, ttl_seconds)).text

    async def audit(self) -> list[repo.AuditEntry]:
        return await repo.list_audit(self.running.engine, 1000)

    async def call(self, method: str, request: Any, token: str | None = None, **kwargs: Any) -> Any:
        """One SchedulerService call over a plain channel, with the token (if any) as bearer."""
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        async with grpc.aio.insecure_channel(self.endpoint) as channel:
            stub = scheduler_pb2_grpc.SchedulerServiceStub(channel)
            return await getattr(stub, method)(request, metadata=metadata, timeout=30, **kwargs)

    async def job_count(self) -> int:
        reply = await self.call("ListJobs", scheduler_pb2.ListJobsRequest(page_size=100), self.admin_token)
        return len(reply.jobs)


def member_config(root: Path, **scheduler: Any) -> MemberConfig:
    """A member with no peers whose executor endpoint is never dialled by these tests."""
    return MemberConfig.model_validate({
        "member_id": MEMBER, "data_dir": str(root),
        "internal_key_file": str(internal_auth.write_key(root / "internal.key")),
        "scheduler": {"listen": "127.0.0.1:0", "executors": [f"127.0.0.1:{free_port()}"], **scheduler},
        "transfer": {"internal_listen": f"127.0.0.1:{free_port()}"},
    })


@asynccontextmanager
async def guarded_scheduler(root: Path, **scheduler: Any) -> AsyncIterator[GuardedScheduler]:
    config = member_config(root, **scheduler)
    running = await start_scheduler(config)
    try:
        token = (root / "admin.token").read_text(encoding="ascii").strip()
        yield GuardedScheduler(running, config, token)
    finally:
        await running.stop()
