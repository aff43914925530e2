"""Build the images' install sets into their own virtualenvs and start each service from its own (CI).

    python scripts/check_install_sets.py [--root DIR] [--keep]

The same `scripts/install-image.sh` steps as deploy/Dockerfile's build stages: the `core` set
(scheduler, transfer) and the `spark` set (executor), each a fresh venv, non-editable. Then:
the core venv holds neither pyspark nor grpcio-tools, the spark venv holds pyspark but no
grpcio-tools; one member's transfer, scheduler, board and serving start from the core venv and its
executor from the spark venv (Spark mode), each answers its health check (gRPC; the board's
/healthz, and it serves its packaged front-end files), and each stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import yaml

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
HEALTH_CHECK: Final = REPO_ROOT / "deploy" / "grpc-health-check.py"
#: install set -> (modules it must hold, modules it must not hold)
SETS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "core": (("grpc", "pydantic", "sqlalchemy", "aiohttp"), ("pyspark", "grpc_tools")),
    "spark": (("grpc", "pyspark"), ("grpc_tools",)),
}
#: service -> install set it runs from (the image that runs it)
SERVICE_SETS: Final = {"transfer": "core", "executor": "spark", "scheduler": "core", "board": "core",
                       "serving": "core"}
#: what the board must serve from the installed package (built by scripts/build-board-assets.sh)
BOARD_FILES: Final = ("/healthz", "/static/board.js", "/static/vendor/chart.umd.js", "/login")
READY_TIMEOUT_S: Final = 120.0
STOP_TIMEOUT_S: Final = 30.0


def say(message: str) -> None:
    print(f"check-install-sets: {message}", flush=True)


def install(root: Path, name: str) -> Path:
    venv = root / name
    command = ["bash", str(REPO_ROOT / "scripts" / "install-image.sh"), "--venv", str(venv), "--extras", name]
    if name == "spark":
        command.append("--require-java")
    say(f"installing set {name} into {venv}")
    subprocess.run(command, check=True)
    return venv


def check_modules(venv: Path, name: str) -> None:
    present, absent = SETS[name]
    probe = ("import importlib.util, sys\n"
             "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None))")
    found = set(subprocess.run([str(venv / "bin" / "python"), "-c", probe, *present, *absent],
                               check=True, capture_output=True, text=True).stdout.split())
    missing = [m for m in present if m not in found]
    extra = [m for m in absent if m in found]
    if missing or extra:
        raise SystemExit(f"check-install-sets: set {name}: missing {missing or 'nothing'}, "
                         f"must not hold {extra or 'nothing'}")
    say(f"set {name} holds {', '.join(present)} and not {', '.join(absent)}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def member_config(root: Path, core: Path) -> Path:
    """One member on loopback with a certificate from `weft certs` of the core venv."""
    member_id = os.urandom(16).hex()
    weft = str(core / "bin" / "weft")
    subprocess.run([weft, "certs", "init", "--dir", str(root / "ca")], check=True, capture_output=True)
    subprocess.run([weft, "certs", "issue", "--ca-dir", str(root / "ca"), "--member-id", member_id,
                    "--host", "127.0.0.1", "--out", str(root / "tls")], check=True, capture_output=True)
    shutil.copy(root / "ca" / "ca.crt", root / "tls" / "ca.crt")
    subprocess.run([str(core / "bin" / "python"), "-m", "services.common.internal_auth",
                    str(root / "data" / "internal.key")], check=True, capture_output=True)
    ports = {name: free_port() for name in ("scheduler", "executor", "internal", "external", "board", "serving")}
    config = {
        "member_id": member_id,
        "name": "install-set-check",
        "data_dir": str(root / "data"),
        "tls": {"ca_file": str(root / "tls" / "ca.crt"), "cert_file": str(root / "tls" / f"{member_id}.crt"),
                "key_file": str(root / "tls" / f"{member_id}.key")},
        "scheduler": {"listen": f"127.0.0.1:{ports['scheduler']}",
                      "executors": [f"127.0.0.1:{ports['executor']}"]},
        "executor": {"listen": f"127.0.0.1:{ports['executor']}", "mode": "spark", "warm_pool": 0,
                     "spark": {"master": "local[1]"}},
        "transfer": {"internal_listen": f"127.0.0.1:{ports['internal']}",
                     "external_listen": f"127.0.0.1:{ports['external']}"},
        "board": {"listen": f"127.0.0.1:{ports['board']}"},
        "serving": {"listen": f"127.0.0.1:{ports['serving']}"},
    }
    path = root / "member.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def endpoint_of(config: Path, service: str) -> str:
    values = yaml.safe_load(config.read_text())
    return str(values["transfer"]["internal_listen"] if service == "transfer" else values[service]["listen"])


def board_healthy(endpoint: str) -> bool:
    """The board answers every one of BOARD_FILES with 200."""
    import urllib.error
    import urllib.request

    try:
        for path in BOARD_FILES:
            with urllib.request.urlopen(f"http://{endpoint}{path}", timeout=5) as reply:
                if reply.status != 200:
                    return False
    except (urllib.error.URLError, OSError):
        return False
    return True


def healthy(core: Path, endpoint: str, service: str = "") -> bool:
    if service == "board":
        return board_healthy(endpoint)
    result = subprocess.run([str(core / "bin" / "python"), str(HEALTH_CHECK), endpoint],
                            capture_output=True, text=True, check=False)
    return result.returncode == 0


def start_and_stop(root: Path, venvs: dict[str, Path], config: Path) -> None:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for service, set_name in SERVICE_SETS.items():
            log = (root / f"{service}.log").open("wb")
            processes[service] = subprocess.Popen(
                [str(venvs[set_name] / "bin" / "weft"), "serve", service, "--config", str(config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root)
            endpoint = endpoint_of(config, service)
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not healthy(venvs["core"], endpoint, service):
                if processes[service].poll() is not None or time.monotonic() > deadline:
                    tail = (root / f"{service}.log").read_text(errors="replace")[-3000:]
                    raise SystemExit(f"check-install-sets: {service} (set {set_name}) did not answer its "
                                     f"health check on {endpoint}; its log ends:\n{tail}")
                time.sleep(0.2)  # a process we only see from outside: its port is what there is to watch
            say(f"{service} from the {set_name} set answers its health check on {endpoint}")
    finally:
        for service, process in reversed(processes.items()):
            process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                raise SystemExit(f"check-install-sets: {service} did not stop on SIGTERM") from None
            say(f"{service} stopped (exit {code})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, help="where the venvs go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the venvs and logs")
    args = parser.parse_args(argv)
    root = args.root or Path(tempfile.mkdtemp(prefix="weft-install-sets-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        venvs = {name: install(root, name) for name in SETS}
        for name, venv in venvs.items():
            check_modules(venv, name)
        start_and_stop(root, venvs, member_config(root, venvs["core"]))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    say("both install sets install and run their services")
    return 0


if __name__ == "__main__":
    sys.exit(main())
