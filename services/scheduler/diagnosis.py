"""Why a task waits: the blocking get it reported, as a sentence naming the sender and its task."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Final

from protos.weft.v1 import executor_pb2
from services.common.db.constants import (
    STATUS_FAILED,
    STATUS_RUNNING,
    STATUS_STOPPED,
    STATUS_SUCCESS,
    STATUS_WAITING,
)
from services.common.db.records import TaskRecord

# How the sender's matching task is described, by its status in this member's view.
PEER_STATE: Final[dict[str, str]] = {
    STATUS_RUNNING: "running",
    STATUS_SUCCESS: "finished",
    STATUS_FAILED: "failed",
    STATUS_STOPPED: "stopped",
    STATUS_WAITING: "created but not started",
}


def peer_task_state(waiting: executor_pb2.TaskWaiting, component: str, tasks: Iterable[TaskRecord]) -> str:
    """The state of the sender's task of the same component: running, finished, failed, ... never created."""
    for task in tasks:
        if (task.component == component and task.role == waiting.src.role
                and task.member_id == waiting.src.member_id):
            return PEER_STATE.get(task.status, task.status)
    return "never created"


def peer_clause(waiting: executor_pb2.TaskWaiting, component: str, tasks: Iterable[TaskRecord]) -> str:
    """"its task is running", "its task was never created", ..."""
    state = peer_task_state(waiting, component, tasks)
    return f"its task was {state}" if state == "never created" else f"its task is {state}"


def waiting_sentence(waiting: executor_pb2.TaskWaiting, component: str, tasks: Iterable[TaskRecord],
                     now: float | None = None) -> str:
    """"waiting on member B (provider) for `V.x` tag fit.3 since 42 s; its task is running"."""
    waited = max(0.0, (time.time() if now is None else now) - waiting.since_ms / 1000.0)
    return (f"waiting on member {waiting.src.member_id} ({waiting.src.role}) for `{waiting.variable}` "
            f"tag {waiting.tag} since {waited:.0f} s; {peer_clause(waiting, component, tasks)}")
