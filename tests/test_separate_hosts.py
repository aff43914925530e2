"""Members on separate hosts, for real: each of three members in its own network namespace with its own
address, a firewall admitting only the transfer port from the other members, its own files and
SQLite database. The demo job (vertical) and a horizontal job with an arbiter run between them, and
the other ports of a member cannot be reached from another member's host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from services.client.demo import EXAMPLES, demo_spec
from services.common import internal_auth
from services.common.certs import create_ca, issue_member_cert
from tests.netns import Host, TestHosts, missing_requirements
from tests.test_horz_kit import breast_rows

REPO = Path(__file__).resolve().parents[1]
HEALTH_CHECK = REPO / "deploy" / "grpc-health-check.py"
#: Every member uses the same ports, each on its own host.
PORTS = {"scheduler": 9370, "executor": 9380, "transfer": 9390}
EXTERNAL_PORT = 9391
READY_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0
JOB_TIMEOUT_S = 900.0
PROBE = ("import socket, sys\n"
         "try:\n"
         "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\n"
         "    print('open')\n"
         "except OSError as exc:\n"
         "    print(f'closed: {exc}')\n")


@dataclass
class Member:
    """One member on its own host: its id, folder, config and service processes."""

    name: str
    member_id: str
    host: Host
    root: Path
    processes: dict[str, subprocess.Popen[bytes]]

    @property
    def config(self) -> Path:
        return self.root / "member.yaml"

    @property
    def scheduler(self) -> str:
        return f"{self.host.address}:{PORTS['scheduler']}"

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command on this member's host, as a user there would run it."""
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run(self.host.command(*argv), capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=self.root, check=False)

    def weft(self, *args: str, timeout: float = 120) -> str:
        # The admin token the member's scheduler wrote into its data folder at its first start.
        token = (self.root / "data" / "admin.token").read_text(encoding="ascii").strip()
        result = self.run(sys.executable, "-m", "services.client.cli", "--scheduler", self.scheduler,
                          "--token", token, "--timeout", str(timeout), *args, timeout=timeout + 30)
        assert result.returncode == 0, f"{self.name}: weft {' '.join(args)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        return result.stdout

    def reaches(self, other: Member, port: int) -> bool:
        result = self.run(sys.executable, "-c", PROBE, other.host.address, str(port), "2")
        return result.stdout.startswith("open")


def write_member(root: Path, ca_dir: Path, name: str, member_id: str, host: Host, peers: dict[str, Host]) -> None:
    """The member's own folder: its certificate (and the CA certificate), its config and data."""
    tls = issue_member_cert(ca_dir, member_id, [host.address], root / "tls")
    (root / "tls" / "ca.crt").write_bytes(tls.ca_file.read_bytes())
    internal_auth.write_key(root / "data" / "internal.key")
    address = host.address
    config = {
        "member_id": member_id, "name": name, "data_dir": str(root / "data"),
        "tls": {"ca_file": str(root / "tls" / "ca.crt"), "cert_file": str(tls.cert_file),
                "key_file": str(tls.key_file)},
        "scheduler": {"listen": f"{address}:{PORTS['scheduler']}", "executors": [f"{address}:{PORTS['executor']}"]},
        "executor": {"listen": f"{address}:{PORTS['executor']}", "mode": "local"},
        "transfer": {"internal_listen": f"{address}:{PORTS['transfer']}",
                     "external_listen": f"{address}:{EXTERNAL_PORT}"},
        "peers": {peer_id: {"endpoint": f"{peer.address}:{EXTERNAL_PORT}"} for peer_id, peer in peers.items()},
    }
    (root / "member.yaml").write_text(yaml.safe_dump(config))


def start(member: Member) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for service in ("transfer", "executor", "scheduler"):
        log = (member.root / f"{service}.log").open("wb")
        member.processes[service] = subprocess.Popen(
            member.host.command(sys.executable, "-m", f"services.{service}", "--config", str(member.config)),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=member.root,
            start_new_session=True)
        endpoint = f"{member.host.address}:{PORTS[service]}"
        deadline = time.monotonic() + READY_TIMEOUT_S
        while member.run(sys.executable, str(HEALTH_CHECK), endpoint).returncode != 0:
            tail = (member.root / f"{service}.log").read_text(errors="replace")[-3000:]
            assert member.processes[service].poll() is None, f"{member.name} {service} exited:\n{tail}"
            assert time.monotonic() < deadline, f"{member.name} {service} not ready on {endpoint}:\n{tail}"
            time.sleep(0.5)  # a service in another namespace: its health answer is what there is to watch


