"""The executor's task manager: queue and slots, launching, supervision, stop, and recovery after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import heapq
import json
import logging
import re
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kernel.errors import FailedPrecondition, NotFound, WeftError
from kernel.tracker import PROGRESS_FILE, STATUS_FILE
from protos.weft.v1 import common_pb2, executor_pb2
from services.common.config import MemberConfig
from services.executor.constants import (
    ENDED_TASK_RETENTION_S,
    EVENT_LINE_LIMIT,
    FIRST_HEARTBEAT_GRACE_S,
    LOCK_FILE,
    MAX_SOCKET_PATH,
    PY_FILES_DIR,
    RECORD_FILE,
    SOCKETS_DIR,
    STATE_DIR_NAME,
    STOP_GRACE_S,
    STOPPED_BY_REQUEST,
    TASKS_DIR,
    WORKERS_DIR,
)
from services.executor.launchers import (
    SparkSettings,
    base_environment,
    build_py_files,
    local_command,
    spark_command,
    task_environment,
    task_executor_args,
)
from services.executor.logs import LogFollower, tail_error
from services.executor.preflight import check_spec, check_task, prepare
from services.executor.process import (
    is_running,
    kill_group,
    signal_group,
    start_ticks,
    wait_for_exit,
)
from services.executor.task import TaskRun, now_ms
from services.executor.warm_pool import WarmPool

log = logging.getLogger("weft.executor")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
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


class TaskManager:
    """Runs tasks for one executor; every public method is called from the event loop."""

    def __init__(self, config: MemberConfig) -> None:
        self.config = config
        self.settings = config.executor
        self.state_dir = Path(config.data_dir).resolve() / STATE_DIR_NAME
        self.storage_root = config.resolved_storage_root().resolve()
        self.env = base_environment()
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

    # ---- lifecycle ------------------------------------------------------------------

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
        if self.settings.mode == "spark":
            spark = SparkSettings.resolve(None, self.settings.spark)
            if not spark.is_local:
                log.info("warm pool off: master %s is not local; Spark tasks start with spark-submit",
                         spark.master)
                return
        self.pool = WarmPool(self.settings.warm_pool, self.state_dir / WORKERS_DIR, self.env, spark)
        self.pool.start()

    @property
    def socket_dir(self) -> Path:
        """Where event sockets live: in the state directory when the path is short enough."""
        preferred = self.state_dir / SOCKETS_DIR
        if len(str(preferred)) + 26 <= MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"weft-executor-{digest}"

    # ---- queries --------------------------------------------------------------------

    def latest(self, task_id: str) -> TaskRun:
        attempts = self.runs.get(task_id)
        if not attempts:
            raise NotFound(f"task {task_id!r} is not known to this executor")
        return attempts[max(attempts)]

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

    # ---- RunTask --------------------------------------------------------------------

    async def submit(self, spec: executor_pb2.TaskSpec, stream_logs: bool) -> tuple[TaskRun, Any]:
        """Accept a task (or attach to the same attempt); returns the run and a subscription."""
        if self._closed:
            raise FailedPrecondition("the executor is shutting down")
        raw_conf = check_spec(spec)
        self._forget_old_runs()
        spec = executor_pb2.TaskSpec.FromString(spec.SerializeToString())
        spec.attempt = spec.attempt or 1
        attempts = self.runs.setdefault(spec.task_id, {})
        existing = attempts.get(spec.attempt)
        if existing is not None:
            return existing, self._attach(existing, stream_logs)
        for other in attempts.values():
            if not other.ended:
                raise FailedPrecondition(
                    f"task {spec.task_id}: attempt {other.attempt} has not ended; stop it before "
                    f"starting attempt {spec.attempt}")
        run = self._new_run(spec)
        attempts[spec.attempt] = run
        run.conf_path.write_text(spec.runtime_conf_json, encoding="utf-8")
        subscriber = run.subscribe(stream_logs)
        try:
            await asyncio.to_thread(check_task, spec, raw_conf, self.storage_root)
        except WeftError as exc:
            run.publish(run.event(accepted=executor_pb2.TaskAccepted(queue_position=0)))
            self._finish(run, common_pb2.TASK_STATUS_FAILED, str(exc), 0)
            return run, subscriber
        heapq.heappush(self._queue, (-spec.priority, run.sequence, run))
        position = self.queue_position(run)
        run.save()
        run.publish(run.event(accepted=executor_pb2.TaskAccepted(queue_position=position)))
        self._dispatch()
        return run, subscriber

    def _forget_old_runs(self) -> None:
        """Ended tasks stay listed for the retention period; their files stay on disk."""
        horizon = (time.time() - ENDED_TASK_RETENTION_S) * 1000
        for task_id in list(self.runs):
            attempts = self.runs[task_id]
            if all(run.ended and run.ended_at_ms < horizon for run in attempts.values()):
                del self.runs[task_id]

    def _new_run(self, spec: executor_pb2.TaskSpec) -> TaskRun:
        self._sequence += 1
        directory = self.state_dir / TASKS_DIR / _UNSAFE.sub("_", spec.task_id) / f"a{spec.attempt}"
        directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(f"{self.state_dir}|{spec.task_id}|{spec.attempt}".encode()).hexdigest()[:20]
        backend = spec.backend
        if backend == common_pb2.BACKEND_UNSPECIFIED:
            backend = common_pb2.BACKEND_SPARK if self.settings.mode == "spark" else common_pb2.BACKEND_LOCAL
        task_dir = (self.storage_root / "tasks" / spec.job_id / spec.component_name / spec.role
                    / spec.member_id)
        return TaskRun(spec=spec, directory=directory, task_dir=task_dir,
                       socket_path=str(self.socket_dir / f"{name}.sock"), backend=backend,
                       sequence=self._sequence)

    def _attach(self, run: TaskRun, stream_logs: bool) -> Any:
        subscriber = run.subscribe(stream_logs)
        position = self.queue_position(run) if run.status == common_pb2.TASK_STATUS_WAITING else 0
        subscriber.put(run.event(accepted=executor_pb2.TaskAccepted(queue_position=position)))
        if run.started_event is not None:
            subscriber.put(run.started_event)
        if run.finished_event is not None:
            subscriber.put(run.finished_event)
            subscriber.put(None)
        return subscriber

    def watch(self, task_id: str, stream_logs: bool) -> tuple[TaskRun, Any]:
        run = self.latest(task_id)
        subscriber = run.subscribe(stream_logs)
        subscriber.put(run.event(snapshot=run.info()))
        if run.finished_event is not None:
            subscriber.put(run.finished_event)
            subscriber.put(None)
        return run, subscriber

    # ---- queue and slots ------------------------------------------------------------

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for run in self.all_runs():
            name = common_pb2.TaskStatus.Name(run.status).removeprefix("TASK_STATUS_").lower()
            counts[name] = counts.get(name, 0) + 1
        return counts

    def _publish_counts(self) -> None:
        if self.on_counts is not None:
            self.on_counts(self.status_counts())

    def _dispatch(self) -> None:
        self._publish_counts()
        while self._queue and len(self._active) < self.settings.slots and not self._closed:
            _, _, run = heapq.heappop(self._queue)
            if run.status != common_pb2.TASK_STATUS_WAITING:
                continue  # stopped while queued
            self._active.add(run)
            self._spawn_background(self._run(run), f"task-{run.task_id}")

    def _spawn_background(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
        spark = (SparkSettings.resolve(run.spec.spark, self.settings.spark)
                 if run.backend == common_pb2.BACKEND_SPARK else None)
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
            self._spawn_background(kill_group(run.pid, run.leader_ended, STOP_GRACE_S), "stop")
        watchdog = asyncio.create_task(self._watchdog(run, first_grace=FIRST_HEARTBEAT_GRACE_S))
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

    # ---- live channels: event socket and log files -----------------------------------

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
                percent=run.progress, message=str(message.get("message", "")))))
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
                await kill_group(run.pid, run.leader_ended, STOP_GRACE_S)
                return

    # ---- ending ---------------------------------------------------------------------

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

    # ---- StopTask -------------------------------------------------------------------

    async def stop(self, task_id: str, reason: str) -> common_pb2.TaskStatus:
        """Stop the latest attempt; returns its status afterwards (STOPPED or how it had ended)."""
        run = self.latest(task_id)
        if run.ended:
            return run.status
        run.stop_reason = reason or STOPPED_BY_REQUEST
        if run not in self._active:  # still queued: drop it
            self._finish(run, common_pb2.TASK_STATUS_STOPPED, run.stop_reason, 0)
            return run.status
        if run.pid:
            await kill_group(run.pid, run.leader_ended, STOP_GRACE_S)
        await run.done.wait()  # the supervising coroutine records the end once the leader is reaped
        return run.status

    # ---- recovery after a restart ----------------------------------------------------

    async def _recover(self) -> None:
        records = sorted((self.state_dir / TASKS_DIR).glob(f"*/a*/{RECORD_FILE}"))
        horizon = (time.time() - ENDED_TASK_RETENTION_S) * 1000
        for path in records:
            try:
                run = TaskRun.load(path.parent)
            except (OSError, ValueError, KeyError) as exc:
                log.warning("skipping unreadable task record %s: %s", path, exc)
                continue
            if run.ended and run.ended_at_ms < horizon:
                continue
            self._sequence = max(self._sequence, run.sequence)
            self.runs.setdefault(run.task_id, {})[run.attempt] = run
            if run.ended:
                run.finished_event = run.event(finished=executor_pb2.TaskFinished(
                    status=run.status, error=run.error, exit_code=run.exit_code))
            elif run.pid == 0:
                heapq.heappush(self._queue, (-run.spec.priority, run.sequence, run))
            elif is_running(run.pid, run.pid_ticks):
                await self._reattach(run)
            else:
                self._reconcile_gone(run)

    async def _reattach(self, run: TaskRun) -> None:
        log.info("task %s attempt %d: still running as pid %d; re-attaching", run.task_id, run.attempt, run.pid)
        self._refresh_progress(run)
        if run.reported_running:
            run.started_event = run.event(started=executor_pb2.TaskStarted(
                pid=run.pid, spark_app_id=run.spark_app_id, warm=run.warm))
        self._active.add(run)
        await self._open_channels(run, from_end=True)
        self._spawn_background(self._supervise_adopted(run), f"adopted-{run.task_id}")

    async def _supervise_adopted(self, run: TaskRun) -> None:
        watchdog = asyncio.create_task(self._watchdog(run))
        try:
            await wait_for_exit(run.pid, run.pid_ticks)
            run.leader_ended.set()
            self._conclude(run, None)
        finally:
            watchdog.cancel()
            await self._close_channels(run)
            self._active.discard(run)
            self._dispatch()

    def _reconcile_gone(self, run: TaskRun) -> None:
        file_status = self._task_file_status(run)
        if file_status.get("status") == "success":
            self._finish(run, common_pb2.TASK_STATUS_SUCCESS, "", 0)
            return
        detail = str(file_status.get("error") or "")
        reason = "the task's process ended while the executor was down"
        self._finish(run, common_pb2.TASK_STATUS_FAILED, f"{reason}: {detail}" if detail else reason, 1)

    def _refresh_progress(self, run: TaskRun) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            progress = json.loads((run.task_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
            run.progress = float(progress.get("percent", run.progress))
