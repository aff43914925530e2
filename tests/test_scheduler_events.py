"""JobEvents: a watcher that falls behind has its stream ended, not left waiting forever."""

from __future__ import annotations

import asyncio

from protos.weft.v1 import scheduler_pb2
from services.scheduler.constants import WATCH_QUEUE_SIZE
from services.scheduler.events import JobEvents


def _event(job_id: str, n: int) -> scheduler_pb2.JobEvent:
    return scheduler_pb2.JobEvent(job_id=job_id, seq=n)


def _drain(queue: asyncio.Queue[scheduler_pb2.JobEvent | None]) -> list[scheduler_pb2.JobEvent | None]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def test_a_watcher_that_falls_behind_gets_the_end_of_its_stream() -> None:
    events = JobEvents()
    slow = events.subscribe("job-a")
    other = events.subscribe("job-b")

    # Execute: one event more than the queue holds.
    for n in range(WATCH_QUEUE_SIZE + 1):
        events.publish(_event("job-a", n))
    events.publish(_event("job-a", -1))

    # Assert: the stream ends after the events it still holds; later events no longer reach it.
    items = _drain(slow)
    assert items[-1] is None and len(items) == WATCH_QUEUE_SIZE
    assert [e.seq for e in items[:-1] if e is not None] == list(range(1, WATCH_QUEUE_SIZE))
    assert other.empty()


async def test_close_ends_every_stream_even_a_full_one() -> None:
    events = JobEvents()
    full, idle = events.subscribe("job-a"), events.subscribe("job-b")
    for n in range(WATCH_QUEUE_SIZE):
        events.publish(_event("job-a", n))

    events.close()

    assert _drain(full)[-1] is None and _drain(idle) == [None]
    events.publish(_event("job-a", 0))
    assert full.empty()
