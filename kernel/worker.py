"""A warm-pool worker: imports the kernel (and starts Spark) ahead of time, then runs one task.

    python -m kernel.worker --control-fd FD [--spark-master MASTER] [--spark-conf KEY=VALUE ...]
                            [--py-files ZIP]

The executor starts the worker with one end of a socket pair as `--control-fd`. Protocol,
one JSON object per line:

1. worker -> executor, once warm: `{"ready": true, "pid": ..., "spark_app_id": ...}`
2. executor -> worker: `{"argv": [...task_executor arguments...], "env": {...}, "cwd": "..."}`

The worker then closes the control socket, applies `env` and `cwd`, runs
`kernel.task_executor.main(argv)` in this process and exits with its code. A worker serves
exactly one task, so tasks never share state. End of file before an assignment (the
executor went away) makes the worker exit with code 0.

On a cluster master (`spark://...`, `k8s://...`) the worker's session is an application
at that master, holding its executors while it waits; `--py-files` ships the kernel
archive to them. If that application ends while the worker waits (its master removed it,
or the master went away), the worker exits with EXIT_SPARK_ENDED, so the executor starts
a fresh one instead of handing a task to a dead application.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

from kernel.allocator import reuse_large_buffers

if TYPE_CHECKING:
    from kernel.computing.spark import SparkComputingSession

log = logging.getLogger("weft.worker")

EXIT_NO_TASK = 0
EXIT_BAD_ASSIGNMENT = 3
EXIT_SPARK_ENDED = 4
# How often an idle worker on a cluster checks that its application still runs.
IDLE_CHECK_S = 2.0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kernel.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--control-fd", type=int, required=True, help="inherited socket to the executor")
    parser.add_argument("--spark-master", default="", help="start a SparkSession on this master")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark property for the session (repeatable)")
    parser.add_argument("--py-files", default="", help="the kernel archive the session's executors import")
    parser.add_argument("--app-name", default="weft-worker")
    return parser.parse_args(argv)


def _warm_up(ns: argparse.Namespace) -> SparkComputingSession | None:
    """Import what every task needs; start Spark when asked. Returns the Spark session or None."""
    import kernel.components  # noqa: F401  (component discovery and its imports)
    import kernel.computing  # noqa: F401
    import kernel.storage  # noqa: F401
    import kernel.task_executor  # noqa: F401
    from kernel.registry import registry

    registry()  # scans every setting.json once
    if not ns.spark_master:
        return None
    from kernel.computing.spark import SparkComputingSession

    config: dict[str, str] = {"spark.app.name": ns.app_name}
    for pair in ns.spark_conf:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --spark-conf expects KEY=VALUE, got {pair!r}")
        config[key] = value
    # The session stays active: the task's own computing session wraps it (and leaves it running).
    session = SparkComputingSession.create(master=ns.spark_master, config=config)
    if ns.py_files:
        session.spark.sparkContext.addPyFile(ns.py_files)
    return session


class IdleCheck(threading.Thread):
    """Ends the worker when its cluster application ends before a task arrives."""

    def __init__(self, session: SparkComputingSession) -> None:
        super().__init__(name="weft-worker-idle-check", daemon=True)
        self.session = session
        self.assigned = threading.Event()
        self._lock = threading.Lock()

    def take(self) -> None:
        """The task has arrived: stop checking (its own watch takes over)."""
        with self._lock:
            self.assigned.set()

    def run(self) -> None:
        # Polled: the JVM tells Python nothing when its master removes the application.
        while not self.assigned.wait(IDLE_CHECK_S):
            try:
                ended = self.session.is_stopped()
            except Exception:  # noqa: BLE001 (the gateway to the JVM is gone: so is the application)
                ended = True
            with self._lock:
                if ended and not self.assigned.is_set():
                    log.error("the Spark application ended while the worker waited for a task; exiting")
                    os._exit(EXIT_SPARK_ENDED)


def _stop_spark() -> None:
    if "pyspark" not in sys.modules:
        return
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


def _read_assignment(control: socket.socket) -> dict[str, Any] | None:
    with control.makefile("r", encoding="utf-8") as reader:
        line = reader.readline()
    if not line:
        return None
    assignment = json.loads(line)
    if not isinstance(assignment, dict) or not isinstance(assignment.get("argv"), list):
        raise ValueError("assignment: expected an object with an 'argv' list")
    return assignment


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ns = _parse_args(argv)
    reuse_large_buffers()  # federation chunks reuse freed buffers (kernel/allocator.py)
    control = socket.socket(fileno=ns.control_fd)
    session = _warm_up(ns)
    app_id = str(session.spark.sparkContext.applicationId) if session is not None else ""
    idle_check = None
    if session is not None and not str(session.spark.sparkContext.master).startswith("local"):
        idle_check = IdleCheck(session)
        idle_check.start()
    ready = {"ready": True, "pid": os.getpid(), "spark_app_id": app_id}
    control.sendall((json.dumps(ready) + "\n").encode())
    try:
        assignment = _read_assignment(control)
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"error: bad assignment from the executor: {exc}", file=sys.stderr)
        return EXIT_BAD_ASSIGNMENT
    finally:
        control.close()
        if idle_check is not None:
            idle_check.take()
    if assignment is None:
        log.info("executor closed the control socket before assigning a task; exiting")
        _stop_spark()
        return EXIT_NO_TASK
    env = assignment.get("env") or {}
    os.environ.update({str(key): str(value) for key, value in env.items()})
    if assignment.get("cwd"):
        os.chdir(str(assignment["cwd"]))
    if session is not None:
        session.watch_again()  # now with the task's member and executor wait
    from kernel.task_executor import main as run_task

    try:
        return run_task([str(arg) for arg in assignment["argv"]])
    finally:
        _stop_spark()


if __name__ == "__main__":
    sys.exit(main())
