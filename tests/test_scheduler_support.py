"""Helpers of the scheduler suites: an ExecutorService running real task processes, members, jobs.

`ProcessExecutor` implements the real ExecutorService contract: each RunTask launches
`python -m kernel.task_executor` as its own process group (STANDALONE work mode, a spool
directory shared by the members on this machine) and streams accepted / started /
metric / finished events read from the process and the files its tracker writes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from protos.weft.v1 import (
    common_pb2,
    executor_pb2,
    executor_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

REPO = Path(__file__).resolve().parent.parent
PROMOTER = "a" * 31 + "1"
PROVIDER = "b" * 31 + "2"
ARBITER = "c" * 31 + "3"
TERMINAL_JOB = {common_pb2.JOB_STATUS_SUCCESS, common_pb2.JOB_STATUS_FAILED, common_pb2.JOB_STATUS_STOPPED}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Task:
    spec: executor_pb2.TaskSpec
    accepted_at_ms: int
    status: int = common_pb2.TASK_STATUS_WAITING
    pid: int = 0
    started_at_ms: int = 0
    ended_at_ms: int = 0
    exit_code: int = 0
    error: str = ""
    stop_reason: str = ""
    events: list[executor_pb2.TaskEvent] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    runner: asyncio.Task[None] | None = None

    @property
    def finished(self) -> bool:
        return self.status in (common_pb2.TASK_STATUS_SUCCESS, common_pb2.TASK_STATUS_FAILED,
                               common_pb2.TASK_STATUS_STOPPED)

    def info(self) -> executor_pb2.TaskInfo:
        s = self.spec
        return executor_pb2.TaskInfo(
            task_id=s.task_id, job_id=s.job_id, component_name=s.component_name, role=s.role,
            member_id=s.member_id, attempt=s.attempt, status=self.status, backend=s.backend, pid=self.pid,  # type: ignore[arg-type]
            accepted_at_ms=self.accepted_at_ms, started_at_ms=self.started_at_ms, ended_at_ms=self.ended_at_ms,
            exit_code=self.exit_code, error=self.error,
        )


class ProcessExecutor(executor_pb2_grpc.ExecutorServiceServicer):
    """ExecutorService launching each task as a real `kernel.task_executor` process."""

    def __init__(self, storage_root: Path, spool_dir: Path, get_timeout_s: float = 60.0) -> None:
        self.storage_root = storage_root
        self.spool_dir = spool_dir
        self.get_timeout_s = get_timeout_s
        self.tasks: dict[str, _Task] = {}
        self.run_calls = 0

    async def _emit(self, task: _Task, **event: Any) -> None:
        async with task.changed:
            task.events.append(executor_pb2.TaskEvent(
                task_id=task.spec.task_id, attempt=task.spec.attempt, timestamp_ms=now_ms(), **event))
            task.changed.notify_all()

    async def _stream(self, task: _Task, start: int) -> AsyncIterator[executor_pb2.TaskEvent]:
        index = start
        while True:
            async with task.changed:
                await task.changed.wait_for(lambda i=index: len(task.events) > i)  # type: ignore[misc]
                pending = task.events[index:]
            for event in pending:
                index += 1
                yield event
                if event.WhichOneof("event") == "finished":
                    return

    async def _run(self, task: _Task) -> None:
        spec = task.spec
        work = self.storage_root / "executor" / f"{spec.task_id}.{spec.attempt}"
        work.mkdir(parents=True, exist_ok=True)
        conf = work / "conf.json"
        conf.write_text(spec.runtime_conf_json, encoding="utf-8")
        task_dir = self.storage_root / "tasks" / spec.job_id / spec.component_name / spec.role / spec.member_id
        for stale in ("status.json", "metrics.jsonl"):
            (task_dir / stale).unlink(missing_ok=True)
        env = {**os.environ, "WEFT_SPOOL_DIR": str(self.spool_dir), "WEFT_GET_TIMEOUT_S": str(self.get_timeout_s),
               "PYTHONPATH": str(REPO)}
        with open(work / "task.log", "wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "kernel.task_executor", "-j", spec.job_id, "-n", spec.component_name,
                "-t", spec.task_id, "-r", spec.role, "-m", spec.member_id, "-s", spec.federation_session_id,
                "-c", str(conf), "--storage-root", str(self.storage_root),
                cwd=REPO, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        task.pid, task.started_at_ms, task.status = process.pid, now_ms(), common_pb2.TASK_STATUS_RUNNING
        await self._emit(task, started=executor_pb2.TaskStarted(pid=process.pid))
        code = await process.wait()
        metrics = task_dir / "metrics.jsonl"
        if metrics.exists():
            for line in metrics.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                await self._emit(task, metric=executor_pb2.TaskMetric(
                    name=record["name"], namespace=record["namespace"], metric_type=record.get("type", ""),
                    json=json.dumps(record["points"])))
        status_file = task_dir / "status.json"
        reported = json.loads(status_file.read_text()) if status_file.exists() else {}
        task.exit_code, task.ended_at_ms = code, now_ms()
        if task.stop_reason:
            task.status, task.error = common_pb2.TASK_STATUS_STOPPED, task.stop_reason
        elif code == 0:
            task.status = common_pb2.TASK_STATUS_SUCCESS
        else:
            task.status = common_pb2.TASK_STATUS_FAILED
            task.error = reported.get("error") or (work / "task.log").read_text(errors="replace")[-500:]
        await self._emit(task, finished=executor_pb2.TaskFinished(
            status=task.status, error=task.error, exit_code=code))  # type: ignore[arg-type]

    async def RunTask(self, request: executor_pb2.RunTaskRequest,
                      context: grpc.aio.ServicerContext) -> AsyncIterator[executor_pb2.TaskEvent]:
        spec = request.spec
        self.run_calls += 1
        task = self.tasks.get(spec.task_id)
        if task is None or task.spec.attempt != spec.attempt:
            task = _Task(spec=spec, accepted_at_ms=now_ms())
            self.tasks[spec.task_id] = task
            await self._emit(task, accepted=executor_pb2.TaskAccepted(queue_position=0))
            task.runner = asyncio.create_task(self._run(task))
        async for event in self._stream(task, 0):
            yield event

    async def WatchTask(self, request: executor_pb2.WatchTaskRequest,
                        context: grpc.aio.ServicerContext) -> AsyncIterator[executor_pb2.TaskEvent]:
        task = self.tasks.get(request.task_id)
        if task is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"task {request.task_id} unknown")
            return
        start = len(task.events)
        yield executor_pb2.TaskEvent(task_id=task.spec.task_id, attempt=task.spec.attempt,
                                     timestamp_ms=now_ms(), snapshot=task.info())
        if task.finished:
            start = next(i for i, e in enumerate(task.events) if e.WhichOneof("event") == "finished")
        async for event in self._stream(task, start):
            yield event

    async def StopTask(self, request: executor_pb2.StopTaskRequest,
                       context: grpc.aio.ServicerContext) -> executor_pb2.StopTaskResponse:
        task = self.tasks.get(request.task_id)
        if task is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"task {request.task_id} unknown")
            raise AssertionError("unreachable")
        if not task.finished:
            task.stop_reason = request.reason or "stopped by request"
            if task.pid:
                try:
                    os.killpg(task.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if task.runner is not None:
                await task.runner
        return executor_pb2.StopTaskResponse(status=task.status)  # type: ignore[arg-type]

    async def GetTask(self, request: executor_pb2.GetTaskRequest,
                      context: grpc.aio.ServicerContext) -> executor_pb2.TaskInfo:
        task = self.tasks.get(request.task_id)
        if task is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"task {request.task_id} unknown")
            raise AssertionError("unreachable")
        return task.info()

    async def ListTasks(self, request: executor_pb2.ListTasksRequest,
                        context: grpc.aio.ServicerContext) -> executor_pb2.ListTasksResponse:
        tasks = [t for t in self.tasks.values() if not request.job_id or t.spec.job_id == request.job_id]
        running = sum(t.status == common_pb2.TASK_STATUS_RUNNING for t in self.tasks.values())
        return executor_pb2.ListTasksResponse(
            tasks=[t.info() for t in tasks], slots_total=8, running_count=running, queued_count=0)

    async def kill_all(self) -> None:
        for task in self.tasks.values():
            if not task.finished and task.pid:
                task.stop_reason = "executor shut down"
                try:
                    os.killpg(task.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        await asyncio.gather(*(t.runner for t in self.tasks.values() if t.runner), return_exceptions=True)


async def start_executor(servicer: executor_pb2_grpc.ExecutorServiceServicer) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    executor_pb2_grpc.add_ExecutorServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def write_csv(path: Path, rows: int, seed: int, with_label: bool, id_offset: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    header = ["id", *(["y"] if with_label else []), "x0", "x1"]
    lines = [",".join(header)]
    for i in range(rows):
        values = [f"u{i + id_offset}", *([str(int(rng.integers(0, 2)))] if with_label else []),
                  f"{rng.normal():.5f}", f"{rng.uniform(0, 10):.5f}"]
        lines.append(",".join(values))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def member_config(root: Path, member_id: str, database_url: str, scheduler_port: int, executor: str,
                  peers: dict[str, int], auto_retries: int = 0) -> dict[str, Any]:
    """A member's config as the YAML would hold it (peers: member id -> scheduler port, direct)."""
    return {
        "member_id": member_id,
        "data_dir": str(root),
        "database_url": database_url,
        "scheduler": {"listen": f"127.0.0.1:{scheduler_port}", "executors": [executor],
                      "lease_seconds": 10.0, "auto_retries": auto_retries},
        "peers": {m: {"endpoint": f"127.0.0.1:{port}"} for m, port in peers.items()},
    }


