"""A whole federation on one machine: each member's scheduler, executor and transfer service.

`weft standalone up` writes one config per member under the data directory (kept across
`down`/`up`, so member ids, certificates, databases and data sets survive), starts the
three services of each member and its board as background processes, and waits until
every service answers gRPC health checks and every board its `/healthz`.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kernel.errors import ConfError, FailedPrecondition, Unavailable
from services.common.ports import free_port as _free_port

STATE_FILE = "standalone.json"
SERVICES = ("transfer", "executor", "scheduler", "serving", "board")
#: Services answering HTTP (the board) rather than gRPC health checks.
HTTP_SERVICES = ("board",)
READY_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0


@dataclass
class MemberState:
    """One local member: its id, config file and the processes running it."""

    name: str
    member_id: str
    roles: list[str]
    config_path: str
    ports: dict[str, int]
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def scheduler_endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['scheduler']}"

    @property
    def serving_endpoint(self) -> str:
        if "serving" not in self.ports:
            raise FailedPrecondition(f"{self.name} has no serving service (a federation made before serving existed); "
                                     "make a new one with 'weft standalone up' in another directory")
        return f"127.0.0.1:{self.ports['serving']}"

    @property
    def board_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['board']}/"

    @property
    def token_file(self) -> Path:
        """The admin token its scheduler wrote at its first start (mode 0600)."""
        from services.scheduler.constants import BOOTSTRAP_TOKEN_FILE

        return Path(self.config_path).parent / BOOTSTRAP_TOKEN_FILE

    def admin_token(self) -> str:
        """The member's admin API token; FailedPrecondition before its scheduler first started."""
        from services.client.sdk import read_token_file

        token = read_token_file(self.token_file)
        if token is None:
            raise FailedPrecondition(f"{self.name} has no admin token yet ({self.token_file}); "
                                     "run 'weft standalone up' first")
        return token


@dataclass
class FederationState:
    """What `standalone.json` keeps between commands."""

    data_dir: str
    backend: str
    db: str
    members: list[MemberState]

    def save(self) -> None:
        path = Path(self.data_dir) / STATE_FILE
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(temp, path)

    def member(self, selector: str | None) -> MemberState:
        """A member by name, id or index (default: the first, the promoter)."""
        if selector is None:
            return self.members[0]
        for index, member in enumerate(self.members):
            if selector in (member.name, member.member_id, str(index)):
                return member
        raise ConfError(f"no local member {selector!r} (members: {', '.join(m.name for m in self.members)})")


def load_state(data_dir: Path) -> FederationState | None:
    path = data_dir / STATE_FILE
    if not path.exists():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    members = [MemberState(**m) for m in raw.pop("members")]
    return FederationState(members=members, **raw)


def _member_database_url(db: str, data_dir: Path, name: str) -> str:
    """SQLite under the member's folder, or one database per member on a MySQL server."""
    if db == "sqlite":
        return f"sqlite+aiosqlite:///{(data_dir / name / 'weft.db').resolve()}"
    parts = urlsplit(db)
    if parts.scheme not in ("mysql", "mysql+aiomysql"):
        raise ConfError(f"--db: expected sqlite or mysql://user[:password]@host[:port], got {db!r}")
    # One database per member and per federation directory, so two federations never share.
    import hashlib

    tag = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    database = f"weft_{tag}_{name.replace('-', '_')}"
    import pymysql

    try:
        connection = pymysql.connect(
            host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
            user=parts.username or "root", password=parts.password or "",
        )
    except pymysql.MySQLError as exc:
        raise Unavailable(f"--db: cannot connect to {parts.hostname}:{parts.port or 3306}: {exc}") from None
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    connection.close()
    return urlunsplit(("mysql+aiomysql", parts.netloc, f"/{database}", "", ""))


def _roles_for(count: int, arbiter: bool) -> list[list[str]]:
    roles = [["promoter"]] + [["provider"] for _ in range(count - 1)]
    if arbiter:
        # With three members the third is the neutral arbiter; with two, the promoter also arbitrates.
        if count >= 3:
            roles[-1] = ["arbiter"]
        else:
            roles[0].append("arbiter")
    return roles


