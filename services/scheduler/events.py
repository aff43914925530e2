"""In-process fan-out of job events to WatchJob streams (each client gets its own queue)."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from protos.weft.v1 import scheduler_pb2
from services.scheduler.constants import WATCH_QUEUE_SIZE

log = logging.getLogger("weft.scheduler.events")


class JobEvents:
    """Publishes a job's status, task, progress and metric events to its watchers."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[scheduler_pb2.JobEvent | None]]] = defaultdict(set)

    def subscribe(self, job_id: str) -> asyncio.Queue[scheduler_pb2.JobEvent | None]:
        queue: asyncio.Queue[scheduler_pb2.JobEvent | None] = asyncio.Queue(WATCH_QUEUE_SIZE)
        self._watchers[job_id].add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[scheduler_pb2.JobEvent | None]) -> None:
        watchers = self._watchers.get(job_id)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[job_id]

    def publish(self, event: scheduler_pb2.JobEvent) -> None:
        for queue in list(self._watchers.get(event.job_id, ())):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                # A client that stopped reading: end its stream rather than grow without bound.
                log.warning("a watcher of job %s fell %d events behind; closing it", event.job_id, WATCH_QUEUE_SIZE)
                self.unsubscribe(event.job_id, queue)
                _end(queue)

    def close(self) -> None:
        """End every stream (shutdown)."""
        for queues in list(self._watchers.values()):
            for queue in list(queues):
                _end(queue)
        self._watchers.clear()


def _end(queue: asyncio.Queue[scheduler_pb2.JobEvent | None]) -> None:
    """Make room for the end-of-stream marker by dropping the oldest events, then add it."""
    while True:
        try:
            queue.put_nowait(None)
            return
        except asyncio.QueueFull:
            queue.get_nowait()
