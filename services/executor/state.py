"""The state one executor's task manager shares between its parts: task runs, queue, slots."""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernel.constants import ENV_SPOOL_DIR
from kernel.errors import NotFound
from protos.weft.v1 import common_pb2
from services.common import internal_auth
from services.common.config import MemberConfig
from services.executor.constants import (
    MAX_SOCKET_PATH,
    RECORD_FILE,
    SOCKETS_DIR,
    STATE_DIR_NAME,
    TASKS_DIR,
)
from services.executor.launchers import base_environment
from services.executor.logs import LogFollower
from services.executor.task import TaskRun
from services.executor.warm_pool import WarmPool

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def task_dir_name(task_id: str) -> str:
    """The name of a task's folder under the executor's tasks directory."""
    return _UNSAFE.sub("_", task_id)


class TaskManagerState:
    """What every part of a task manager shares: settings, task runs, the queue, slots, channels.

    The task manager's responsibilities live in their own modules as classes built on this
    one; `services.executor.manager.TaskManager` joins them. Every method is called from the
    event loop.
    """

    def __init__(self, config: MemberConfig) -> None:
        self.config = config
        self.settings = config.executor
        self.state_dir = Path(config.data_dir).resolve() / STATE_DIR_NAME
        self.storage_root = config.resolved_storage_root().resolve()
        self.env = base_environment()
        # STANDALONE tasks of every member that names this directory meet in it.
        self.env[ENV_SPOOL_DIR] = str(config.resolved_spool_dir().resolve())
        #: The member-internal key: checks the scheduler's calls, signs task credentials.
        self.key = internal_auth.load_member_key(config)
        self.runs: dict[str, dict[int, TaskRun]] = {}
        self._queue: list[tuple[int, int, TaskRun]] = []
        self._active: set[TaskRun] = set()
        self._sequence = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._servers: dict[TaskRun, asyncio.AbstractServer] = {}
        self._followers: dict[TaskRun, LogFollower] = {}
        self._py_files: Path | None = None
        self._closed = False
        self.pool: WarmPool | None = None
        self._lock: Any = None
        #: Called with the task counts by status whenever a task is queued, started or ends.
        self.on_counts: Callable[[dict[str, int]], None] | None = None

    @property
    def socket_dir(self) -> Path:
        """Where event sockets live: in the state directory when the path is short enough."""
        preferred = self.state_dir / SOCKETS_DIR
        if len(str(preferred)) + 26 <= MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"weft-executor-{digest}"

    def latest(self, task_id: str) -> TaskRun:
        attempts = self.runs.get(task_id)
        if not attempts:
            raise NotFound(f"task {task_id!r} is not known to this executor")
        return attempts[max(attempts)]

    def find_run(self, task_id: str, attempt: int = 0) -> TaskRun:
        """A task's attempt (0 = the latest): a known one, else one whose record stays on disk.

        The record is looked up among the entries of the tasks directory by name; nothing of
        `task_id` is ever joined to a path.
        """
        attempts = self.runs.get(task_id, {})
        if attempts:
            run = attempts.get(attempt or max(attempts))
            if run is not None:
                return run
        wanted = task_dir_name(task_id)
        tasks = self.state_dir / TASKS_DIR
        for entry in (tasks.iterdir() if tasks.is_dir() else ()):
            if entry.name != wanted or not entry.is_dir():
                continue
            numbers = {int(a.name[1:]): a for a in entry.iterdir()
                       if a.name.startswith("a") and a.name[1:].isdigit() and (a / RECORD_FILE).is_file()}
            directory = numbers.get(attempt or max(numbers, default=0))
            if directory is not None:
                try:
                    run = TaskRun.load(directory)
                except (OSError, ValueError, KeyError):
                    break
                if run.task_id == task_id:
                    return run
        raise NotFound(f"task {task_id!r} attempt {attempt or 'latest'} is not known to this executor")

    def all_runs(self) -> list[TaskRun]:
        return sorted((run for attempts in self.runs.values() for run in attempts.values()),
                      key=lambda run: (run.accepted_at_ms, run.sequence))

    @property
    def running_count(self) -> int:
        return len(self._active)

    @property
    def queued_count(self) -> int:
        return sum(1 for _, _, run in self._queue if run.status == common_pb2.TASK_STATUS_WAITING)

    @property
    def warm_workers(self) -> int:
        return self.pool.ready_count if self.pool is not None else 0

    def queue_position(self, run: TaskRun) -> int:
        key = (-run.spec.priority, run.sequence)
        return sum(1 for priority, sequence, other in self._queue
                   if (priority, sequence) < key and other.status == common_pb2.TASK_STATUS_WAITING)

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self.all_runs():
            name = common_pb2.TaskStatus.Name(run.status).removeprefix("TASK_STATUS_").lower()
            counts[name] = counts.get(name, 0) + 1
        return counts

    def _publish_counts(self) -> None:
        if self.on_counts is not None:
            self.on_counts(self.status_counts())

    def _spawn_background(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
