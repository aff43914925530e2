"""Task launch latency through the executor, cold spark-submit vs warm pool, plus the Table numbers.

Launch latency is the time from the RunTask call to the task's `started` event, which the
task sends once its runtime is up (Python, the kernel, the SparkSession) and the
component's own code begins. Both ways launch the same Distribution task with the SPARK
backend on a local master, through a real executor process:

- cold: an executor without a warm pool runs `spark-submit` for each task;
- warm: an executor with a warm pool of one hands each task to a pre-started worker that
  already imported the kernel and holds a SparkSession (the next worker warms up before
  the next task is sent, as it would between tasks in a job).

The two executors run side by side and the launches alternate (cold, warm, cold, ...), so
each round's ratio cold / warm is measured under the same machine load; `launch_ratio` is
the median of the rounds' ratios, printed with min and max. Each launch prints when done,
with the load average.

The Table figures (join + map + reduce, LOCAL vs SPARK local[2] vs pandas) come from
`benchmarks/table.py` in the same run.

    python benchmarks/executor.py [--launches 3] [--rows 1000000] [--cols 50] [--quick]
    python benchmarks/executor.py --smoke    # 2 launches each way, quick-start JVMs, no Table: only checks that it runs

The last line printed is JSON: warm_launch_s, cold_launch_s, launch_ratio (cold / warm),
table_local_s, table_spark_s, pandas_s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from measure import MIN_ROUNDS, load_average, load_text, report, span  # noqa: E402
from table import run_table_benchmark  # noqa: E402  (benchmarks/table.py)

from kernel.storage import DataStore  # noqa: E402
from protos.weft.v1 import common_pb2, executor_pb2, executor_pb2_grpc  # noqa: E402
from services.common import internal_auth  # noqa: E402
from tests.spark_cluster import QUICK_START_JVM  # noqa: E402

MEMBER = "0123456789abcdef0123456789abcdef"
MASTER = "local[2]"
WAIT_S = 600.0
# --smoke: two rounds still alternate cold, warm, cold, warm, and each driver JVM keeps to the
# first JIT tier (most of a short JVM's CPU goes to the second); its times are then no figures.
SMOKE_LAUNCHES = 2
SMOKE_CONF = {"spark.driver.extraJavaOptions": QUICK_START_JVM}


def make_member(root: Path) -> Path:
    storage = root / "member" / "storage"
    rng = np.random.default_rng(3)
    csv = root / "data.csv"
    rows = ["id,y,x0,x1"] + [f"u{i},{i % 2},{rng.normal():.5f},{rng.uniform():.5f}" for i in range(2000)]
    csv.write_text("\n".join(rows) + "\n")
    DataStore(str(storage / "data")).import_csv("bench", "rows", str(csv), id_column="id", label_column="y")
    return storage


def conf() -> dict[str, Any]:
    return {
        "initiator": {"member_id": MEMBER, "role": "promoter"},
        "job_parameters": {"db_type": "PARQUET", "backend": 1, "work_mode": 0},
        "role": {"promoter": [MEMBER]}, "local": {"member_id": MEMBER, "role": "promoter"},
        "job_args": {"data": {"train_data": {"namespace": "bench", "name": "rows"}}},
        "input": {"data": {"data": ["args.train_data"]}}, "output": {"data": ["train"]},
        "DistributionParam": {}, "module": "Distribution",
    }


class Executor:
    """An executor process on its own port, stopped (with its tasks) on exit."""

    def __init__(self, root: Path, warm_pool: int, extra_conf: dict[str, str]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        key_file = internal_auth.write_key(root / "internal.key")
        config = {
            "member_id": MEMBER, "data_dir": str(root / f"member-{self.port}"), "internal_key_file": str(key_file),
            "storage_root": str(root / "member" / "storage"),
            "executor": {"listen": f"127.0.0.1:{self.port}", "mode": "spark", "warm_pool": warm_pool,
                         "slots": 1, "heartbeat_timeout_s": 120,
                         "spark": {"master": MASTER, "driver_memory": "2g", "extra_conf": extra_conf}},
        }
        path = root / f"executor-{self.port}.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = open(root / f"executor-{self.port}.log", "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen([sys.executable, "-m", "services.executor", "--config", str(path)],
                                        cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONPATH": str(REPO)})
        key = internal_auth.read_key(key_file)
        self.channel = internal_auth.signed_channel(grpc.insecure_channel(f"127.0.0.1:{self.port}"),
                                                    lambda: internal_auth.sign(key, internal_auth.SCHEDULER))
        self.stub = executor_pb2_grpc.ExecutorServiceStub(self.channel)
        health = health_pb2_grpc.HealthStub(self.channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    break
            except grpc.RpcError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"executor on port {self.port} did not start") from None
            time.sleep(0.1)

    def wait_warm(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while self.stub.ListTasks(executor_pb2.ListTasksRequest()).warm_workers < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("no warm worker became ready")
            time.sleep(0.1)

    def launch(self) -> tuple[float, bool]:
        """Run one task; returns (seconds from RunTask to `started`, whether it ran warm)."""
        job = f"bench{uuid.uuid4().hex[:8]}"
        spec = executor_pb2.TaskSpec(
            job_id=job, task_id=f"{job}_distribution_0_promoter", component_name="distribution_0",
            module="Distribution", role="promoter", member_id=MEMBER, federation_session_id=job,
            runtime_conf_json=json.dumps(conf()), backend=common_pb2.BACKEND_SPARK, attempt=1)
        begin = time.perf_counter()
        latency, warm = -1.0, False
        for event in self.stub.RunTask(executor_pb2.RunTaskRequest(spec=spec), timeout=WAIT_S):
            kind = event.WhichOneof("event")
            if kind == "started" and latency < 0:
                latency, warm = time.perf_counter() - begin, event.started.warm
            elif kind == "finished" and event.finished.status != common_pb2.TASK_STATUS_SUCCESS:
                raise RuntimeError(f"benchmark task failed: {event.finished.error}")
        if latency < 0:
            raise RuntimeError("the task never reported started")
        return latency, warm

    def stop(self) -> None:
        self.channel.close()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.log.close()


def measure_launches(root: Path, launches: int, extra_conf: dict[str, str]) -> tuple[list[float], list[float]]:
    """Cold and warm launches alternating on two executors running side by side."""
    executors = {"cold": Executor(root, 0, extra_conf), "warm": Executor(root, 1, extra_conf)}
    latencies: dict[str, list[float]] = {"cold": [], "warm": []}
    try:
        for round_ in range(launches):
            for kind, executor in executors.items():
                # Before either launch: the warm executor's next worker must be up already, or
                # its start-up would take CPU from a cold launch and flatter the ratio.
                executors["warm"].wait_warm()
                latency, warm = executor.launch()
                if warm != (kind == "warm"):
                    raise RuntimeError(f"expected a {kind} launch")
                latencies[kind].append(latency)
                report(f"round {round_ + 1} {kind} launch", f"{latency:.3f} s; {load_text()}")
        return latencies["cold"], latencies["warm"]
    finally:
        for executor in executors.values():
            executor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=MIN_ROUNDS, help="tasks launched each way (>= 3)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="3 launches each way, 100k x 10 table")
    parser.add_argument("--skip-table", action="store_true",
                        help="launches only (benchmarks/table.py measures the Table on its own)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"{SMOKE_LAUNCHES} launches each way, quick-start JVMs, no Table: checks that the "
                             "benchmark runs (fewer rounds than a figure needs; the test suite's run)")
    ns = parser.parse_args()
    launches, rows, cols = (MIN_ROUNDS, 100_000, 10) if ns.quick else (ns.launches, ns.rows, ns.cols)
    if ns.smoke:
        launches, ns.skip_table = SMOKE_LAUNCHES, True
    elif launches < MIN_ROUNDS:
        parser.error(f"--launches must be at least {MIN_ROUNDS} (the ratio is a median of rounds)")
    with tempfile.TemporaryDirectory(prefix="weft-executor-bench-") as scratch:
        root = Path(scratch)
        make_member(root)
        print(f"launch latency, RunTask -> started, SPARK backend on {MASTER}:", flush=True)
        with span() as launching:
            cold, warm = measure_launches(root, launches, SMOKE_CONF if ns.smoke else {})
    ratios = [c / w for c, w in zip(cold, warm, strict=True)]
    report("launches", f"cold/warm {statistics.median(ratios):.1f}x (median of {launches} rounds, min "
           f"{min(ratios):.1f}, max {max(ratios):.1f}); all launches {launching.text()}")
    table: dict[str, Any] = {"table_local_s": None, "table_spark_s": None, "pandas_s": None}
    if not ns.skip_table:
        print(f"Table join + map + reduce on {rows} rows x {cols} columns:", flush=True)
        table = run_table_benchmark(rows, cols)
    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    result = {
        "warm_launch_s": round(warm_s, 4), "cold_launch_s": round(cold_s, 4),
        "launch_ratio": round(statistics.median(ratios), 1),
        "launch_ratio_min": round(min(ratios), 1), "launch_ratio_max": round(max(ratios), 1),
        "launch_cpu_s": round(launching.cpu_s, 2), "load": list(load_average()),
        "table_local_s": table["table_local_s"], "table_spark_s": table["table_spark_s"],
        "pandas_s": table["pandas_s"], "launches": launches, "rows": rows, "cols": cols,
    }
    print(f"  cold {cold_s:.2f} s, warm {warm_s:.3f} s: warm is {result['launch_ratio']}x faster")
    if not ns.skip_table:
        print(f"  LOCAL {result['table_local_s']} s, SPARK {result['table_spark_s']} s, pandas {result['pandas_s']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
