"""Several members' transfer services as local processes on loopback, with TLS (tests, benchmarks, demos)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kernel.base_param import deep_merge
from kernel.errors import Unavailable
from kernel.federation.base import Party, RoleTable
from kernel.federation.cluster import ClusterFederation
from protos.weft.v1 import common_pb2, transfer_pb2, transfer_pb2_grpc
from services.common import internal_auth
from services.common.certs import create_ca, issue_member_cert
from services.common.ports import free_port
from services.transfer.constants import INTERNAL_SERVICE_NAME, READY_TIMEOUT_S


def job_of(session_id: str) -> str:
    """The job id `register_session` gives a session."""
    return f"job-{session_id}"


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process in MB, from /proc/<pid>/status."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, amount, _unit = line.split()
                values[key[:-1]] = int(amount) / 1024
    return values["VmRSS"], values["VmHWM"]


@dataclass
class LocalMember:
    """One member's transfer service: its config file, ports and process."""

    member_id: str
    directory: Path
    config_path: Path
    internal: str
    external: str
    process: subprocess.Popen[bytes] | None = None
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        if self.process is None:
            raise Unavailable(f"member {self.member_id}: transfer service not started")
        return self.process.pid

    def start(self, wait: bool = True) -> None:
        log = open(self.directory / "transfer.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.transfer", "--config", str(self.config_path), "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Block until the service reports SERVING (or raise with its log)."""
        with grpc.insecure_channel(self.internal) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=INTERNAL_SERVICE_NAME),
                                   timeout=timeout, wait_for_ready=True)
            except grpc.RpcError as exc:
                raise Unavailable(f"member {self.member_id} did not start: {exc}\n{self.log_text()}") from None
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise Unavailable(f"member {self.member_id} is not serving")

    def log_text(self) -> str:
        path = self.directory / "transfer.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def key(self) -> bytes:
        """The member-internal key of this member."""
        return internal_auth.read_key(self.directory / "internal.key")

    def task_credential(self, session_id: str) -> str:
        """What the executor gives a task of the job whose session `register_session` wrote."""
        return internal_auth.sign(self.key, internal_auth.TASK, job=job_of(session_id), task=f"task-{session_id}",
                                  ttl_s=internal_auth.TASK_TTL_S)

    def federation(self, session_id: str, local: Party, roles: RoleTable) -> ClusterFederation:
        """A task's CLUSTER federation client at this member, with the task credential."""
        return ClusterFederation(self.internal, session_id, local, roles, credential=self.task_credential(session_id))

    def channel(self) -> grpc.Channel:
        """A channel to the internal API whose calls carry this member's scheduler credential."""
        if self._channel is None:
            key = self.key
            self._channel = internal_auth.signed_channel(
                grpc.insecure_channel(self.internal), lambda: internal_auth.sign(key, internal_auth.SCHEDULER))
        return self._channel

    def stub(self, session_id: str | None = None) -> transfer_pb2_grpc.TransferServiceStub:
        """A client of this member's internal API: as the scheduler, or as a task of `session_id`'s job."""
        if session_id is None:
            return transfer_pb2_grpc.TransferServiceStub(self.channel())
        token = self.task_credential(session_id)
        channel = internal_auth.signed_channel(grpc.insecure_channel(self.internal), lambda: token)
        return transfer_pb2_grpc.TransferServiceStub(channel)

    def stats(self) -> transfer_pb2.TransferStats:
        stats: transfer_pb2.TransferStats = self.stub().GetStats(transfer_pb2.GetStatsRequest(), timeout=10)
        return stats

    def register_session(self, session_id: str, parties: list[Party], ttl_s: int = 0) -> None:
        self.stub().RegisterSession(transfer_pb2.RegisterSessionRequest(
            session_id=session_id, job_id=job_of(session_id), ttl_s=ttl_s,
            parties=[common_pb2.Party(role=p.role, member_id=p.member_id) for p in parties],
        ), timeout=10)


class LocalCluster:
    """A federation CA, one certificate and config per member, their services as processes."""

    def __init__(self, root: Path, member_ids: list[str], transfer: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None,
                 member_transfer: dict[str, dict[str, Any]] | None = None) -> None:
        self.root = root
        self.ca_dir = root / "ca"
        create_ca(self.ca_dir)
        ports = {member: (free_port(), free_port()) for member in member_ids}
        self.members: dict[str, LocalMember] = {}
        for member in member_ids:
            directory = root / member
            directory.mkdir(parents=True, exist_ok=True)
            files = issue_member_cert(self.ca_dir, member, out_dir=directory)
            key_file = internal_auth.write_key(directory / "internal.key")
            internal, external = (f"127.0.0.1:{port}" for port in ports[member])
            values: dict[str, Any] = {
                "member_id": member,
                "data_dir": str(directory / "data"),
                "internal_key_file": str(key_file),
                "tls": {"ca_file": str(files.ca_file), "cert_file": str(files.cert_file),
                        "key_file": str(files.key_file), "task_cert_file": str(files.task_cert_file),
                        "task_key_file": str(files.task_key_file)},
                "transfer": {"internal_listen": internal, "external_listen": external, **(transfer or {}),
                             **(member_transfer or {}).get(member, {})},
                "peers": {other: {"endpoint": f"127.0.0.1:{ports[other][1]}"}
                          for other in member_ids if other != member},
            }
            if extra:
                values = deep_merge(values, extra)
            config_path = directory / "member.yaml"
            config_path.write_text(yaml.safe_dump(values), encoding="utf-8")
            self.members[member] = LocalMember(member, directory, config_path, internal, external)

    def __getitem__(self, member_id: str) -> LocalMember:
        return self.members[member_id]

    def start(self) -> LocalCluster:
        for member in self.members.values():
            member.start(wait=False)
        for member in self.members.values():
            member.wait_ready()
        return self

    def stop(self) -> None:
        for member in self.members.values():
            member.stop()

    def register_session(self, session_id: str, parties: list[Party], ttl_s: int = 0) -> None:
        """What each member's scheduler does when a job starts."""
        for member in self.members.values():
            member.register_session(session_id, parties, ttl_s)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
