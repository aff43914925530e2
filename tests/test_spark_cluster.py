"""Federated jobs on a real Spark standalone cluster (a master and a worker on loopback).

Three members' executors send every SPARK task to the same master with the member caps
(`cores_max: 1`), so the members' applications run side by side. A vertical job (DataIO ->
Intersection -> VertLR -> Evaluation) and a horizontal one (HorzLR with an arbiter, then
Evaluation) run at once through the schedulers; the master's /json must list one finished
application per task, each holding at most the capped cores, and each job's AUC must equal
the same job's on the LOCAL backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from kernel.storage import DataStore
from protos.weft.v1 import common_pb2, executor_pb2, scheduler_pb2
from tests.spark_cluster import QUICK_START_JVM, SparkCluster
from tests.test_executor_support import (
    MEMBER,
    ExecutorProcess,
    distribution_conf,
    free_port,
    make_data_set,
    run_task,
    task_spec,
)
from tests.test_horz_kit import breast_rows
from tests.test_horz_scheduler import metrics_of, store_rows
from tests.test_scheduler_support import (
    ARBITER,
    PROMOTER,
    PROVIDER,
    Member,
    start_members,
    stop_members,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parent.parent / "services" / "client" / "examples"
SUCCESS = common_pb2.JOB_STATUS_SUCCESS
JOB_TIMEOUT_S = 3000.0
TASK_TIMEOUT_S = 600.0
# Each application: one executor of one core and 512 MiB, so a 5-core worker seats the five
# applications (2 vertical + 3 horizontal) that run at once. Their drivers and executors live
# for seconds: QUICK_START_JVM spares the CPU that five JVM starts at once would spend on the
# second JIT tier (the results do not depend on how the JVM compiles).
CLUSTER_EXECUTOR: dict[str, Any] = {
    "cores_max": 1, "executor_cores": 1, "executor_memory": "512m", "driver_memory": "1g",
    "extra_conf": {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                   "spark.sql.shuffle.partitions": "2", "spark.driver.extraJavaOptions": QUICK_START_JVM,
                   "spark.executor.extraJavaOptions": QUICK_START_JVM},
}


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    cluster = SparkCluster(tmp_path_factory.mktemp("spark-cluster"), cores=5, memory="4g",
                           java_options=QUICK_START_JVM)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def vertical_job(backend: str) -> dict[str, Any]:
    data = {PROMOTER: "breast_promoter_train", PROVIDER: "breast_provider_train"}
    return {
        "name": f"vertical-{backend.lower()}",
        "initiator": {"member_id": PROMOTER, "role": "promoter"},
        "role": {"promoter": [PROMOTER], "provider": [PROVIDER]},
        "job_parameters": {"backend": backend, "work_mode": "STANDALONE",
                           **({"spark": {"conf": {"spark.sql.shuffle.partitions": "2"}}}
                              if backend == "SPARK" else {})},
        "job_args": {m: {"data": {"train_data": {"namespace": "demo", "name": name}}} for m, name in data.items()},
        "components": {
            "dataio_0": {"module": "DataIO", "input": {"data": {"data": ["args.train_data"]}},
                         "output": {"data": ["train"], "model": ["model"]},
                         "params": {"with_label": True, "label_name": "y"},
                         "role_params": {"provider": {"with_label": False}}},
            "intersection_0": {"module": "Intersection", "input": {"data": {"data": ["dataio_0.train"]}},
                               "output": {"data": ["train"]}},
            "vert_lr_0": {"module": "VertLR", "input": {"data": {"train_data": ["intersection_0.train"]}},
                          "output": {"data": ["train"], "model": ["model"]}, "params": {"max_iter": 5}},
            "evaluation_0": {"module": "Evaluation", "input": {"data": {"data": ["vert_lr_0.train"]}}},
        },
    }


def horizontal_job(backend: str) -> dict[str, Any]:
    args = {m: {"data": {"train": {"namespace": "test", "name": "train"}, "test": {"namespace": "test", "name": "test"}}}
            for m in (PROMOTER, PROVIDER)}
    return {
        "name": f"horizontal-{backend.lower()}",
        "initiator": {"member_id": PROMOTER, "role": "promoter"},
        "role": {"promoter": [PROMOTER], "provider": [PROVIDER], "arbiter": [ARBITER]},
        "job_parameters": {"backend": backend, "work_mode": "STANDALONE"},
        "job_args": args,
        "components": {
            "horz_lr_0": {"module": "HorzLR", "input": {"data": {"train_data": ["args.train"],
                                                                  "validate_data": ["args.test"]}},
                          "output": {"data": ["train"], "model": ["model"]},
                          "params": {"max_iter": 5, "alpha": 0.01}},
            "evaluation_0": {"module": "Evaluation", "roles": ["promoter"],
                             "input": {"data": {"data": ["horz_lr_0.train"]}}},
        },
    }


def load_data(members: dict[str, Member]) -> None:
    for member_id, name, label in ((PROMOTER, "breast_promoter_train", "y"), (PROVIDER, "breast_provider_train", None)):
        DataStore(str(members[member_id].root / "storage" / "data")).import_csv(
            "demo", name, str(EXAMPLES / f"{name}.csv"), id_column="id", label_column=label)
    rows = breast_rows([1, 1])
    for member_id, train, test in zip((PROMOTER, PROVIDER), rows.members, rows.test, strict=True):
        store_rows(members[member_id], "train", train)
        store_rows(members[member_id], "test", test)


def aucs(metrics: dict[str, Any]) -> dict[str, float]:
    """Every AUC in an Evaluation's metrics, by the evaluated data's name."""
    return {name: float(value["auc"]) for name, value in metrics.items() if isinstance(value, dict) and "auc" in value}


async def run_jobs(members: dict[str, Member], backend: str) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Submit the vertical and the horizontal job at once; wait for both; their promoter's AUCs."""
    client = members[PROMOTER].client
    job_ids = [await client.submit(vertical_job(backend)), await client.submit(horizontal_job(backend))]
    finals = await asyncio.gather(*(client.wait_status(job_id, {SUCCESS}, timeout=JOB_TIMEOUT_S)
                                    for job_id in job_ids))
    for final in finals:
        assert final.status == SUCCESS, final.message
    found = {}
    for kind, job_id in zip(("vertical", "horizontal"), job_ids, strict=True):
        found[kind] = aucs(await metrics_of(members[PROMOTER], job_id, "evaluation_0", "promoter"))
        assert found[kind], f"no AUC in the {kind} job's evaluation"
    return job_ids, found


