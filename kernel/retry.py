"""Retries with exponential backoff and jitter: the one helper every retrying call uses."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

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


def retry_sync(fn: Callable[[], T], should_retry: Callable[[BaseException], bool], policy: Backoff) -> T:
    """Call `fn` until it succeeds, a non-retryable error, or the attempts/deadline run out."""
    start = time.monotonic()
    for attempt in range(policy.attempts):
        try:
            return fn()
        except BaseException as exc:
            last = attempt == policy.attempts - 1
            delay = policy.delay(attempt)
            over = policy.deadline is not None and time.monotonic() - start + delay > policy.deadline
            if last or over or not should_retry(exc):
                raise
            time.sleep(delay)  # backoff between retries
    raise AssertionError("unreachable: the loop returns or raises")


async def retry_async(
    fn: Callable[[], Awaitable[T]], should_retry: Callable[[BaseException], bool], policy: Backoff
) -> T:
    """The asyncio twin of `retry_sync`."""
    start = time.monotonic()
    for attempt in range(policy.attempts):
        try:
            return await fn()
        except Exception as exc:
            last = attempt == policy.attempts - 1
            delay = policy.delay(attempt)
            over = policy.deadline is not None and time.monotonic() - start + delay > policy.deadline
            if last or over or not should_retry(exc):
                raise
            await asyncio.sleep(delay)  # backoff between retries
    raise AssertionError("unreachable: the loop returns or raises")
