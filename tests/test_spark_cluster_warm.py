"""Warm start on a Spark cluster: a task is handed to an application already running at the master."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protos.weft.v1 import common_pb2, executor_pb2
from tests.spark_cluster import QUICK_START_JVM, SparkCluster
from tests.test_executor_support import (
    MEMBER,
    ExecutorProcess,
    command_of,
    descendants,
    distribution_conf,
    make_data_set,
    run_task,
    task_spec,
)
from tests.test_spark_cluster import CLUSTER_EXECUTOR, TASK_TIMEOUT_S

pytestmark = [pytest.mark.spark, pytest.mark.slow]


APP_NAME = f"weft-warm-{MEMBER}"


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    cluster = SparkCluster(tmp_path_factory.mktemp("spark-cluster"), cores=2, memory="2g",
                           java_options=QUICK_START_JVM)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture()
def warm_executor(spark_cluster: SparkCluster, tmp_path: Path) -> Iterator[ExecutorProcess]:
    """An executor keeping one warm application at the cluster's master."""
    executor = ExecutorProcess(tmp_path / "executor", {
        "mode": "spark", "warm_pool": 1, "heartbeat_timeout_s": 120,
        "spark": {"master": spark_cluster.master, "warm_on_cluster": True, **CLUSTER_EXECUTOR}})
    make_data_set(executor.storage_root, tmp_path)
    try:
        yield executor.start()
    finally:
        executor.stop(signal.SIGKILL)
        executor.kill_leftover_tasks()


def warm_apps(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [app for app in state.get("activeapps", []) if app["name"] == APP_NAME]


def run_distribution(executor: ExecutorProcess) -> tuple[executor_pb2.TaskStarted, executor_pb2.TaskFinished, str]:
    stream = run_task(executor, task_spec(distribution_conf(backend=1), backend=common_pb2.BACKEND_SPARK))
    finished = stream.finish(TASK_TIMEOUT_S)
    return stream.of_kind("started")[0].started, finished, stream.of_kind("metric")[-1].metric.json


@pytest.mark.timeout(900)
def test_a_task_on_a_cluster_runs_in_the_members_warm_application(
        spark_cluster: SparkCluster, warm_executor: ExecutorProcess) -> None:
    # Prepare: the warm application is up at the master.
    warm_executor.wait_warm(1, timeout=TASK_TIMEOUT_S)
    (warm_app,) = warm_apps(spark_cluster.state())

    # Execute
    started, finished, summary = run_distribution(warm_executor)

    # Assert: the task ran in the application that was warm before it came (its executors
    # imported the kernel from the shipped archive), which ended with it.
    assert finished.status == common_pb2.TASK_STATUS_SUCCESS, finished.error
    assert started.warm and started.spark_app_id == warm_app["id"]
    assert '"count": 300' in summary
    ended = {app["id"]: app for app in spark_cluster.apps()}[warm_app["id"]]
    assert ended["state"] == "FINISHED" and ended["cores"] <= CLUSTER_EXECUTOR["cores_max"], ended


def warm_driver_jvms(master: str) -> set[int]:
    """The JVMs of the warm workers holding an application at `master`."""
    workers = {int(entry.name) for entry in Path("/proc").iterdir()
               if entry.name.isdigit() and "kernel.worker" in command_of(int(entry.name))
               and master in command_of(int(entry.name))}
    return {pid for worker in workers for pid in descendants(worker) if "java" in command_of(pid)}


@pytest.mark.timeout(900)
def test_a_warm_application_that_ends_while_it_waits_is_replaced_before_a_task_comes(
        spark_cluster: SparkCluster, warm_executor: ExecutorProcess) -> None:
    # Prepare: the warm application is up at the master.
    warm_executor.wait_warm(1, timeout=TASK_TIMEOUT_S)
    (ended,) = warm_apps(spark_cluster.state())
    jvms = warm_driver_jvms(spark_cluster.master)
    assert jvms

    # Execute: its driver's JVM dies while it waits; the pool must notice and start another.
    for pid in jvms:
        os.kill(pid, signal.SIGKILL)
    spark_cluster.wait_for(lambda state: any(app["id"] != ended["id"] for app in warm_apps(state)),
                           "a new warm application")
    warm_executor.wait_warm(1, timeout=TASK_TIMEOUT_S)
    started, finished, _ = run_distribution(warm_executor)

    # Assert: the task ran warm, in the new application, not in the one that ended.
    assert finished.status == common_pb2.TASK_STATUS_SUCCESS, finished.error
    assert started.warm and started.spark_app_id != ended["id"]
