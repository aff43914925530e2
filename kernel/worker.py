"""A warm-pool worker: imports the kernel (and starts Spark) ahead of time, then runs one task.

    python -m kernel.worker --control-fd FD [--spark-master local[N]] [--spark-conf KEY=VALUE ...]

The executor starts the worker with one end of a socket pair as `--control-fd`. Protocol,
one JSON object per line:

1. worker -> executor, once warm: `{"ready": true, "pid": ..., "spark_app_id": ...}`
2. executor -> worker: `{"argv": [...task_executor arguments...], "env": {...}, "cwd": "..."}`

The worker then closes the control socket, applies `env` and `cwd`, runs
`kernel.task_executor.main(argv)` in this process and exits with its code. A worker serves
exactly one task, so tasks never share state. End of file before an assignment (the
executor went away) makes the worker exit with code 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from typing import Any

from kernel.allocator import reuse_large_buffers

log = logging.getLogger("weft.worker")

EXIT_NO_TASK = 0
EXIT_BAD_ASSIGNMENT = 3


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kernel.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--control-fd", type=int, required=True, help="inherited socket to the executor")
    parser.add_argument("--spark-master", default="", help="start a SparkSession on this (local) master")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a Spark property for the session (repeatable)")
    parser.add_argument("--app-name", default="weft-worker")
    return parser.parse_args(argv)


def _warm_up(ns: argparse.Namespace) -> str:
    """Import what every task needs; start Spark when asked. Returns the Spark app id or ''."""
    import kernel.components  # noqa: F401  (component discovery and its imports)
    import kernel.computing  # noqa: F401
    import kernel.storage  # noqa: F401
    import kernel.task_executor  # noqa: F401
    from kernel.registry import registry

    registry()  # scans every setting.json once
    if not ns.spark_master:
        return ""
    from kernel.computing import spark_session

    config: dict[str, str] = {"spark.app.name": ns.app_name}
    for pair in ns.spark_conf:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --spark-conf expects KEY=VALUE, got {pair!r}")
        config[key] = value
    # The session stays active: the task's own computing session wraps it (and leaves it running).
    session = spark_session(master=ns.spark_master, config=config)
    spark = getattr(session, "spark", None)
    return str(spark.sparkContext.applicationId) if spark is not None else ""


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
    app_id = _warm_up(ns)
    ready = {"ready": True, "pid": os.getpid(), "spark_app_id": app_id}
    control.sendall((json.dumps(ready) + "\n").encode())
    try:
        assignment = _read_assignment(control)
    except (ValueError, json.JSONDecodeError) as exc:
        print(f"error: bad assignment from the executor: {exc}", file=sys.stderr)
        return EXIT_BAD_ASSIGNMENT
    finally:
        control.close()
    if assignment is None:
        log.info("executor closed the control socket before assigning a task; exiting")
        _stop_spark()
        return EXIT_NO_TASK
    env = assignment.get("env") or {}
    os.environ.update({str(key): str(value) for key, value in env.items()})
    if assignment.get("cwd"):
        os.chdir(str(assignment["cwd"]))
    from kernel.task_executor import main as run_task

    try:
        return run_task([str(arg) for arg in assignment["argv"]])
    finally:
        _stop_spark()


if __name__ == "__main__":
    sys.exit(main())
