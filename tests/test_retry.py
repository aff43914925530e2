"""The one retry helper (kernel.retry): attempts, the deadline, what is retried, both flavours."""

from __future__ import annotations

import asyncio

import pytest

from kernel.retry import Backoff, retry_async, retry_sync

QUICK = Backoff(attempts=4, base_delay=0.001, max_delay=0.002)


class Flaky:
    """Fails `failures` times with `error`, then returns "done"; counts the calls."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def test_a_call_is_retried_until_it_succeeds() -> None:
    # Prepare
    call = Flaky(3, ConnectionError("away"))

    # Execute
    result = retry_sync(call, lambda exc: isinstance(exc, ConnectionError), QUICK)

    # Assert
    assert (result, call.calls) == ("done", 4)


def test_the_last_error_is_raised_as_it_is_after_the_attempts() -> None:
    # Prepare
    call = Flaky(10, ConnectionError("still away"))

    # Execute / Assert
    with pytest.raises(ConnectionError, match="still away"):
        retry_sync(call, lambda exc: True, QUICK)
    assert call.calls == 4


def test_an_error_not_worth_a_retry_is_raised_at_once() -> None:
    # Prepare
    call = Flaky(1, ValueError("bad request"))

    # Execute / Assert
    with pytest.raises(ValueError, match="bad request"):
        retry_sync(call, lambda exc: isinstance(exc, ConnectionError), QUICK)
    assert call.calls == 1


def test_the_deadline_stops_before_the_attempts_run_out() -> None:
    # Prepare: pauses of 20-40 ms and 100 attempts, but 100 ms for all of them.
    call = Flaky(1000, ConnectionError("away"))
    policy = Backoff(attempts=100, base_delay=0.02, max_delay=0.04, deadline=0.1)

    # Execute / Assert
    with pytest.raises(ConnectionError):
        retry_sync(call, lambda exc: True, policy)
    assert 2 <= call.calls <= 6


def test_the_async_flavour_retries_and_never_retries_a_cancellation() -> None:
    # Prepare
    call = Flaky(2, ConnectionError("away"))
    cancelled = Flaky(5, asyncio.CancelledError())

    async def once(flaky: Flaky) -> str:
        return flaky()

    async def both() -> tuple[str, str]:
        result = await retry_async(lambda: once(call), lambda exc: True, QUICK)
        try:
            await retry_async(lambda: once(cancelled), lambda exc: True, QUICK)
        except asyncio.CancelledError:
            return result, "cancelled"
        return result, "not cancelled"

    # Execute
    outcome = asyncio.run(both())

    # Assert
    assert outcome == ("done", "cancelled")
    assert (call.calls, cancelled.calls) == (3, 1)
