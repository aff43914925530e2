"""One task attempt as the executor sees it: its state, its on-disk record and its event subscribers."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from google.protobuf import json_format

from protos.weft.v1 import common_pb2, executor_pb2
from services.executor.constants import (
    CONF_FILE,
    RECORD_FILE,
    STDERR_LOG,
    STDOUT_LOG,
    SUBSCRIBER_LOG_BACKLOG,
)

TERMINAL_STATUSES = frozenset({
    common_pb2.TASK_STATUS_SUCCESS, common_pb2.TASK_STATUS_FAILED, common_pb2.TASK_STATUS_STOPPED,
})


def now_ms() -> int:
    return int(time.time() * 1000)


class Subscriber:
    """One open RunTask/WatchTask stream: a queue of events, None closes it."""

    def __init__(self, wants_logs: bool) -> None:
        self.wants_logs = wants_logs
        self.queue: asyncio.Queue[executor_pb2.TaskEvent | None] = asyncio.Queue()
        self.dropped_logs = 0

    def put(self, event: executor_pb2.TaskEvent | None) -> None:
        if event is not None and event.WhichOneof("event") == "log":
            if not self.wants_logs:
                return
            if self.queue.qsize() >= SUBSCRIBER_LOG_BACKLOG:
                self.dropped_logs += 1
                return
        self.queue.put_nowait(event)


@dataclass(eq=False)  # identity: runs are keys of the manager's sets and maps
class TaskRun:
    """A task attempt: what RunTask asked for and everything that happened since."""

    spec: executor_pb2.TaskSpec
    directory: Path
    task_dir: Path
    socket_path: str
    backend: common_pb2.Backend
    sequence: int
    status: common_pb2.TaskStatus = common_pb2.TASK_STATUS_WAITING
    pid: int = 0
    pid_ticks: int | None = None
    spark_app_id: str = ""
    warm: bool = False
    progress: float = 0.0
    accepted_at_ms: int = field(default_factory=now_ms)
    started_at_ms: int = 0
    ended_at_ms: int = 0
    last_heartbeat_ms: int = 0
    exit_code: int = 0
    error: str = ""
    reported_running: bool = False
    # Live state, not persisted.
    subscribers: list[Subscriber] = field(default_factory=list)
    started_event: executor_pb2.TaskEvent | None = None
    finished_event: executor_pb2.TaskEvent | None = None
    leader_ended: asyncio.Event = field(default_factory=asyncio.Event)
    alive: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str = ""
    failure_reason: str = ""

    @property
    def task_id(self) -> str:
        return self.spec.task_id

    @property
    def attempt(self) -> int:
        return self.spec.attempt

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def conf_path(self) -> Path:
        return self.directory / CONF_FILE

    @property
    def stdout_path(self) -> Path:
        return self.directory / STDOUT_LOG

    @property
    def stderr_path(self) -> Path:
        return self.directory / STDERR_LOG

    def event(self, **kind: Any) -> executor_pb2.TaskEvent:
        return executor_pb2.TaskEvent(task_id=self.task_id, attempt=self.attempt, timestamp_ms=now_ms(), **kind)

    def publish(self, event: executor_pb2.TaskEvent) -> None:
        for subscriber in list(self.subscribers):
            subscriber.put(event)

    def subscribe(self, wants_logs: bool) -> Subscriber:
        subscriber = Subscriber(wants_logs)
        self.subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self.subscribers:
            self.subscribers.remove(subscriber)

    def wants_logs(self) -> bool:
        return any(subscriber.wants_logs for subscriber in self.subscribers)

    def info(self) -> executor_pb2.TaskInfo:
        return executor_pb2.TaskInfo(
            task_id=self.task_id, job_id=self.spec.job_id, component_name=self.spec.component_name,
            role=self.spec.role, member_id=self.spec.member_id, attempt=self.attempt,
            status=self.status, backend=self.backend, pid=self.pid, spark_app_id=self.spark_app_id,
            progress=self.progress, priority=self.spec.priority, accepted_at_ms=self.accepted_at_ms,
            started_at_ms=self.started_at_ms, ended_at_ms=self.ended_at_ms,
            last_heartbeat_ms=self.last_heartbeat_ms, exit_code=self.exit_code, error=self.error,
            log_path=str(self.stderr_path),
        )

    # Persistence: one JSON record per attempt, rewritten atomically on every change of state.

    def to_record(self) -> dict[str, Any]:
        return {
            "spec": json_format.MessageToDict(self.spec, preserving_proto_field_name=True),
            "task_dir": str(self.task_dir), "socket_path": self.socket_path, "backend": self.backend,
            "sequence": self.sequence, "status": self.status, "pid": self.pid, "pid_ticks": self.pid_ticks,
            "spark_app_id": self.spark_app_id, "warm": self.warm, "progress": self.progress,
            "accepted_at_ms": self.accepted_at_ms, "started_at_ms": self.started_at_ms,
            "ended_at_ms": self.ended_at_ms, "last_heartbeat_ms": self.last_heartbeat_ms,
            "exit_code": self.exit_code, "error": self.error, "reported_running": self.reported_running,
        }

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / RECORD_FILE
        temp = path.with_name(f".{RECORD_FILE}.tmp")
        temp.write_text(json.dumps(self.to_record()), encoding="utf-8")
        os.replace(temp, path)

    @classmethod
    def load(cls, directory: Path) -> TaskRun:
        record = json.loads((directory / RECORD_FILE).read_text(encoding="utf-8"))
        spec = json_format.ParseDict(record["spec"], executor_pb2.TaskSpec())
        return cls(
            spec=spec, directory=directory, task_dir=Path(record["task_dir"]),
            socket_path=str(record["socket_path"]), backend=cast(common_pb2.Backend, int(record["backend"])),
            sequence=int(record["sequence"]), status=cast(common_pb2.TaskStatus, int(record["status"])),
            pid=int(record["pid"]),
            pid_ticks=record.get("pid_ticks"), spark_app_id=str(record.get("spark_app_id", "")),
            warm=bool(record.get("warm", False)), progress=float(record.get("progress", 0.0)),
            accepted_at_ms=int(record["accepted_at_ms"]), started_at_ms=int(record["started_at_ms"]),
            ended_at_ms=int(record["ended_at_ms"]), last_heartbeat_ms=int(record.get("last_heartbeat_ms", 0)),
            exit_code=int(record.get("exit_code", 0)), error=str(record.get("error", "")),
            reported_running=bool(record.get("reported_running", False)),
        )
