"""Dispatch: the tasks of a job that are ready go to an executor."""

from __future__ import annotations

import json
from typing import Any

from kernel.constants import BACKEND_CODES, BACKEND_LOCAL, BACKEND_SPARK
from kernel.errors import Unavailable
from protos.weft.v1 import common_pb2, executor_pb2
from services.common.db.constants import STATUS_SUCCESS, STATUS_WAITING, TERMINAL_STATUSES
from services.common.db.records import TaskRecord
from services.common.spark_conf import job_spark_options
from services.scheduler import store
from services.scheduler.spec import JobSpec, Party
from services.scheduler.task_conf import build_runtime_conf, component_session_id
from services.scheduler.task_events import TaskEvents


def _backend(job_parameters: dict[str, Any]) -> int:
    value = job_parameters.get("backend", BACKEND_LOCAL)
    name = BACKEND_CODES.get(value, "") if isinstance(value, int) else str(value).upper()
    return {BACKEND_LOCAL: common_pb2.BACKEND_LOCAL, BACKEND_SPARK: common_pb2.BACKEND_SPARK}.get(
        name, common_pb2.BACKEND_UNSPECIFIED
    )


class Dispatch(TaskEvents):
    """Advance a job: hand each task whose upstream has succeeded to an executor, then follow it."""

    async def advance(self, job_id: str) -> None:
        """Dispatch every task of this member whose upstream tasks here have succeeded."""
        if job_id in self._halted:
            return
        job, mine = await store.load_job_and_tasks(self.engine, job_id, self.me)
        if job is None or job.status in TERMINAL_STATUSES:
            return
        spec = self._spec(job)
        by_key = {(t.component, t.role): t for t in mine}
        for record in mine:
            if record.status == STATUS_WAITING and record.executor is None:
                if self._upstream_done(spec, by_key, record.component, record.role):
                    await self._dispatch(spec, record)

    async def recheck_claimed(self, job_id: str) -> None:
        """Ask the executor about this member's tasks of a job claimed for it and left unsent.

        A task is claimed (its row names an executor) before its RunTask leaves; a process
        that died in between leaves it claimed and waiting. When the job's action is claimed
        again after its holder's lease ran out, such tasks are followed like after a restart
        (`Recovery`): WatchTask answers NotFound for a task that never arrived, which
        releases its claim and queues the job again (`_task_unknown`), and a task that did
        arrive is followed from where it stands. RunTask of the same attempt attaches to
        the task at its executor, so a late original RunTask starts nothing twice.
        """
        _, mine = await store.load_job_and_tasks(self.engine, job_id, self.me)
        for record in mine:
            if (record.status == STATUS_WAITING and record.executor and record.task_id not in self._watchers
                    and record.task_id not in self._unsent):
                self._reattach(record, record.executor)

    def _upstream_done(self, spec: JobSpec, by_key: dict[tuple[str, str], TaskRecord],
                       component: str, role: str) -> bool:
        for upstream in spec.components[component].upstream:
            record = by_key.get((upstream, role))
            if record is None:
                # The upstream does not run in this role (an arbiter's DataIO): look past it.
                if not self._upstream_done(spec, by_key, upstream, role):
                    return False
            elif record.status != STATUS_SUCCESS:
                return False
        return True

    async def _dispatch(self, spec: JobSpec, record: TaskRecord) -> None:
        try:
            executor = await self.executors.pick(record.job_id)
        except Unavailable as exc:
            await self._task_failed(record, str(exc))
            return
        if not await store.claim_for_dispatch(self.engine, record.task_id, executor):
            return  # another consumer or replica dispatched it
        self._send(spec, record, executor)

    def _send(self, spec: JobSpec, record: TaskRecord, executor: str) -> None:
        """Send a task whose row is claimed for `executor` to it (RunTask) and follow it."""
        session = record.session_id or component_session_id(record.job_id, record.component)
        conf = build_runtime_conf(
            spec, record.component, Party(record.role, self.me), job_id=record.job_id,
            session_id=session, task_id=record.task_id,
        )
        task_spec = executor_pb2.TaskSpec(
            job_id=record.job_id, task_id=record.task_id, component_name=record.component,
            module=record.module, role=record.role, member_id=self.me, federation_session_id=session,
            runtime_conf_json=json.dumps(conf), priority=0, backend=_backend(spec.job_parameters),  # type: ignore[arg-type]
            attempt=record.attempt, spark=job_spark_options(spec.job_parameters),
        )
        self._follow_task(record, executor, lambda: self.executors.run_task(executor, task_spec))
