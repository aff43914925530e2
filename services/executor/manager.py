"""The executor's task manager: its parts joined in one class, and their start and close."""

from __future__ import annotations

import asyncio
import fcntl
import logging

from kernel.errors import FailedPrecondition
from services.executor.constants import LOCK_FILE, TASKS_DIR, WORKERS_DIR
from services.executor.launch import Launch
from services.executor.launchers import SparkSettings
from services.executor.preflight import prepare
from services.executor.queueing import Queueing
from services.executor.recovery import Recovery
from services.executor.state import TaskManagerState
from services.executor.stopping import Stopping
from services.executor.supervision import Supervision
from services.executor.warm_pool import WarmPool

log = logging.getLogger("weft.executor")


class TaskManager(Queueing, Stopping, Recovery, Launch, Supervision, TaskManagerState):
    """Runs tasks for one executor; every public method is called from the event loop.

    Each responsibility lives in its own module, as a class built on the ones it uses:
    `queueing` (RunTask, WatchTask), `launch` (slots and processes), `supervision` (events,
    logs, heartbeats, endings), `stopping` (StopTask) and `recovery` (after a restart), all
    sharing `state.TaskManagerState`.
    """

    async def start(self) -> None:
        """Load the task records left by an earlier run, reconcile them, fill the warm pool."""
        (self.state_dir / TASKS_DIR).mkdir(parents=True, exist_ok=True)
        self._take_lock()
        self.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await asyncio.to_thread(prepare)
        await self._recover()
        self._start_pool()
        self._dispatch()

    def _take_lock(self) -> None:
        """One executor per state directory: two would launch and reconcile the same tasks."""
        handle = open(self.state_dir / LOCK_FILE, "a+")  # noqa: SIM115 (held until the process ends)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise FailedPrecondition(
                f"data_dir: another executor already uses {self.state_dir}; "
                "give each executor its own data_dir") from None
        self._lock = handle

    async def close(self) -> None:
        """Stop serving; running tasks keep running and are re-attached by the next start."""
        self._closed = True
        if self.pool is not None:
            await self.pool.close()
        for run in list(self._servers):
            await self._close_channels(run)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _start_pool(self) -> None:
        if self.settings.warm_pool <= 0:
            return
        spark: SparkSettings | None = None
        py_files = None
        if self.settings.mode == "spark":
            spark = SparkSettings.resolve(None, self.settings.spark)
            if not spark.is_local:
                if not self.settings.spark.warm_on_cluster:
                    log.info("warm pool off: master %s is not local and spark.warm_on_cluster is off; "
                             "Spark tasks start with spark-submit", spark.master)
                    return
                py_files = self._shipped_kernel()
        self.pool = WarmPool(self.settings.warm_pool, self.state_dir / WORKERS_DIR, self.env, spark,
                             py_files=py_files, app_name=f"weft-warm-{self.config.member_id}",
                             ready_timeout_s=self.settings.worker_ready_timeout_s)
        self.pool.start()
