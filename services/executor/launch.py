"""Launching tasks: free slots take queued tasks, whose processes start warm or cold."""

from __future__ import annotations

import asyncio
import heapq
import logging
import signal
from pathlib import Path

from kernel.tracker import ENV_EXECUTOR_WAIT
from protos.weft.v1 import common_pb2
from services.common import internal_auth
from services.executor.constants import PY_FILES_DIR
from services.executor.launchers import (
    SparkSettings,
    build_py_files,
    local_command,
    spark_command,
    spark_environment,
    task_environment,
    task_executor_args,
)
from services.executor.process import kill_group, signal_group, start_ticks
from services.executor.supervision import Supervision
from services.executor.task import TaskRun, now_ms

log = logging.getLogger("weft.executor")


class Launch(Supervision):
    """Fill free slots from the queue: start each task's process (warm worker or cold) and wait."""

    def _dispatch(self) -> None:
        self._publish_counts()
        while self._queue and len(self._active) < self.settings.slots and not self._closed:
            _, _, run = heapq.heappop(self._queue)
            if run.status != common_pb2.TASK_STATUS_WAITING:
                continue  # stopped while queued
            self._active.add(run)
            self._spawn_background(self._run(run), f"task-{run.task_id}")

    async def _run(self, run: TaskRun) -> None:
        try:
            code = await self._launch(run)
            if code is None:
                return  # the executor is closing: the task keeps running without us
            self._conclude(run, code)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("task %s: launch failed", run.task_id)
            if run.pid:
                signal_group(run.pid, signal.SIGKILL)
            self._finish(run, common_pb2.TASK_STATUS_FAILED, f"cannot launch the task: {exc}", 0)
        finally:
            await self._close_channels(run)
            self._active.discard(run)
            self._dispatch()

    async def _launch(self, run: TaskRun) -> int | None:
        """Start the task's process (warm worker or cold) and wait for it; returns the exit code."""
        await self._open_channels(run, from_end=False)
        task_args = task_executor_args(run.spec, run.conf_path, self.storage_root,
                                       self.config.transfer.internal_listen)
        env = task_environment(run.socket_path, self.settings.heartbeat_timeout_s)
        # The task's right to its job's sessions at the transfer service: in its environment,
        # never on its command line.
        env[internal_auth.TASK_CREDENTIAL_ENV] = internal_auth.sign(
            self.key, internal_auth.TASK, job=run.spec.job_id, task=run.spec.task_id, ttl_s=internal_auth.TASK_TTL_S)
        # A task whose executor stays away longer than the scheduler waits for it ends itself.
        env[ENV_EXECUTOR_WAIT] = f"{self.settings.restart_wait_s:g}"
        spark = (SparkSettings.resolve(run.spec.spark, self.settings.spark)
                 if run.backend == common_pb2.BACKEND_SPARK else None)
        if spark is not None:
            env.update(spark_environment(self.settings.spark, run.spec.member_id))
        worker = self.pool.take(spark) if self.pool is not None else None
        if worker is not None:
            try:
                await worker.assign(task_args, env, run.directory, run.stdout_path, run.stderr_path)
            except OSError as exc:  # the worker died between ready and now: start cold instead
                log.warning("warm worker %d could not take task %s (%s); starting it cold",
                            worker.pid, run.task_id, exc)
                signal_group(worker.pid, signal.SIGKILL)
                worker = None
        if worker is not None:
            process = worker.process
            run.warm, run.spark_app_id = True, worker.spark_app_id
        else:
            if spark is not None:
                py_files = None if spark.is_local else self._shipped_kernel()
                command = spark_command(spark, f"weft-{run.task_id}", task_args, py_files)
            else:
                command = local_command(task_args)
            with open(run.stdout_path, "ab") as stdout, open(run.stderr_path, "ab") as stderr:
                process = await asyncio.create_subprocess_exec(
                    *command, stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                    cwd=run.directory, env={**self.env, **env}, start_new_session=True,
                )
        run.pid, run.pid_ticks = process.pid, start_ticks(process.pid)
        run.status, run.started_at_ms = common_pb2.TASK_STATUS_RUNNING, now_ms()
        run.save()
        log.info("task %s attempt %d: pid %d (%s%s)", run.task_id, run.attempt, run.pid,
                 "warm" if run.warm else "cold", ", spark" if spark is not None else "")
        if run.stop_reason:  # StopTask arrived while the process was being started
            self._spawn_background(kill_group(run.pid, run.leader_ended, self.settings.stop_grace_s), "stop")
        watchdog = asyncio.create_task(self._watchdog(run, first_grace=self.settings.first_heartbeat_grace_s))
        try:
            code = await process.wait()
        except asyncio.CancelledError:
            watchdog.cancel()
            if self._closed:
                return None
            raise
        run.leader_ended.set()
        watchdog.cancel()
        return code

    def _shipped_kernel(self) -> Path:
        if self._py_files is None:
            self._py_files = build_py_files(self.state_dir / PY_FILES_DIR)
        return self._py_files
