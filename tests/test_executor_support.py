"""Helpers of the executor suites (no tests here): a member with a data set, an executor process, event streams."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kernel.storage import DataStore
from protos.weft.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from services.common import internal_auth
from services.common.ports import free_port

MEMBER = "e333ed098ccc418c9d24abdda5be2c88"
NAMESPACE = "wefe_data"
DATA_NAME = "credit_small"
ROWS = 300
REPO = Path(__file__).resolve().parent.parent


def make_data_set(storage_root: Path, scratch: Path) -> None:
    """A small CSV with an id, a label and three features, imported as NAMESPACE/DATA_NAME."""
    rng = np.random.default_rng(11)
    lines = ["id,y,x0,x1,x2"] + [
        f"u{i},{int(rng.integers(0, 2))},{rng.normal():.6f},{rng.uniform(0, 5):.6f},{i}" for i in range(ROWS)
    ]
    csv = scratch / "upload.csv"
    csv.write_text("\n".join(lines) + "\n")
    DataStore(str(storage_root / "data")).import_csv(NAMESPACE, DATA_NAME, str(csv), id_column="id",
                                                     label_column="y")


def distribution_conf(role: str = "promoter", with_arbiter: bool = False, backend: int = 0,
                      data_name: str = DATA_NAME, module: str = "Distribution") -> dict[str, Any]:
    """A seed-format runtime conf for Distribution; with an arbiter the promoter waits for it."""
    return {
        "initiator": {"member_id": MEMBER, "role": "promoter"},
        "job_parameters": {"db_type": "PARQUET", "backend": backend, "work_mode": 0},
        "role": {"promoter": [MEMBER], "arbiter": [MEMBER] if with_arbiter else []},
        "local": {"member_id": MEMBER, "role": role},
        "job_args": {"data": {"train_data": {"namespace": NAMESPACE, "name": data_name}}},
        "input": {"data": {"data": ["args.train_data"]}} if role != "arbiter" else {"data": {}},
        "output": {"data": ["train"], "model": ["model"]},
        "DistributionParam": {},
        "module": module,
    }


def task_spec(conf: dict[str, Any], job_id: str | None = None, role: str = "promoter",
              priority: int = 0, backend: int = common_pb2.BACKEND_UNSPECIFIED,
              spark: executor_pb2.SparkOptions | None = None, session: str | None = None) -> executor_pb2.TaskSpec:
    job_id = job_id or f"job{uuid.uuid4().hex[:8]}"
    return executor_pb2.TaskSpec(
        job_id=job_id, task_id=f"{job_id}_distribution_0_{role}", component_name="distribution_0",
        module=str(conf.get("module", "")), role=role, member_id=MEMBER,
        federation_session_id=session or f"{job_id}-session", runtime_conf_json=json.dumps(conf),
        priority=priority, backend=backend, spark=spark, attempt=1,
    )


class ExecutorProcess:
    """`python -m services.executor` on a config of its own, with a client stub."""

    def __init__(self, root: Path, executor: dict[str, Any]) -> None:
        self.root = root
        self.port = free_port()
        self.key_file = internal_auth.write_key(root / "member" / "internal.key")
        config = {
            "member_id": MEMBER, "data_dir": str(root / "member"),
            "storage_root": str(root / "member" / "storage"),
            "executor": {"listen": f"127.0.0.1:{self.port}", **executor},
        }
        self.config_path = root / f"member-{self.port}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None
        self.log_path = root / f"executor-{self.port}.log"

    @property
    def storage_root(self) -> Path:
        return self.root / "member" / "storage"

    @property
    def state_dir(self) -> Path:
        return self.root / "member" / "executor"

    def start(self, timeout: float = 60.0) -> ExecutorProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO), "WEFT_GET_TIMEOUT_S": "300"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.executor", "--config", str(self.config_path)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        key = internal_auth.read_key(self.key_file)
        self.channel = internal_auth.signed_channel(grpc.insecure_channel(f"127.0.0.1:{self.port}"),
                                                    lambda: internal_auth.sign(key, internal_auth.SCHEDULER))
        health = health_pb2_grpc.HealthStub(self.channel)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"executor exited: {self.log_path.read_text()[-3000:]}")
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(service="weft.v1.ExecutorService"), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return self
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"executor not serving after {timeout} s: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    @property
    def stub(self) -> executor_pb2_grpc.ExecutorServiceStub:
        assert self.channel is not None
        return executor_pb2_grpc.ExecutorServiceStub(self.channel)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill_leftover_tasks(self) -> None:
        """Test hygiene: no task process of this executor survives the test."""
        for record in self.state_dir.glob("tasks/*/a*/record.json"):
            pid = int(json.loads(record.read_text()).get("pid") or 0)
            if pid > 0:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def wait_warm(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.stub.ListTasks(executor_pb2.ListTasksRequest()).warm_workers < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} warm workers after {timeout} s: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)


class EventStream:
    """Reads a server stream of TaskEvents on a thread, so a test can wait for one kind."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.events: list[executor_pb2.TaskEvent] = []
        self._queue: queue.Queue[executor_pb2.TaskEvent | BaseException | None] = queue.Queue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self.call:
                self._queue.put(event)
        except BaseException as exc:  # the test thread re-raises it
            self._queue.put(exc)
        self._queue.put(None)

    def wait_for(self, kind: str, timeout: float = 120.0) -> executor_pb2.TaskEvent:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.WhichOneof("event") == kind:
                return event
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {kind} event within {timeout} s; got {self.kinds()}")
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if item is None:
                self._queue.put(None)
                raise AssertionError(f"stream ended without a {kind} event; got {self.kinds()}")
            if isinstance(item, BaseException):
                self.error = item
                self._queue.put(None)
                raise item
            self.events.append(item)
            if item.WhichOneof("event") == kind:
                return item

    def finish(self, timeout: float = 120.0) -> executor_pb2.TaskFinished:
        return self.wait_for("finished", timeout).finished

    def kinds(self) -> list[str]:
        return [str(event.WhichOneof("event")) for event in self.events]

    def of_kind(self, kind: str) -> list[executor_pb2.TaskEvent]:
        return [event for event in self.events if event.WhichOneof("event") == kind]

    def drain(self, timeout: float = 30.0) -> None:
        """Read until the stream closes."""
        self._thread.join(timeout)
        while not self._queue.empty():
            item = self._queue.get()
            if isinstance(item, executor_pb2.TaskEvent):
                self.events.append(item)


def run_task(executor: ExecutorProcess, spec: executor_pb2.TaskSpec, stream_logs: bool = False) -> EventStream:
    return EventStream(executor.stub.RunTask(executor_pb2.RunTaskRequest(spec=spec, stream_logs=stream_logs)))


def run_watch(executor: ExecutorProcess, task_id: str, stream_logs: bool = False) -> EventStream:
    return EventStream(executor.stub.WatchTask(executor_pb2.WatchTaskRequest(task_id=task_id, stream_logs=stream_logs)))


def descendants(pid: int) -> set[int]:
    """`pid` and every live process below it or in its process group."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":
            continue
        parents[int(entry.name)] = int(fields[1])
        groups[int(entry.name)] = int(fields[2])
    found = {pid} if pid in parents else set()
    found |= {other for other, group in groups.items() if group == pid}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in found and child not in found:
                found.add(child)
                changed = True
    return found


def command_of(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            stat = (Path("/proc") / str(pid) / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            living.add(pid)
    return living


def wait_gone(pids: set[int], timeout: float = 30.0) -> set[int]:
    """The pids still alive after waiting up to `timeout` for them to end."""
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive(pids)