def distribution_spec(*, arbiter: bool = True, provider_params: dict[str, Any] | None = None,
                      distribution_roles: list[str] | None = None) -> dict[str, Any]:
    """DataIO at the promoter and provider, then Distribution merged by the arbiter."""
    roles: dict[str, list[str]] = {"promoter": [PROMOTER], "provider": [PROVIDER], "arbiter": [ARBITER] if arbiter else []}
    distribution: dict[str, Any] = {"module": "Distribution", "input": {"data": {"data": ["dataio_0.train"]}},
                                    "output": {"data": ["train"], "model": ["model"]}, "params": {"bins": 8}}
    if distribution_roles is not None:
        distribution["roles"] = distribution_roles
    return {
        "name": "distribution-test",
        "initiator": {"member_id": PROMOTER, "role": "promoter"},
        "role": roles,
        "job_parameters": {"backend": "LOCAL", "work_mode": "STANDALONE"},
        "job_args": {PROMOTER: {"data": {"train": {"namespace": "test", "name": "promoter_rows"}}},
                     PROVIDER: {"data": {"train": {"namespace": "test", "name": "provider_rows"}}}},
        "components": {
            "dataio_0": {"module": "DataIO", "input": {"data": {"data": ["args.train"]}},
                         "output": {"data": ["train"]}, "params": {"with_label": True, "label_name": "y"},
                         "role_params": {"provider": provider_params or {"with_label": False}}},
            "distribution_0": distribution,
        },
    }


