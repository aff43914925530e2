"""Spark at cluster scale: PSI and a VertLR epoch on a standalone cluster, task start warm and cold.

A Spark standalone master and one worker (`--cluster-cores` cores, 2 by default) run on
loopback from the installed pyspark. Every figure comes from real tasks launched by a
real executor process (`python -m services.executor`, `mode: spark`), each task its own
Spark application at that master with `spark.driver.memory` = `--driver-memory` (1g):

- task start: seconds from RunTask to the task's `started` event (its runtime is up and
  the component's code begins), for a Distribution task: cold (spark-submit per task)
  and warm (an executor with `warm_on_cluster` hands it to an application already
  running at the master), alternating, `--launches` rounds, median of each;
- psi: Intersection of `--psi-rows` ids at each party (half shared), promoter and
  provider tasks at once, each on the cluster, end to end;
- vert_lr: VertLR (promoter `--promoter-features`, provider `--provider-features`,
  1024-bit Paillier) over `--vert-lr-rows` aligned rows, `--epochs` epochs; the figure is
  the component's own seconds per epoch.

While the PSI and VertLR tasks run, the resident memory of each task's driver (the
spark-submit JVM and its Python driver: the task's process group) is sampled; the peak
is printed beside the size of the task's input on disk. The same PSI and VertLR tasks then
run with the LOCAL backend at `--local-psi-rows` / `--local-vert-lr-rows` (a failure there,
out of memory for instance, is printed and the figure left null).

    python benchmarks/spark_scale.py                        # 10M x 10M PSI, 1M rows x (30 + 50) VertLR
    python benchmarks/spark_scale.py --quick                # small sizes, one launch each
    python benchmarks/spark_scale.py --smoke                # tiny sizes, quick-start JVMs: only checks that it runs
    python benchmarks/spark_scale.py --psi-rows 2000000 --vert-lr-rows 100000

The last line printed is JSON: psi_rows, psi_s, vert_lr_rows, vert_lr_s_per_epoch,
driver_memory, driver_peak_rss_mb, task_start_warm_s, task_start_cold_s, the LOCAL figures
(local_psi_rows, local_psi_s, local_vert_lr_rows, local_vert_lr_s_per_epoch), the input
sizes on disk (psi_input_mb, vert_lr_input_mb) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from measure import load_average, load_text, report  # noqa: E402

from kernel.storage import DataStore  # noqa: E402
from protos.weft.v1 import common_pb2, executor_pb2, executor_pb2_grpc  # noqa: E402
from services.common import internal_auth  # noqa: E402
from tests.spark_cluster import QUICK_START_JVM, SparkCluster  # noqa: E402

MEMBER = "5ca1e0000000000000000000000000aa"
NAMESPACE = "bench"
WAIT_S = 24 * 3600.0
SAMPLE_S = 0.25
KEY_BITS = 1024
SEED = 7
# --smoke: the test suite's run. Its JVMs (daemons, drivers, executors) keep to the first JIT
# tier and its shuffles to two partitions, which spares much of the CPU that its seven
# short-lived Spark applications spend on a busy machine; the times it prints are no figures.
SMOKE_CONF = {"spark.driver.extraJavaOptions": QUICK_START_JVM, "spark.executor.extraJavaOptions": QUICK_START_JVM,
              "spark.sql.shuffle.partitions": "2"}
_PAGE = os.sysconf("SC_PAGE_SIZE")
BACKEND_NAMES = {common_pb2.BACKEND_SPARK: "SPARK", common_pb2.BACKEND_LOCAL: "LOCAL"}


class Executor:
    """An executor process of MEMBER sending SPARK tasks to `master`; stopped with its tasks."""

    def __init__(self, root: Path, storage: Path, master: str, driver_memory: str, warm: bool,
                 extra_conf: dict[str, str] | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        key_file = internal_auth.write_key(root / "internal.key")
        spark = {"master": master, "driver_memory": driver_memory, "executor_memory": "1g",
                 "executor_cores": 1, "cores_max": 1, "executor_wait_s": 600, "warm_on_cluster": warm,
                 "extra_conf": {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                                **(extra_conf or {})}}
        config = {"member_id": MEMBER, "data_dir": str(root / "member"), "internal_key_file": str(key_file),
                  "storage_root": str(storage),
                  "executor": {"listen": f"127.0.0.1:{self.port}", "mode": "spark", "slots": 2,
                               "warm_pool": 1 if warm else 0, "heartbeat_timeout_s": 300, "spark": spark}}
        path = root / "member.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = open(root / "executor.log", "ab")  # noqa: SIM115 (closed in stop)
        env = {**os.environ, "PYTHONPATH": str(REPO), "WEFT_GET_TIMEOUT_S": str(int(WAIT_S))}
        self.process = subprocess.Popen([sys.executable, "-m", "services.executor", "--config", str(path)],
                                        cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        key = internal_auth.read_key(key_file)
        self.channel = internal_auth.signed_channel(grpc.insecure_channel(f"127.0.0.1:{self.port}"),
                                                    lambda: internal_auth.sign(key, internal_auth.SCHEDULER))
        self.stub = executor_pb2_grpc.ExecutorServiceStub(self.channel)
        self._wait(lambda: health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING,
            "the executor serving")

    def _wait(self, ready: Any, what: str, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if ready():
                    return
            except grpc.RpcError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"no {what}: see {self.root / 'executor.log'}")
            time.sleep(0.2)  # the executor has no event for this; it is polled

    def wait_warm(self) -> None:
        self._wait(lambda: self.stub.ListTasks(executor_pb2.ListTasksRequest()).warm_workers >= 1,
                   "warm application ready")

    def stop(self) -> None:
        self.channel.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        for record in (self.root / "member").glob("executor/tasks/*/a*/record.json"):
            pid = int(json.loads(record.read_text()).get("pid") or 0)
            if pid > 0:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DriverMemory:
    """Samples the resident memory of each running task's process group (its driver)."""

    def __init__(self) -> None:
        self.groups: set[int] = set()
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DriverMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            by_group: dict[int, int] = {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    stat = (entry / "stat").read_text()
                    pages = int((entry / "statm").read_text().split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                group = int(stat[stat.rindex(")") + 2:].split()[2])
                if group in self.groups:
                    by_group[group] = by_group.get(group, 0) + pages
            for pages in by_group.values():
                self.peak_mb = max(self.peak_mb, pages * _PAGE / 2**20)


def task_conf(module: str, role: str, data: dict[str, str], backend: int, params: dict[str, Any],
              inputs: dict[str, Any], outputs: dict[str, list[str]]) -> dict[str, Any]:
    roles = {"promoter": [MEMBER], "provider": [MEMBER]} if module != "Distribution" else {"promoter": [MEMBER]}
    return {
        "initiator": {"member_id": MEMBER, "role": "promoter"},
        "job_parameters": {"db_type": "PARQUET", "backend": BACKEND_NAMES[backend], "work_mode": 0},
        "role": roles, "local": {"member_id": MEMBER, "role": role},
        "job_args": {"data": {arg: {"namespace": NAMESPACE, "name": name} for arg, name in data.items()}},
        "input": inputs, "output": outputs, f"{module}Param": params, "module": module,
    }


def run_tasks(executor: Executor, job: str, component: str, confs: dict[str, dict[str, Any]], backend: int,
              memory: DriverMemory | None = None) -> dict[str, float]:
    """Run one task per role at once; each role's seconds from RunTask to `started`."""
    started: dict[str, float] = {}
    errors: list[str] = []

    def one(role: str, conf: dict[str, Any]) -> None:
        spec = executor_pb2.TaskSpec(
            job_id=job, task_id=f"{job}_{component}_{role}", component_name=component, module=conf["module"],
            role=role, member_id=MEMBER, federation_session_id=f"{job}-{component}",
            runtime_conf_json=json.dumps(conf), backend=backend, attempt=1)
        begin = time.perf_counter()
        for event in executor.stub.RunTask(executor_pb2.RunTaskRequest(spec=spec), timeout=WAIT_S):
            kind = event.WhichOneof("event")
            if kind == "started" and role not in started:
                started[role] = time.perf_counter() - begin
                if memory is not None:
                    memory.groups.add(event.started.pid)
            elif kind == "finished" and event.finished.status != common_pb2.TASK_STATUS_SUCCESS:
                errors.append(f"{role}: {event.finished.error}")

    threads = [threading.Thread(target=one, args=item) for item in confs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    return started


def metrics(storage: Path, job: str, component: str, role: str) -> dict[str, Any]:
    path = storage / "tasks" / job / component / role / MEMBER / "metrics.jsonl"
    return {m["name"]: m["points"] for m in map(json.loads, path.read_text().splitlines())}


def size_mb(storage: Path, name: str) -> float:
    """The data set's size on disk (its Parquet files)."""
    return sum(f.stat().st_size for f in (storage / "data" / NAMESPACE / name).rglob("*") if f.is_file()) / 2**20


def write(store: DataStore, name: str, table: pa.Table, label: str | None) -> None:
    store.write_table(NAMESPACE, name, table, "id", label)


def psi_data(store: DataStore, rows: int) -> str:
    """Each party's ids (half of them shared); returns the data sets' name stem."""
    stem = f"ids{rows}"
    shared = rows // 2
    write(store, f"{stem}_promoter", pa.table({"id": pa.array([f"user-{i}" for i in range(rows)]),
                                               "y": np.zeros(rows, dtype=np.int64)}), "y")
    write(store, f"{stem}_provider", pa.table({"id": pa.array([f"user-{i}" for i in range(rows - shared,
                                                                                          2 * rows - shared)]),
                                               "v": np.zeros(rows)}), None)
    return stem


def lr_data(store: DataStore, rows: int, promoter_features: int, provider_features: int) -> str:
    stem = f"lr{rows}"
    rng = np.random.default_rng(SEED)
    weights = rng.normal(size=promoter_features + provider_features)
    ids = pa.array([f"r{i:09d}" for i in range(rows)])
    promoter: dict[str, Any] = {"id": ids}
    provider: dict[str, Any] = {"id": ids}
    logits = np.zeros(rows)
    for index in range(promoter_features + provider_features):
        column = rng.normal(size=rows)
        logits += weights[index] * column
        if index < promoter_features:
            promoter[f"a{index}"] = column
        else:
            provider[f"b{index - promoter_features}"] = column
    promoter["y"] = (logits + rng.logistic(size=rows) > 0).astype(np.int64)
    write(store, f"{stem}_promoter", pa.table(promoter), "y")
    write(store, f"{stem}_provider", pa.table(provider), None)
    return stem


def psi(executor: Executor, storage: Path, stem: str, rows: int, backend: int,
        memory: DriverMemory | None = None) -> float:
    job = f"psi{uuid.uuid4().hex[:8]}"
    confs = {role: task_conf("Intersection", role, {"ids": f"{stem}_{role}"}, backend, {},
                             {"data": {"data": ["args.ids"]}}, {"data": ["out"]})
             for role in ("promoter", "provider")}
    begin = time.perf_counter()
    run_tasks(executor, job, "intersection_0", confs, backend, memory)
    seconds = time.perf_counter() - begin
    found = metrics(storage, job, "intersection_0", "promoter")["intersection"]["intersect_count"]
    if found != rows // 2:
        raise RuntimeError(f"psi: found {found} shared ids, expected {rows // 2}")
    return seconds


def vert_lr(executor: Executor, storage: Path, stem: str, args: argparse.Namespace, backend: int,
            memory: DriverMemory | None = None) -> float:
    job = f"lr{uuid.uuid4().hex[:8]}"
    params = {"key_bits": KEY_BITS, "max_iter": args.epochs, "early_stop": "none", "optimizer": "adam",
              "learning_rate": 0.1, "penalty": "L2", "alpha": 0.01, "batch_size": args.batch_size,
              "random_seed": SEED}
    confs = {role: task_conf("VertLR", role, {"train": f"{stem}_{role}"}, backend, params,
                             {"data": {"train_data": ["args.train"]}}, {"data": ["train"], "model": ["model"]})
             for role in ("promoter", "provider")}
    run_tasks(executor, job, "vert_lr_0", confs, backend, memory)
    return float(metrics(storage, job, "vert_lr_0", "promoter")["iterations"]["seconds_per_epoch"])


def task_start(cold: Executor, warm: Executor, launches: int) -> tuple[float, float]:
    """Median seconds to `started` of a Distribution task, cold and warm, launches alternating."""
    conf = task_conf("Distribution", "promoter", {"data": "start"}, common_pb2.BACKEND_SPARK, {},
                     {"data": {"data": ["args.data"]}}, {"data": ["train"]})
    cold_s, warm_s = [], []
    for index in range(launches):
        cold_s.append(run_tasks(cold, f"cold{index}{uuid.uuid4().hex[:6]}", "distribution_0",
                                {"promoter": conf}, common_pb2.BACKEND_SPARK)["promoter"])
        warm.wait_warm()  # as between two tasks of a job: the next warm application is up
        warm_s.append(run_tasks(warm, f"warm{index}{uuid.uuid4().hex[:6]}", "distribution_0",
                                {"promoter": conf}, common_pb2.BACKEND_SPARK)["promoter"])
        report("task_start", f"round {index + 1}: cold {cold_s[-1]:.2f} s, warm {warm_s[-1]:.2f} s, {load_text()}")
    return statistics.median(cold_s), statistics.median(warm_s)


def local_figure(what: str, measure: Any) -> float | None:
    try:
        return float(measure())
    except Exception as exc:  # noqa: BLE001 (a size the LOCAL backend cannot take is a result too)
        report(what, f"LOCAL failed: {str(exc)[:300]}")
        return None


def _give_up(signum: int, frame: object) -> None:
    """--timeout passed: unwind, so the cluster and the executors are stopped on the way out."""
    raise TimeoutError("spark_scale: --timeout passed")


def _stopped(signum: int, frame: object) -> None:
    """SIGTERM or Ctrl-C: unwind the same way, so no cluster, executor or task is left running."""
    raise KeyboardInterrupt(f"spark_scale: stopped by signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--psi-rows", type=int, default=10_000_000, help="ids at each party")
    parser.add_argument("--vert-lr-rows", type=int, default=1_000_000)
    parser.add_argument("--promoter-features", type=int, default=30)
    parser.add_argument("--provider-features", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--local-psi-rows", type=int, default=None, help="default: --psi-rows")
    parser.add_argument("--local-vert-lr-rows", type=int, default=None, help="default: --vert-lr-rows")
    parser.add_argument("--launches", type=int, default=3, help="task-start rounds (cold and warm; 0: none)")
    parser.add_argument("--driver-memory", default="1g")
    parser.add_argument("--cluster-cores", type=int, default=2)
    parser.add_argument("--cluster-memory", default="4g")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="give up after this many seconds, stopping the cluster and executors (0: never)")
    parser.add_argument("--quick", action="store_true", help="small sizes (20k PSI, 2k x (3+4) VertLR), one launch")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (2k PSI, 400 x (2+2) VertLR), one launch, quick-start JVMs: checks that it "
                             "runs (the test suite's run; its times are no figures)")
    args = parser.parse_args()
    if args.quick:
        args.psi_rows, args.vert_lr_rows, args.launches = 20_000, 2_000, 1
        args.promoter_features, args.provider_features = 3, 4
    if args.smoke:
        args.psi_rows, args.vert_lr_rows, args.launches = 2_000, 400, 1
        args.promoter_features, args.provider_features = 2, 2
    extra_conf = SMOKE_CONF if args.smoke else {}
    signal.signal(signal.SIGTERM, _stopped)
    if args.timeout > 0:
        signal.signal(signal.SIGALRM, _give_up)
        signal.setitimer(signal.ITIMER_REAL, args.timeout)
    local_psi_rows = args.local_psi_rows if args.local_psi_rows is not None else args.psi_rows
    local_lr_rows = args.local_vert_lr_rows if args.local_vert_lr_rows is not None else args.vert_lr_rows

    with tempfile.TemporaryDirectory(prefix="weft-spark-scale-") as temp:
        root = Path(temp)
        storage = root / "storage"
        store = DataStore(str(storage / "data"))
        write(store, "start", pa.table({"id": pa.array([f"s{i}" for i in range(1000)]),
                                        "x": np.arange(1000.0), "y": np.zeros(1000, dtype=np.int64)}), "y")
        cluster = SparkCluster(root / "cluster", cores=args.cluster_cores, memory=args.cluster_memory,
                               java_options=QUICK_START_JVM if args.smoke else "").start()
        report("cluster", f"{cluster.master}: 1 worker, {args.cluster_cores} cores, {args.cluster_memory}; "
                          f"driver memory {args.driver_memory}; {load_text()}")
        executors: list[Executor] = []
        try:
            cold = Executor(root / "cold", storage, cluster.master, args.driver_memory, warm=False,
                            extra_conf=extra_conf)
            executors.append(cold)
            cold_start = warm_start = None
            if args.launches > 0:
                warm = Executor(root / "warm", storage, cluster.master, args.driver_memory, warm=True,
                                extra_conf=extra_conf)
                executors.append(warm)
                cold_start, warm_start = task_start(cold, warm, args.launches)
                warm.stop()  # its idle application holds a core the jobs below need
                executors.remove(warm)
                report("task_start", f"median cold {cold_start:.2f} s, warm {warm_start:.2f} s")

            psi_stem = psi_data(store, args.psi_rows)
            psi_mb = size_mb(storage, f"{psi_stem}_promoter") + size_mb(storage, f"{psi_stem}_provider")
            with DriverMemory() as psi_memory:
                psi_s = psi(cold, storage, psi_stem, args.psi_rows, common_pb2.BACKEND_SPARK, psi_memory)
            report("psi", f"{args.psi_rows:,} x {args.psi_rows:,} ids on the cluster: {psi_s:.1f} s; driver peak "
                          f"RSS {psi_memory.peak_mb:.0f} MiB, input {psi_mb:.1f} MiB on disk; {load_text()}")

            lr_stem = lr_data(store, args.vert_lr_rows, args.promoter_features, args.provider_features)
            lr_mb = size_mb(storage, f"{lr_stem}_promoter") + size_mb(storage, f"{lr_stem}_provider")
            with DriverMemory() as lr_memory:
                lr_s = vert_lr(cold, storage, lr_stem, args, common_pb2.BACKEND_SPARK, lr_memory)
            report("vert_lr", f"{args.vert_lr_rows:,} rows x ({args.promoter_features} + {args.provider_features}) "
                              f"on the cluster: {lr_s:.1f} s per epoch; driver peak RSS {lr_memory.peak_mb:.0f} MiB, "
                              f"input {lr_mb:.1f} MiB on disk; {load_text()}")

            local_stem = psi_stem if local_psi_rows == args.psi_rows else psi_data(store, local_psi_rows)
            local_psi_s = local_figure("psi", lambda: psi(cold, storage, local_stem, local_psi_rows,
                                                          common_pb2.BACKEND_LOCAL))
            report("psi", f"LOCAL {local_psi_rows:,} x {local_psi_rows:,}: "
                          f"{'failed' if local_psi_s is None else f'{local_psi_s:.1f} s'}; {load_text()}")
            local_lr_stem = (lr_stem if local_lr_rows == args.vert_lr_rows else
                             lr_data(store, local_lr_rows, args.promoter_features, args.provider_features))
            local_lr_s = local_figure("vert_lr", lambda: vert_lr(cold, storage, local_lr_stem, args,
                                                                 common_pb2.BACKEND_LOCAL))
            report("vert_lr", f"LOCAL {local_lr_rows:,} rows: "
                              f"{'failed' if local_lr_s is None else f'{local_lr_s:.1f} s per epoch'}; {load_text()}")
        finally:
            for executor in executors:
                executor.stop()
            cluster.stop()

    print(json.dumps({
        "psi_rows": args.psi_rows, "psi_s": round(psi_s, 2),
        "vert_lr_rows": args.vert_lr_rows, "vert_lr_s_per_epoch": round(lr_s, 3),
        "driver_memory": args.driver_memory,
        "driver_peak_rss_mb": round(max(psi_memory.peak_mb, lr_memory.peak_mb), 1),
        "task_start_warm_s": None if warm_start is None else round(warm_start, 3),
        "task_start_cold_s": None if cold_start is None else round(cold_start, 3),
        "local_psi_rows": local_psi_rows, "local_psi_s": None if local_psi_s is None else round(local_psi_s, 2),
        "local_vert_lr_rows": local_lr_rows,
        "local_vert_lr_s_per_epoch": None if local_lr_s is None else round(local_lr_s, 3),
        "psi_input_mb": round(psi_mb, 2), "vert_lr_input_mb": round(lr_mb, 2),
        "load": list(load_average()),
    }), flush=True)


if __name__ == "__main__":
    main()
