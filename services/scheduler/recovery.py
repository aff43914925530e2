"""Recovery after a restart: re-attach to running tasks, re-report, re-queue unfinished jobs."""

from __future__ import annotations

import logging

from services.common.db.constants import ACTION_RUN_JOB, STATUS_WAITING, UNFINISHED_STATUSES
from services.common.db.records import JobRecord
from services.common.db.repository import list_jobs, list_tasks
from services.scheduler.task_events import TaskEvents

log = logging.getLogger("weft.scheduler")


class Recovery(TaskEvents):
    """After a restart: pick up every unfinished job where it was."""

    async def recover(self) -> None:
        """After a restart: re-attach to dispatched tasks, recompute or re-report, re-queue jobs."""
        offset = 0
        jobs: list[JobRecord] = []
        while True:
            page = await list_jobs(self.engine, statuses=UNFINISHED_STATUSES, limit=500, offset=offset)
            jobs.extend(page)
            if len(page) < 500:
                break
            offset += 500
        for job in jobs:
            mine = await list_tasks(self.engine, job_id=job.job_id, member_id=self.me)
            for record in mine:
                if record.status in UNFINISHED_STATUSES and record.executor:
                    self._reattach(record, record.executor)
                elif job.initiator_member_id != self.me and record.status != STATUS_WAITING:
                    self._report(record)
            if job.initiator_member_id == self.me:
                await self._recompute(job.job_id)
            await self._enqueue(ACTION_RUN_JOB, job.job_id)
        if jobs:
            log.info("recovered %d unfinished job(s)", len(jobs))
