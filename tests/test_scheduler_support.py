"""Helpers of the scheduler suites: members with real executor processes, data, specs, a client.

Each member runs the real executor service (`python -m services.executor`), which
launches `kernel.task_executor` processes; the members' tasks exchange messages through
one spool directory (STANDALONE work mode on this machine).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
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
from services.common.ports import free_port

REPO = Path(__file__).resolve().parent.parent
PROMOTER = "a" * 31 + "1"
PROVIDER = "b" * 31 + "2"
ARBITER = "c" * 31 + "3"
TERMINAL_JOB = {common_pb2.JOB_STATUS_SUCCESS, common_pb2.JOB_STATUS_FAILED, common_pb2.JOB_STATUS_STOPPED}


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
                  peers: dict[str, int], auto_retries: int = 0, ca_dir: Path | None = None) -> dict[str, Any]:
    """A member's config as the YAML would hold it (peers: member id -> transfer external port).

    Writes the member-internal key and, with `ca_dir`, the member's certificate from that CA.
    """
    from services.common import internal_auth
    from services.common.certs import issue_member_cert

    config: dict[str, Any] = {
        "member_id": member_id,
        "data_dir": str(root),
        "database_url": database_url,
        "internal_key_file": str(internal_auth.write_key(root / "internal.key")),
        "scheduler": {"listen": f"127.0.0.1:{scheduler_port}", "executors": [executor],
                      "lease_seconds": 10.0, "auto_retries": auto_retries},
        "peers": {m: {"endpoint": f"127.0.0.1:{port}"} for m, port in peers.items()},
    }
    if ca_dir is not None:
        tls = issue_member_cert(ca_dir, member_id, ["127.0.0.1", "localhost"], root / "tls")
        config["tls"] = {"ca_file": str(tls.ca_file), "cert_file": str(tls.cert_file), "key_file": str(tls.key_file)}
    return config


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
    """A SchedulerService client for one member, calling as the member's bootstrap admin.

    The token is read from `token_file` at each call: the scheduler writes it when it first
    starts, which may be after this client is made.
    """

    def __init__(self, endpoint: str, token_file: Path) -> None:
        from services.client.sdk import authenticated_channel, read_token_file

        self.token_file = token_file
        self.channel = authenticated_channel(endpoint, lambda: read_token_file(token_file))
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
    """One member of a test federation: its scheduler (in this process), executor process, client."""

    member_id: str
    root: Path
    config: dict[str, Any]
    client: Client
    spool: Path
    running: Any = None
    executor_process: subprocess.Popen[bytes] | None = None
    transfer: Any = None
    get_timeout_s: float = 60.0
    #: More environment variables of the executor process (and so of its tasks).
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return str(self.config["scheduler"]["listen"])

    @property
    def executor_endpoint(self) -> str:
        return str(self.config["executor"]["listen"])

    async def start_transfer(self) -> None:
        """The member's transfer service (in this process): the relay of every peer call."""
        from services.common.config import MemberConfig
        from services.transfer.server import TransferServer

        if self.transfer is None:
            self.transfer = TransferServer(MemberConfig.model_validate(self.config))
            await self.transfer.start()

    async def stop_transfer(self) -> None:
        if self.transfer is not None:
            await self.transfer.stop(0)
            self.transfer = None

    async def start_scheduler(self, metrics: Any = None) -> None:
        """Start the member's transfer service and scheduler (`metrics`: a ServiceMetrics to export to)."""
        from services.common.config import MemberConfig
        from services.scheduler.server import start_scheduler

        await self.start_transfer()
        self.running = await start_scheduler(MemberConfig.model_validate(self.config), metrics=metrics)

    async def stop_scheduler(self) -> None:
        if self.running is not None:
            await self.running.stop()
            self.running = None

    def write_config(self) -> Path:
        import yaml

        path = self.root / "member.yaml"
        path.write_text(yaml.safe_dump(self.config), encoding="utf-8")
        return path

    async def start_executor(self, **extra_env: str) -> None:
        """The real executor service (`python -m services.executor`) for this member."""
        env = {**os.environ, "WEFT_SPOOL_DIR": str(self.spool), "WEFT_GET_TIMEOUT_S": f"{self.get_timeout_s:g}",
               "WEFT_METRICS_PORT": "off", "PYTHONPATH": str(REPO), **self.environment, **extra_env}
        log = open(self.root / "executor.log", "ab")  # noqa: SIM115 (the process owns it)
        self.executor_process = subprocess.Popen(
            [sys.executable, "-m", "services.executor", "--config", str(self.write_config())],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        async with grpc.aio.insecure_channel(self.executor_endpoint) as channel:
            await asyncio.wait_for(channel.channel_ready(), 60)

    async def stop_executor(self) -> None:
        process = self.executor_process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                await asyncio.to_thread(process.wait)

    async def executor_tasks(self) -> list[executor_pb2.TaskInfo]:
        """What the member's executor knows about its tasks (asked as the member's scheduler)."""
        from services.common import internal_auth

        key = internal_auth.read_key(self.config["internal_key_file"])
        async with internal_auth.signed_aio_channel(self.executor_endpoint, key) as channel:
            stub = executor_pb2_grpc.ExecutorServiceStub(channel)
            return list((await stub.ListTasks(executor_pb2.ListTasksRequest(), timeout=30)).tasks)


async def start_members(root: Path, database_urls: dict[str, str], *, auto_retries: int = 0,
                        start: bool = True, shared_spool: bool = True,
                        executor: dict[str, Any] | None = None, get_timeout_s: float = 60.0,
                        environment: dict[str, str] | None = None) -> dict[str, Member]:
    """Members (id -> Member) sharing one spool directory (or each with its own), each with its own executor
    process (`executor`: more keys of every executor's config section; its tasks' get timeout
    `get_timeout_s`; `environment`: more variables of every executor process)."""
    from services.common.certs import create_ca

    ports = {member_id: free_port() for member_id in database_urls}
    external = {member_id: free_port() for member_id in database_urls}
    ca_dir = root / "ca"
    create_ca(ca_dir)
    members: dict[str, Member] = {}
    for member_id, url in database_urls.items():
        member_root = root / member_id[:6]
        member_root.mkdir(parents=True, exist_ok=True)
        spool = root / "spool" if shared_spool else member_root / "spool"
        peers = {m: p for m, p in external.items() if m != member_id}
        config = member_config(member_root, member_id, url, ports[member_id], f"127.0.0.1:{free_port()}",
                               peers, auto_retries, ca_dir)
        config["executor"] = {"listen": config["scheduler"]["executors"][0], "warm_pool": 0, "slots": 4,
                              "heartbeat_timeout_s": 30, **(executor or {})}
        config["transfer"] = {"internal_listen": f"127.0.0.1:{free_port()}",
                              "external_listen": f"127.0.0.1:{external[member_id]}", "data_lane_port": -1}
        config["spool_dir"] = str(spool)
        client = Client(f"127.0.0.1:{ports[member_id]}", member_root / "admin.token")
        members[member_id] = Member(member_id, member_root, config, client, spool, get_timeout_s=get_timeout_s,
                                    environment=dict(environment or {}))
    await asyncio.gather(*(member.start_executor() for member in members.values()))
    if start:
        for member in members.values():
            await member.start_scheduler()
    return members


async def stop_members(members: dict[str, Member]) -> None:
    for member in members.values():
        await member.stop_scheduler()
        await member.client.close()
        await member.stop_executor()
        await member.stop_transfer()


def load_rows(member: Member, name: str, rows: int, seed: int, with_label: bool, id_offset: int = 0) -> None:
    """Put a data set straight into the member's storage (UploadDataSet has its own test)."""
    from kernel.storage import DataStore

    csv = write_csv(member.root / f"{name}.csv", rows, seed, with_label, id_offset)
    DataStore(str(member.root / "storage" / "data")).import_csv(
        "test", name, str(csv), id_column="id", label_column="y" if with_label else None)
