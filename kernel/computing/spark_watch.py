"""A Spark task on a cluster fails with a clear message instead of stalling.

Two things make a task on a shared cluster wait forever without a word: a master that
cannot be reached, and work that waits with no executor (the cluster has no free cores or
memory for the application, or its executors were lost and none came back). Spark itself
only logs "Initial job has not accepted any resources" and keeps waiting. So:

- `check_master` connects to a `spark://` master before the SparkContext is built and
  raises `Unavailable` naming the master and the member when no address answers;
- `ExecutorWatch` looks at the application every few seconds; once a Spark job has had
  active stages and no executor for longer than the member's `executor_wait_s`, it records
  why (`failure()`: never seated, or its executors lost) and cancels the application's
  jobs, so the component's call returns with an error and the task fails with that message.

The executor passes the wait and the member in the environment (`ENV_EXECUTOR_WAIT`,
`ENV_MEMBER_ID`). Local masters are not watched: their executor is the driver itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

from kernel.errors import Unavailable

if TYPE_CHECKING:
    from pyspark import SparkContext

ENV_EXECUTOR_WAIT = "WEFT_SPARK_EXECUTOR_WAIT_S"
ENV_MEMBER_ID = "WEFT_MEMBER_ID"
DEFAULT_EXECUTOR_WAIT_S = 300.0
CONNECT_TIMEOUT_S = 10.0
POLL_S = 2.0

log = logging.getLogger("weft.spark")
_failure: str | None = None


def failure() -> str | None:
    """Why the watch cancelled this process's Spark work (None when it did not)."""
    return _failure


def member_label() -> str:
    return os.environ.get(ENV_MEMBER_ID) or "(unknown)"


def executor_wait_s() -> float:
    try:
        wait = float(os.environ.get(ENV_EXECUTOR_WAIT, DEFAULT_EXECUTOR_WAIT_S))
    except ValueError:
        return DEFAULT_EXECUTOR_WAIT_S
    return wait if wait > 0 else DEFAULT_EXECUTOR_WAIT_S


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def check_master(master: str) -> None:
    """Raise Unavailable unless some address of a `spark://` master accepts a connection."""
    if not master.startswith("spark://"):
        return  # local runs here; k8s:// and yarn are reached by spark-submit itself
    problems = []
    for address in master[len("spark://"):].split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
                return
        except (OSError, ValueError) as exc:
            problems.append(f"{address}: {exc}")
    raise Unavailable(f"the Spark master {master} cannot be reached from member {member_label()} "
                      f"({'; '.join(problems)}); is it running, and is executor.spark.master right?")


class ExecutorWatch(threading.Thread):
    """Cancels the application's jobs when they wait with no executor for longer than `wait_s`."""

    def __init__(self, context: SparkContext, wait_s: float, member: str) -> None:
        super().__init__(name="weft-spark-watch", daemon=True)
        self.context = context
        self.wait_s = wait_s
        self.member = member
        self._stopped = threading.Event()

    def stop(self) -> None:
        self._stopped.set()

    def _executors(self) -> int:
        """Live executors of the application (the driver is listed too, and not counted)."""
        infos = self.context._jsc.sc().statusTracker().getExecutorInfos()
        return max(0, len(infos) - 1)

    def _waiting(self) -> bool:
        return bool(self.context.statusTracker().getActiveStageIds())

    def run(self) -> None:
        global _failure
        starved_since: float | None = None
        seen = 0  # the most executors the application has had: >0 and now none means they were lost
        while not self._stopped.wait(POLL_S):
            try:
                executors = self._executors()
                starved = executors == 0 and self._waiting()
            except Exception:  # noqa: BLE001 (the context is stopping: nothing left to watch)
                return
            seen = max(seen, executors)
            now = time.monotonic()
            starved_since = (starved_since or now) if starved else None
            if starved_since is None or now - starved_since < self.wait_s:
                continue
            _failure = starved_message(self.member, str(self.context.applicationId), self.wait_s,
                                       str(self.context.master), seen)
            log.error("%s; cancelling its jobs", _failure)
            try:
                self.context.cancelAllJobs()
            except Exception:  # noqa: BLE001
                log.exception("cancelling the Spark jobs failed")
            return


def starved_message(member: str, app_id: str, wait_s: float, master: str, lost: int) -> str:
    """Why a task failed: its application had no executor for `wait_s` (after losing `lost` of them)."""
    why = (f"its {lost} executor(s) were lost (a worker or its executor process died) and none came back"
           if lost else "the cluster has no free cores or memory for it")
    return (f"Unavailable: member {member}: Spark application {app_id} waited {wait_s:g} s "
            f"(executor.spark.executor_wait_s) with no executor at master {master}: {why}")


def watch(context: SparkContext) -> ExecutorWatch | None:
    """Start watching a cluster application (None for a local master)."""
    if is_local(str(context.master)):
        return None
    watcher = ExecutorWatch(context, executor_wait_s(), member_label())
    watcher.start()
    return watcher
