"""Supervising a task: its event socket and log files, the heartbeat watchdog, how it ended."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from pathlib import Path
from typing import Any, cast

from kernel.tracker import STATUS_FILE
from protos.weft.v1 import common_pb2, executor_pb2
from services.executor.constants import EVENT_LINE_LIMIT
from services.executor.logs import LogFollower, tail_error
from services.executor.process import kill_group, signal_group
from services.executor.state import TaskManagerState
from services.executor.task import TaskRun, now_ms

log = logging.getLogger("weft.executor")

_LOG_STREAMS = {
    executor_pb2.LOG_STREAM_STDOUT: "stdout_path",
    executor_pb2.LOG_STREAM_STDERR: "stderr_path",
}


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the task process was killed by {name}"
    return f"the task process exited with code {code}"


class Supervision(TaskManagerState):
    """Watch a running task (event socket, log files, heartbeats) and record how it ended."""

    async def _open_channels(self, run: TaskRun, from_end: bool) -> None:
        Path(run.socket_path).unlink(missing_ok=True)

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                async for line in reader:
                    self._on_task_line(run, line)
            except (ConnectionError, ValueError):
                pass  # a line longer than the stream limit or a reset: the files still hold it
            finally:
                writer.close()

        self._servers[run] = await asyncio.start_unix_server(on_connection, path=run.socket_path,
                                                             limit=EVENT_LINE_LIMIT)
        for attribute in _LOG_STREAMS.values():
            Path(getattr(run, attribute)).touch()
        follower = LogFollower(
            {stream: getattr(run, attribute) for stream, attribute in _LOG_STREAMS.items()},
            self.settings.log_max_bytes,
            lambda stream, line: run.publish(run.event(log=executor_pb2.TaskLog(
                line=line, stream=cast(executor_pb2.LogStream, stream)))),
            run.wants_logs,
        )
        follower.start(from_end=from_end)
        self._followers[run] = follower

    async def _close_channels(self, run: TaskRun) -> None:
        follower = self._followers.pop(run, None)
        if follower is not None:
            follower.close()
        server = self._servers.pop(run, None)
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
            if run.ended:
                Path(run.socket_path).unlink(missing_ok=True)

    def _on_task_line(self, run: TaskRun, line: bytes) -> None:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(message, dict) or run.ended:
            return
        run.alive.set()
        run.last_heartbeat_ms = now_ms()
        kind = message.get("event")
        if kind == "heartbeat":
            run.publish(run.event(heartbeat=executor_pb2.TaskHeartbeat()))
        elif kind == "status":
            self._on_status(run, message)
        elif kind == "progress":
            run.progress = float(message.get("percent", 0.0))
            run.publish(run.event(progress=executor_pb2.TaskProgress(
                percent=run.progress, message=str(message.get("message", "")),
                waiting=_waiting(message.get("waiting")))))
        elif kind == "metric":
            run.publish(run.event(metric=executor_pb2.TaskMetric(
                name=str(message.get("name", "")), namespace=str(message.get("namespace", "")),
                metric_type=str(message.get("type", "")), json=json.dumps(message.get("points")))))

    def _on_status(self, run: TaskRun, message: dict[str, Any]) -> None:
        status = message.get("status")
        if status == "running" and not run.reported_running:
            run.reported_running = True
            run.spark_app_id = str(message.get("spark_app_id") or run.spark_app_id or "")
            self._announce_started(run)
            run.save()
        elif status == "failed" and message.get("error"):
            run.error = str(message["error"])

    def _announce_started(self, run: TaskRun) -> None:
        run.started_event = run.event(started=executor_pb2.TaskStarted(
            pid=run.pid, spark_app_id=run.spark_app_id, warm=run.warm))
        run.publish(run.started_event)

    async def _watchdog(self, run: TaskRun, first_grace: float = 0.0) -> None:
        """Fail the task when nothing (heartbeat or other event) arrives for the timeout.

        Before its first event a task may take `first_grace` seconds if that is longer: a cold
        spark-submit boots a JVM before the Python that sends heartbeats starts.
        """
        timeout = self.settings.heartbeat_timeout_s
        wait = max(timeout, first_grace)
        while not run.leader_ended.is_set():
            run.alive.clear()
            try:
                await asyncio.wait_for(run.alive.wait(), wait)
                wait = timeout
            except TimeoutError:
                if run.leader_ended.is_set() or run.stop_reason:
                    return
                run.failure_reason = f"no heartbeat for {wait:g} s"
                log.warning("task %s: %s; killing process group %d", run.task_id, run.failure_reason, run.pid)
                await kill_group(run.pid, run.leader_ended, self.settings.stop_grace_s)
                return

    def _task_file_status(self, run: TaskRun) -> dict[str, Any]:
        """The task's own status.json if this attempt wrote it (an older attempt's is ignored)."""
        path = run.task_dir / STATUS_FILE
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        if not isinstance(status, dict) or float(status.get("time", 0)) * 1000 < run.started_at_ms - 1000:
            return {}
        return status

    def _conclude(self, run: TaskRun, code: int | None) -> None:
        """Decide how a task ended once its process is gone; `code` None = not our child."""
        signal_group(run.pid, signal.SIGKILL)  # nothing of the task may outlive it
        file_status = self._task_file_status(run)
        if code is None:
            code = 0 if file_status.get("status") == "success" else 1
        if run.stop_reason:
            self._finish(run, common_pb2.TASK_STATUS_STOPPED, run.stop_reason, code)
        elif run.failure_reason:
            self._finish(run, common_pb2.TASK_STATUS_FAILED, run.failure_reason, code)
        elif code == 0:
            self._finish(run, common_pb2.TASK_STATUS_SUCCESS, "", code)
        else:
            reason = (str(file_status.get("error") or "") or run.error or tail_error(run.stderr_path)
                      or _describe_exit(code))
            self._finish(run, common_pb2.TASK_STATUS_FAILED, reason, code)

    def _finish(self, run: TaskRun, status: common_pb2.TaskStatus, error: str, exit_code: int) -> None:
        if run.ended:
            return
        run.status, run.error, run.exit_code, run.ended_at_ms = status, error, exit_code, now_ms()
        run.save()
        run.finished_event = run.event(finished=executor_pb2.TaskFinished(
            status=status, error=error, exit_code=exit_code))
        run.publish(run.finished_event)
        for subscriber in list(run.subscribers):
            subscriber.put(None)
        run.leader_ended.set()
        run.done.set()
        self._publish_counts()
        log.info("task %s attempt %d: %s %s", run.task_id, run.attempt,
                 common_pb2.TaskStatus.Name(status), error)


def _waiting(detail: Any) -> executor_pb2.TaskWaiting | None:
    """The task's `waiting` detail (kernel.federation.base.Waiting.to_dict) as a proto; None if absent."""
    if not isinstance(detail, dict):
        return None
    try:
        since_ms = int(float(detail.get("since", 0)) * 1000)
    except (TypeError, ValueError):
        since_ms = 0
    return executor_pb2.TaskWaiting(
        variable=str(detail.get("name", "")), tag=str(detail.get("tag", "")),
        src=common_pb2.Party(role=str(detail.get("role", "")), member_id=str(detail.get("member_id", ""))),
        since_ms=since_ms,
    )