class Client:
    """A SchedulerService client for one member."""

    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.aio.insecure_channel(endpoint)
        self.stub = scheduler_pb2_grpc.SchedulerServiceStub(self.channel)

    async def submit(self, spec: dict[str, Any]) -> str:
        reply = await self.stub.SubmitJob(scheduler_pb2.SubmitJobRequest(spec_json=json.dumps(spec)), timeout=60)
        return str(reply.job_id)

    async def job(self, job_id: str) -> scheduler_pb2.JobInfo:
        return (await self.stub.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id), timeout=30)).job

    async def wait_status(self, job_id: str, statuses: set[int], timeout: float = 120.0) -> scheduler_pb2.JobInfo:
        """Follow WatchJob until the job reaches one of `statuses` or ends (snapshot included)."""

        async def follow() -> None:
            while True:
                try:
                    async for event in self.stub.WatchJob(scheduler_pb2.WatchJobRequest(job_id=job_id)):
                        kind = event.WhichOneof("event")
                        status = {"snapshot": event.snapshot.status,
                                  "job_status": event.job_status.status}.get(str(kind))
                        if status in statuses or status in TERMINAL_JOB:
                            return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                        raise
                    await asyncio.sleep(0.2)  # the scheduler is restarting: reconnect

        await asyncio.wait_for(follow(), timeout)
        return await self.job(job_id)

    async def close(self) -> None:
        await self.channel.close()


@dataclass
class Member:
    """One member of a test federation: its scheduler (in this process), executor and client."""

    member_id: str
    root: Path
    config: dict[str, Any]
    executor: ProcessExecutor
    executor_server: grpc.aio.Server
    client: Client
    running: Any = None

    @property
    def endpoint(self) -> str:
        return str(self.config["scheduler"]["listen"])

    async def start_scheduler(self) -> None:
        from services.common.config import MemberConfig
        from services.scheduler.server import start_scheduler

        self.running = await start_scheduler(MemberConfig.model_validate(self.config), direct_peers=True)

    async def stop_scheduler(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

    def write_config(self) -> Path:
        import yaml

        path = self.root / "member.yaml"
        path.write_text(yaml.safe_dump(self.config), encoding="utf-8")
        return path


async def start_members(root: Path, database_urls: dict[str, str], *, auto_retries: int = 0,
                        start: bool = True) -> dict[str, Member]:
    """Members (id -> Member) sharing one spool directory, each with its own executor."""
    spool = root / "spool"
    ports = {member_id: free_port() for member_id in database_urls}
    members: dict[str, Member] = {}
    for member_id, url in database_urls.items():
        member_root = root / member_id[:6]
        member_root.mkdir(parents=True, exist_ok=True)
        executor = ProcessExecutor(member_root / "storage", spool)
        server, endpoint = await start_executor(executor)
        peers = {m: p for m, p in ports.items() if m != member_id}
        config = member_config(member_root, member_id, url, ports[member_id], endpoint, peers, auto_retries)
        members[member_id] = Member(member_id, member_root, config, executor, server,
                                    Client(f"127.0.0.1:{ports[member_id]}"))
    if start:
        for member in members.values():
            await member.start_scheduler()
    return members


async def stop_members(members: dict[str, Member]) -> None:
    for member in members.values():
        await member.stop_scheduler()
        await member.client.close()
        await member.executor.kill_all()
        await member.executor_server.stop(0)


def load_rows(member: Member, name: str, rows: int, seed: int, with_label: bool, id_offset: int = 0) -> None:
    """Put a data set straight into the member's storage (UploadDataSet has its own test)."""
    from kernel.storage import DataStore

    csv = write_csv(member.root / f"{name}.csv", rows, seed, with_label, id_offset)
    DataStore(str(member.root / "storage" / "data")).import_csv(
        "test", name, str(csv), id_column="id", label_column="y" if with_label else None)
