"""The SDK's clients send the token they are given (or WEFT_TOKEN) and name a refusal by its own error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.client.sdk import (
    AsyncSchedulerClient,
    PermissionDeniedError,
    SchedulerClient,
    UnauthenticatedError,
)
from services.scheduler.access import NO_CREDENTIAL
from tests.security.client_kit import GuardedScheduler, guarded_scheduler


@pytest.fixture()
async def member(tmp_path: Path) -> AsyncIterator[GuardedScheduler]:
    async with guarded_scheduler(tmp_path) as scheduler:
        yield scheduler


async def test_the_async_client_sends_its_token(member: GuardedScheduler, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.delenv("WEFT_TOKEN", raising=False)
    viewer = await member.token_for("vera", "viewer")

    # Execute
    async with AsyncSchedulerClient(member.endpoint, 30, token=viewer) as client:
        listed = await client.list_jobs()
        with pytest.raises(PermissionDeniedError) as denied:
            await client.stop("20250101000000abcdefabcdef")
    async with AsyncSchedulerClient(member.endpoint, 30) as anonymous:
        with pytest.raises(UnauthenticatedError) as refused:
            await anonymous.data_sets()

    # Assert
    assert list(listed.jobs) == []
    assert denied.value.code == "PERMISSION_DENIED"
    assert str(denied.value) == "user 'vera' (role viewer) may not call StopJob; it needs role operator or above"
    assert str(refused.value) == NO_CREDENTIAL


async def test_the_blocking_client_takes_weft_token(member: GuardedScheduler, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.setenv("WEFT_TOKEN", member.admin_token)

    # Execute: the blocking client runs in a thread while this loop serves the scheduler.
    def users() -> list[str]:
        with SchedulerClient(member.endpoint, 30) as client:
            return [user.name for user in client.users()]

    names = await asyncio.to_thread(users)

    # Assert
    assert names == ["admin"]
