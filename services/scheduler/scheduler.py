"""One member's scheduler: its parts joined in one class, and their start and close."""

from __future__ import annotations

import asyncio

from services.scheduler.dispatch import Dispatch
from services.scheduler.federated_status import FederatedStatus
from services.scheduler.queue_consumer import QueueConsumer
from services.scheduler.recovery import Recovery
from services.scheduler.state import SchedulerState
from services.scheduler.stop_and_rerun import StopAndRerun
from services.scheduler.submission import Submission
from services.scheduler.task_events import TaskEvents
from services.scheduler.watch import Watch


class Scheduler(QueueConsumer, Submission, Recovery, Watch, Dispatch, StopAndRerun, TaskEvents,
                FederatedStatus, SchedulerState):
    """One member's scheduler: owns its queue consumers, task watchers and peer calls.

    Each responsibility lives in its own module, as a class built on the ones it uses:
    `submission` (SubmitJob, CreateJob), `queue_consumer` (flow_action_queue), `dispatch`
    (ready tasks to executors), `task_events` (following a task), `federated_status`
    (reports and pushes between members), `stop_and_rerun`, `recovery` (after a restart)
    and `watch` (GetJob, WatchJob), all sharing `state.SchedulerState`.
    """

    async def start(self) -> None:
        """Recover unfinished jobs, then start the queue consumers."""
        await self.recover()
        for index in range(self.settings.consumers):
            name = f"{self.settings.consumer_name}-{index}"
            self._consumers.append(asyncio.create_task(self._consume(name), name=f"consumer-{index}"))

    async def close(self) -> None:
        self._closing = True
        tasks = [*self._consumers, *self._watchers.values(), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.events.close()
        await self.executors.close()
        await self.peers.close()
        if self.transfer is not None:
            await self.transfer.close()
