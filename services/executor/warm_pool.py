"""The warm pool: pre-started `kernel.worker` processes, each ready to run exactly one task."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kernel.errors import Unavailable
from kernel.retry import Backoff, retry_async
from services.executor.constants import (
    STDERR_LOG,
    STDOUT_LOG,
    WORKER_START_ATTEMPTS,
)
from services.executor.launchers import SparkSettings
from services.executor.logs import tail_error
from services.executor.process import signal_group, start_ticks

log = logging.getLogger("weft.executor.pool")


class WorkerStartError(Unavailable):
    """A warm worker died or stayed silent before it was ready."""


@dataclass(eq=False)
class Worker:
    """A started worker: its process, its control socket and its log files."""

    process: asyncio.subprocess.Process
    directory: Path
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pid: int
    ticks: int | None
    spark_app_id: str = ""
    taken: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def stdout_path(self) -> Path:
        return self.directory / STDOUT_LOG

    @property
    def stderr_path(self) -> Path:
        return self.directory / STDERR_LOG

    async def assign(self, argv: list[str], env: dict[str, str], cwd: Path,
                     stdout_path: Path, stderr_path: Path) -> None:
        """Hand the worker its task; its log files move to the task's paths first.

        The worker (and a JVM it started) keep writing to the same open files, so what the
        worker printed while warming up stays at the top of the task's logs.
        """
        os.replace(self.stdout_path, stdout_path)
        os.replace(self.stderr_path, stderr_path)
        message = json.dumps({"argv": argv, "env": env, "cwd": str(cwd)}) + "\n"
        self.writer.write(message.encode())
        await self.writer.drain()
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
        with contextlib.suppress(OSError):
            self.directory.rmdir()


class WarmPool:
    """Keeps `size` workers warm; `take` hands one out and a replacement starts at once.

    `spark` set: the workers hold a SparkSession built with those settings and serve SPARK
    tasks with exactly those settings; otherwise they serve LOCAL tasks. With a cluster
    master each worker's session is an application at that master, named `app_name`, and
    ships the kernel archive `py_files` to its executors, as spark-submit's `--py-files` does.
    """

    def __init__(self, size: int, directory: Path, env: dict[str, str],
                 spark: SparkSettings | None, py_files: Path | None = None,
                 app_name: str = "weft-warm-worker", ready_timeout_s: float = 180.0) -> None:
        self.size = size
        self.ready_timeout_s = ready_timeout_s  # executor.worker_ready_timeout_s
        self.directory = directory
        self.env = env
        self.spark = spark
        self.py_files = py_files
        self.app_name = app_name
        self._ready: list[Worker] = []
        self._fillers: list[asyncio.Task[None]] = []
        self._starting: set[Worker] = set()
        self._closed = False

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fillers = [asyncio.create_task(self._keep_one_warm(), name=f"warm-pool-{index}")
                         for index in range(self.size)]

    def serves(self, spark: SparkSettings | None) -> bool:
        """Whether this pool's workers fit a task with these Spark settings (None = LOCAL)."""
        return spark == self.spark

    def take(self, spark: SparkSettings | None) -> Worker | None:
        """A ready worker for these settings, or None (the task then starts cold)."""
        if self._closed or not self.serves(spark):
            return None
        while self._ready:
            worker = self._ready.pop(0)
            if worker.process.returncode is None:
                worker.taken.set()
                return worker
        return None

    async def _keep_one_warm(self) -> None:
        policy = Backoff(attempts=WORKER_START_ATTEMPTS, base_delay=1.0, max_delay=30.0)
        while not self._closed:
            try:
                worker = await retry_async(
                    self._start_worker, lambda exc: isinstance(exc, WorkerStartError), policy)
            except WorkerStartError as exc:
                log.error("warm pool: giving up on a worker after %d attempts: %s", WORKER_START_ATTEMPTS, exc)
                return
            self._ready.append(worker)
            died = asyncio.create_task(worker.process.wait())
            taken = asyncio.create_task(worker.taken.wait())
            await asyncio.wait({died, taken}, return_when=asyncio.FIRST_COMPLETED)
            if not worker.taken.is_set():
                taken.cancel()
                if worker in self._ready:
                    self._ready.remove(worker)
                log.warning("warm worker %d exited while idle (code %s); starting another",
                            worker.pid, worker.process.returncode)
            else:
                died.cancel()

    async def _start_worker(self) -> Worker:
        directory = self.directory / uuid.uuid4().hex[:12]
        directory.mkdir(parents=True)
        parent_end, child_end = socket.socketpair()
        command = [sys.executable, "-m", "kernel.worker", "--control-fd", str(child_end.fileno())]
        if self.spark is not None:
            command += ["--spark-master", self.spark.master, "--app-name", self.app_name]
            for key, value in self.spark.session_conf():
                command += ["--spark-conf", f"{key}={value}"]
            if self.py_files is not None:
                command += ["--py-files", str(self.py_files)]
        with open(directory / STDOUT_LOG, "ab") as stdout, open(directory / STDERR_LOG, "ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                cwd=directory, env=self.env, start_new_session=True, pass_fds=(child_end.fileno(),),
            )
        child_end.close()
        reader, writer = await asyncio.open_unix_connection(sock=parent_end)
        worker = Worker(process, directory, reader, writer, process.pid, start_ticks(process.pid))
        self._starting.add(worker)
        try:
            line = await asyncio.wait_for(reader.readline(), self.ready_timeout_s)
        except TimeoutError:
            line = b""
        finally:
            self._starting.discard(worker)
        if not line:
            await self._discard(worker)
            reason = tail_error(worker.stderr_path) or f"exit code {worker.process.returncode}"
            raise WorkerStartError(f"warm worker did not become ready: {reason} (log {worker.stderr_path})")
        ready = json.loads(line)
        worker.spark_app_id = str(ready.get("spark_app_id") or "")
        log.info("warm worker %d ready%s", worker.pid,
                 f" (Spark application {worker.spark_app_id})" if worker.spark_app_id else "")
        return worker

    async def _discard(self, worker: Worker) -> None:
        worker.writer.close()
        signal_group(worker.pid, signal.SIGKILL)
        await worker.process.wait()

    async def close(self) -> None:
        """Stop refilling and end the idle workers (busy ones belong to their tasks)."""
        self._closed = True
        for filler in self._fillers:
            filler.cancel()
        idle = [*self._ready, *self._starting]
        self._ready.clear()
        for worker in idle:
            await self._discard(worker)
        await asyncio.gather(*self._fillers, return_exceptions=True)