def stop(member: Member) -> None:
    for process in reversed(list(member.processes.values())):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in member.processes.values():
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Member]]:
    """Promoter, provider and arbiter, each on its own host; only 9391 open between hosts."""
    why = missing_requirements()
    if why is not None:
        pytest.fail(f"cannot make test hosts: {why}")
    root = tmp_path_factory.mktemp("hosts")
    hosts = TestHosts()
    started: list[Member] = []
    try:
        machines = hosts.create(3)
        ca_dir = root / "federation-ca"  # the federation operator's, read by no member
        create_ca(ca_dir)
        names = ("promoter", "provider", "arbiter")
        ids = {name: os.urandom(16).hex() for name in names}
        for name, host in zip(names, machines, strict=True):
            others = [h for h in machines if h is not host]
            hosts.admit_only(host, EXTERNAL_PORT, others)
            peers = {ids[n]: h for n, h in zip(names, machines, strict=True) if h is not host}
            write_member(root / name, ca_dir, name, ids[name], host, peers)
            started.append(Member(name, ids[name], host, root / name, {}))
        for member in started:
            start(member)
        yield started
    finally:
        for member in started:
            stop(member)
        hosts.close()


@pytest.mark.slow
@pytest.mark.timeout(JOB_TIMEOUT_S)
def test_only_the_transfer_port_of_a_member_is_reachable_from_another_host(members: list[Member]) -> None:
    # Prepare
    promoter, provider, _ = members
    # Execute + Assert: each port answers on its own host, only the transfer port from the other
    for port in (*PORTS.values(), EXTERNAL_PORT):
        assert promoter.reaches(promoter, port), f"nothing listens on {promoter.host.address}:{port}"
        assert provider.reaches(promoter, port) == (port == EXTERNAL_PORT), f"port {port} from the provider"
        assert promoter.reaches(provider, port) == (port == EXTERNAL_PORT), f"port {port} from the promoter"
    # the hosts share no loopback: the promoter's ports are not on the provider's 127.0.0.1
    assert not provider.run(sys.executable, "-c", PROBE, "127.0.0.1", str(PORTS["scheduler"]), "1") \
        .stdout.startswith("open")


@pytest.mark.slow
@pytest.mark.timeout(JOB_TIMEOUT_S)
def test_the_demo_job_runs_between_two_hosts(members: list[Member]) -> None:
    # Prepare: each member uploads its own half of the columns from its own host
    promoter, provider, _ = members
    for member, side, label in ((promoter, "promoter", ["--label-column", "y"]), (provider, "provider", [])):
        for split in ("train", "test"):
            member.weft("upload", str(EXAMPLES / f"breast_{side}_{split}.csv"), "--namespace", "demo",
                        "--name", f"breast_{side}_{split}", "--id-column", "id", *label)
    job = promoter.root / "demo-job.json"
    job.write_text(json.dumps(demo_spec(promoter.member_id, provider.member_id, "local")))
    # Execute
    output = promoter.weft("submit", str(job), "--watch", timeout=JOB_TIMEOUT_S)
    # Assert
    job_id = output.split("job id: ", 1)[1].split()[0]
    assert f"job {job_id}: success" in output
    assert "success" in provider.weft("job", job_id)
    assert "evaluation/validate" in promoter.weft("result", job_id, "--component", "evaluation_0")


@pytest.mark.slow
@pytest.mark.timeout(JOB_TIMEOUT_S)
def test_a_horizontal_job_with_an_arbiter_runs_between_three_hosts(members: list[Member]) -> None:
    # Prepare: rows of the same columns at the promoter and the provider, each on its own host
    promoter, provider, arbiter = members
    rows = breast_rows([1, 1])
    for member, train, test in zip((promoter, provider), rows.members, rows.test, strict=True):
        for split, frame in (("train", train), ("test", test)):
            path = member.root / f"{split}.csv"
            frame.to_csv(path, index=False)
            member.weft("upload", str(path), "--namespace", "horz", "--name", split, "--id-column", "id",
                        "--label-column", "y")
    data = {"data": {"train": {"namespace": "horz", "name": "train"}, "test": {"namespace": "horz", "name": "test"}}}
    spec = {
        "name": "horz-lr-on-hosts",
        "initiator": {"member_id": promoter.member_id, "role": "promoter"},
        "role": {"promoter": [promoter.member_id], "provider": [provider.member_id],
                 "arbiter": [arbiter.member_id]},
        "job_parameters": {"backend": "LOCAL", "work_mode": "CLUSTER"},  # messages through the transfer services
        "job_args": {promoter.member_id: data, provider.member_id: data},
        "components": {
            "horz_lr_0": {"module": "HorzLR", "input": {"data": {"train_data": ["args.train"],
                                                                  "validate_data": ["args.test"]}},
                          "output": {"data": ["train"], "model": ["model"]}, "params": {"max_iter": 10}},
            "evaluation_0": {"module": "Evaluation", "roles": ["promoter", "provider"],
                             "input": {"data": {"data": ["horz_lr_0.train"]}}},
        },
    }
    job = promoter.root / "horz-job.json"
    job.write_text(json.dumps(spec))
    # Execute
    output = promoter.weft("submit", str(job), "--watch", timeout=JOB_TIMEOUT_S)
    # Assert: success at all three members, each reached only through the transfer port
    job_id = output.split("job id: ", 1)[1].split()[0]
    assert f"job {job_id}: success" in output
    for member in (provider, arbiter):
        assert "success" in member.weft("job", job_id)
