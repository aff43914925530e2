"""Retries with exponential backoff and jitter: the one helper every retrying call uses.

The loop is tenacity's; `Backoff` is the policy a caller names (how many attempts, the
delays, a deadline for all attempts together), so call sites say what they want and not
how the loop is written.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.stop import stop_base

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays base, 2*base, 4*base, ... capped at `max_delay`, each with full jitter."""

    attempts: int = 8
    base_delay: float = 0.1
    max_delay: float = 5.0
    deadline: float | None = None  # seconds for all attempts together

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * (2 ** attempt))
        return random.uniform(ceiling / 2, ceiling)

    def wait(self, state: RetryCallState) -> float:
        """The pause after the state's attempt (tenacity counts attempts from 1)."""
        return self.delay(state.attempt_number - 1)

    def stop(self) -> stop_base:
        """Stop after `attempts`, or before a pause that would end past the deadline."""
        stop: stop_base = stop_after_attempt(self.attempts)
        if self.deadline is not None:
            stop = stop | stop_before_delay(self.deadline)
        return stop


def retry_sync(fn: Callable[[], T], should_retry: Callable[[BaseException], bool], policy: Backoff) -> T:
    """Call `fn` until it succeeds, a non-retryable error, or the attempts/deadline run out.

    The last error is raised as it is."""
    retrying = Retrying(stop=policy.stop(), wait=policy.wait, retry=retry_if_exception(should_retry), reraise=True)
    return retrying(fn)


async def retry_async(
    fn: Callable[[], Awaitable[T]], should_retry: Callable[[BaseException], bool], policy: Backoff
) -> T:
    """The asyncio twin of `retry_sync` (a cancellation is never retried)."""
    retrying = AsyncRetrying(
        stop=policy.stop(), wait=policy.wait,
        retry=retry_if_exception(lambda exc: isinstance(exc, Exception) and should_retry(exc)), reraise=True,
    )

    async def attempt() -> T:
        # Awaited here: tenacity awaits only what a coroutine function returns, and callers
        # pass lambdas that return awaitables.
        return await fn()

    return await retrying(attempt)