def create_federation(data_dir: Path, members: int, arbiter: bool, db: str, backend: str) -> FederationState:
    """Write configs, certificates and the state file for a new local federation."""
    from services.common import internal_auth
    from services.common.certs import create_ca, issue_member_cert

    if members < 2:
        raise ConfError("--members: a federation needs at least 2 members")
    data_dir.mkdir(parents=True, exist_ok=True)
    ca_dir = data_dir / "ca"
    create_ca(ca_dir, overwrite=True)
    states: list[MemberState] = []
    for index, roles in enumerate(_roles_for(members, arbiter)):
        name = f"member-{index + 1}"
        member_dir = data_dir / name
        member_dir.mkdir(parents=True, exist_ok=True)
        ports = {"scheduler": _free_port(), "executor": _free_port(), "transfer_internal": _free_port(),
                 "transfer_external": _free_port(), "serving": _free_port(), "board": _free_port()}
        states.append(MemberState(name, secrets.token_hex(16), roles, str(member_dir / "member.yaml"), ports))
    for state in states:
        member_dir = Path(state.config_path).parent
        tls = issue_member_cert(ca_dir, state.member_id, ["127.0.0.1", "localhost"], member_dir / "tls")
        internal_key = internal_auth.write_key(member_dir / "internal.key")
        config = {
            "member_id": state.member_id,
            "name": state.name,
            "data_dir": str(member_dir.resolve()),
            "database_url": _member_database_url(db, data_dir, state.name),
            # One spool for the whole federation: STANDALONE jobs (the default work mode) run here.
            "spool_dir": str((data_dir / "spool").resolve()),
            "internal_key_file": str(internal_key.resolve()),
            "tls": {"ca_file": str(tls.ca_file.resolve()), "cert_file": str(tls.cert_file.resolve()),
                    "key_file": str(tls.key_file.resolve()),
                    "task_cert_file": str(tls.task_cert_file.resolve()),
                    "task_key_file": str(tls.task_key_file.resolve())},
            "scheduler": {"listen": f"127.0.0.1:{state.ports['scheduler']}",
                          "executors": [f"127.0.0.1:{state.ports['executor']}"]},
            "executor": {"listen": f"127.0.0.1:{state.ports['executor']}",
                         "mode": "spark" if backend == "spark" else "local"},
            "transfer": {"internal_listen": f"127.0.0.1:{state.ports['transfer_internal']}",
                         "external_listen": f"127.0.0.1:{state.ports['transfer_external']}"},
            "serving": {"listen": f"127.0.0.1:{state.ports['serving']}"},
            "board": {"listen": f"127.0.0.1:{state.ports['board']}"},
            "peers": {other.member_id: {"endpoint": f"127.0.0.1:{other.ports['transfer_external']}",
                                        "name": other.name}
                      for other in states if other is not state},
        }
        Path(state.config_path).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    federation = FederationState(str(data_dir.resolve()), backend, db, states)
    federation.save()
    return federation


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _services(member: MemberState) -> tuple[str, ...]:
    """The member's services (a federation made before serving existed has no serving port)."""
    return tuple(s for s in SERVICES if s != "serving" or "serving" in member.ports)


def _service_endpoint(member: MemberState, service: str) -> str:
    port = member.ports.get("transfer_internal" if service == "transfer" else service, 0)
    return f"127.0.0.1:{port}"


def _ensure_board_port(member: MemberState) -> None:
    """A federation made before members had a board: give each one a port in its config."""
    if "board" in member.ports:
        return
    member.ports["board"] = _free_port()
    path = Path(member.config_path)
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config["board"] = {"listen": f"127.0.0.1:{member.ports['board']}"}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def http_health(endpoint: str, timeout: float) -> bool:
    """True when http://endpoint/healthz answers 200 within `timeout`."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{endpoint}/healthz", timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def service_health(member: MemberState, service: str, timeout: float) -> bool:
    endpoint = _service_endpoint(member, service)
    return (http_health if service in HTTP_SERVICES else health)(endpoint, timeout)


def health(endpoint: str, timeout: float) -> bool:
    """True when the endpoint answers SERVING to a gRPC health check within `timeout`."""
    with grpc.insecure_channel(endpoint) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except (grpc.FutureTimeoutError, grpc.RpcError):
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def start(state: FederationState, log: Any = print) -> None:
    """Start every member's services that are not already running, then wait for health."""
    for member in state.members:
        _ensure_board_port(member)
        for service in _services(member):
            pid = member.pids.get(service)
            if pid and _alive(pid):
                continue
            log_path = Path(member.config_path).parent / "logs" / f"{service}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "ab") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", f"services.{service}", "--config", member.config_path],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                )
            member.pids[service] = process.pid
    state.save()
    deadline = time.monotonic() + READY_TIMEOUT_S
    for member in state.members:
        for service in _services(member):
            endpoint = _service_endpoint(member, service)
            while not service_health(member, service, timeout=2.0):
                pid = member.pids[service]
                if not _alive(pid) or time.monotonic() > deadline:
                    log_path = Path(member.config_path).parent / "logs" / f"{service}.log"
                    tail = log_path.read_text(errors="replace").splitlines()[-5:] if log_path.exists() else []
                    stop(state)
                    raise FailedPrecondition(
                        f"{member.name} {service} did not become ready on {endpoint}"
                        + (f"; its log ends: {' | '.join(tail)}" if tail else "")
                    )
        log(f"{member.name} ({', '.join(member.roles)}) {member.member_id}: scheduler {member.scheduler_endpoint}, "
            f"executor {_service_endpoint(member, 'executor')}, transfer {_service_endpoint(member, 'transfer')}, "
            f"serving {member.ports.get('serving', '-')} "
            f"(peers: 127.0.0.1:{member.ports['transfer_external']}), board {member.board_url}")


def stop(state: FederationState) -> list[str]:
    """Stop every member's services (TERM, then KILL after a grace period)."""
    stopped: list[str] = []
    for member in state.members:
        for service, pid in list(member.pids.items()):
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                stopped.append(f"{member.name} {service}")
    deadline = time.monotonic() + STOP_GRACE_S
    for member in state.members:
        for pid in member.pids.values():
            while _alive(pid) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)  # waiting for a process we do not parent: no event to wait on
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        member.pids = {}
    state.save()
    return stopped


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(state: FederationState) -> list[dict[str, Any]]:
    rows = []
    for member in state.members:
        for service in _services(member):
            pid = member.pids.get(service)
            running = bool(pid and _alive(pid))
            rows.append({
                "member": member.name, "member_id": member.member_id, "roles": ",".join(member.roles),
                "service": service, "endpoint": _service_endpoint(member, service), "pid": pid or "",
                "state": ("serving" if service_health(member, service, 1.0) else "starting")
                if running else "stopped",
            })
    return rows
