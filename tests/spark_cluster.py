"""A Spark standalone cluster on loopback for the tests: one master and one worker from the installed pyspark.

`SparkCluster.start()` runs `spark-class ...Master` and `spark-class ...Worker` on free
ports (each in its own process group, logs under the given directory) and returns once
the master's `/json` lists the worker ALIVE; `stop()` kills both groups and waits for them.

`QUICK_START_JVM` are JVM options for the tests' short-lived Spark JVMs (daemons, drivers,
executors): only the first JIT tier and the serial collector. A JVM that lives for seconds
spends most of its CPU compiling with the second tier and running parallel GC threads; on
two cores shared by several applications that CPU is what delays every start.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.test_executor_support import free_port

START_TIMEOUT_S = 180.0
POLL_S = 0.5
LOOPBACK = "127.0.0.1"
QUICK_START_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "bin" / "spark-class"


class SparkCluster:
    """A standalone master and one worker with `cores` cores and `memory` of memory.

    `java_options` go to both daemons' JVMs (SPARK_DAEMON_JAVA_OPTS), not to the
    applications' drivers and executors, which take theirs from the applications' conf.
    """

    def __init__(self, root: Path, cores: int = 3, memory: str = "3g", java_options: str = "") -> None:
        self.root = root
        self.cores = cores
        self.memory = memory
        self.java_options = java_options
        self.port = free_port()
        self.ui_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def master(self) -> str:
        return f"spark://{LOOPBACK}:{self.port}"

    @property
    def ui(self) -> str:
        return f"http://{LOOPBACK}:{self.ui_port}"

    def _spawn(self, name: str, args: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SPARK_LOCAL_IP": LOOPBACK, "SPARK_LOG_DIR": str(self.root),
               "SPARK_WORKER_DIR": str(self.root / "work"), "SPARK_NO_DAEMONIZE": "1"}
        if self.java_options:
            env["SPARK_DAEMON_JAVA_OPTS"] = self.java_options
        with open(self.root / f"{name}.log", "ab") as log:
            self.processes.append(subprocess.Popen(
                [str(spark_class()), *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env, cwd=self.root, start_new_session=True))

    def state(self) -> dict[str, Any]:
        """The master's /json: workers, activeapps, completedapps."""
        with urllib.request.urlopen(f"{self.ui}/json", timeout=10) as reply:
            answer: dict[str, Any] = json.loads(reply.read())
        return answer

    def apps(self) -> list[dict[str, Any]]:
        """Every application the master has seen, running or completed."""
        state = self.state()
        return [*state.get("activeapps", []), *state.get("completedapps", [])]

    def start(self) -> SparkCluster:
        self._spawn("master", ["org.apache.spark.deploy.master.Master", "--host", LOOPBACK,
                               "--port", str(self.port), "--webui-port", str(self.ui_port)])
        self._wait(lambda state: True, "the master's /json")
        self._spawn("worker", ["org.apache.spark.deploy.worker.Worker", self.master, "--host", LOOPBACK,
                               "--webui-port", str(free_port()), "--cores", str(self.cores),
                               "--memory", self.memory, "--work-dir", str(self.root / "work")])
        self._wait(lambda state: any(w.get("state") == "ALIVE" for w in state.get("workers", [])),
                   "an ALIVE worker at the master")
        return self

    def _wait(self, ready: Any, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited with {process.returncode}: {self.logs()}")
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                if ready(self.state()):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} after {START_TIMEOUT_S:.0f} s: {self.logs()}")
            time.sleep(POLL_S)  # the master offers no event to wait on; /json is polled

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.root.glob("*.log")))

    def wait_for(self, ready: Any, what: str) -> None:
        """Until `ready(state of the master's /json)` is true."""
        self._wait(ready, what)

    def kill_worker(self) -> None:
        """SIGKILL the worker's process group (its executors go with it)."""
        if len(self.processes) > 1:
            _kill(self.processes[1])

    def stop(self) -> None:
        for process in reversed(self.processes):
            _kill(process)
        self.processes.clear()


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