async def task_ids(members: dict[str, Member], job_id: str) -> set[str]:
    """The ids of the job's tasks that an executor ran, at every member taking part."""
    found: set[str] = set()
    for member in members.values():
        try:
            reply = await member.client.stub.GetJob(scheduler_pb2.GetJobRequest(job_id=job_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                continue  # not a party of this job
            raise
        found |= {task.key.task_id for task in reply.job.tasks if task.executor}
    return found


@pytest.mark.timeout(4000)
async def test_vertical_and_horizontal_jobs_on_a_standalone_cluster_match_local(
        spark_cluster: SparkCluster, tmp_path: Path) -> None:
    # Prepare: three members whose executors launch every SPARK task on the cluster's master.
    urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in (PROMOTER, PROVIDER, ARBITER)}
    executor = {"mode": "spark", "heartbeat_timeout_s": 120,
                "spark": {"master": spark_cluster.master, **CLUSTER_EXECUTOR}}
    # A task's Spark application may take minutes to start on a loaded machine: peers wait for it.
    members = await start_members(tmp_path, urls, executor=executor,
                                  environment={"WEFT_GET_TIMEOUT_S": str(int(JOB_TIMEOUT_S))})
    try:
        load_data(members)

        # Execute: both jobs on the cluster and, at the same time, both on LOCAL.
        (spark_jobs, on_spark), (_, on_local) = await asyncio.gather(
            run_jobs(members, "SPARK"), run_jobs(members, "LOCAL"))
        tasks = set().union(*[await task_ids(members, job_id) for job_id in spark_jobs])
    finally:
        await stop_members(members)
        kill_processes_under(tmp_path)

    # Assert: the same AUCs as LOCAL; every task of the SPARK jobs was an application of the
    # cluster's master, finished, holding at most the member's cap of cores.
    assert on_spark.keys() == on_local.keys()
    for kind, found in on_spark.items():
        assert found == pytest.approx(on_local[kind], rel=1e-9, abs=1e-12), kind
    apps = spark_cluster.apps()
    by_name = {app["name"]: app for app in apps}
    assert len(tasks) >= 10  # 6+ vertical (each member), 4+ horizontal
    missing = {task for task in tasks if f"weft-{task}" not in by_name}
    assert not missing, f"tasks with no application at the master: {sorted(missing)}; apps: {sorted(by_name)}"
    for task in tasks:
        app = by_name[f"weft-{task}"]
        assert app["state"] == "FINISHED" and app["cores"] <= CLUSTER_EXECUTOR["cores_max"], app


def kill_processes_under(root: Path) -> None:
    """Kill the process group of every process whose command line names `root` (tasks left by a failure)."""
    groups = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if str(root).encode() in (entry / "cmdline").read_bytes():
                    groups.add(os.getpgid(int(entry.name)))
    for group in groups - {os.getpgrp()}:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)


def cluster_executor(root: Path, master: str, **spark: Any) -> ExecutorProcess:
    executor = ExecutorProcess(root, {"mode": "spark", "warm_pool": 0, "heartbeat_timeout_s": 120,
                                      "spark": {"master": master, **CLUSTER_EXECUTOR, **spark}})
    make_data_set(executor.storage_root, root)
    return executor.start()


def run_distribution(executor: ExecutorProcess) -> executor_pb2.TaskFinished:
    spec = task_spec(distribution_conf(backend=1), backend=common_pb2.BACKEND_SPARK)
    return run_task(executor, spec).finish(TASK_TIMEOUT_S)


def test_a_master_that_cannot_be_reached_fails_the_task_naming_it(tmp_path: Path) -> None:
    # Prepare: a master address nothing listens on.
    master = f"spark://127.0.0.1:{free_port()}"
    executor = cluster_executor(tmp_path, master)
    try:
        # Execute
        finished = run_distribution(executor)
    finally:
        executor.stop(signal.SIGKILL)
        executor.kill_leftover_tasks()

    # Assert
    assert finished.status == common_pb2.TASK_STATUS_FAILED
    assert master in finished.error and MEMBER in finished.error and "cannot be reached" in finished.error


def test_an_application_the_cluster_cannot_seat_fails_after_the_wait(
        spark_cluster: SparkCluster, tmp_path: Path) -> None:
    # Prepare: executors bigger than the worker's memory: the master can never start one.
    executor = cluster_executor(tmp_path, spark_cluster.master, executor_memory="16g", executor_wait_s=5)
    try:
        # Execute
        finished = run_distribution(executor)
    finally:
        executor.stop(signal.SIGKILL)
        executor.kill_leftover_tasks()

    # Assert: failed with the master, the wait and the member named; the master saw the app end.
    assert finished.status == common_pb2.TASK_STATUS_FAILED
    for part in (spark_cluster.master, "waited 5 s", "executor_wait_s", MEMBER, "no executor"):
        assert part in finished.error, (part, finished.error)
