"""Warm start on a Spark cluster: a task is handed to an application already running at the master."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from protos.weft.v1 import common_pb2
from tests.spark_cluster import SparkCluster
from tests.test_executor_support import (
    MEMBER,
    ExecutorProcess,
    distribution_conf,
    make_data_set,
    run_task,
    task_spec,
)
from tests.test_spark_cluster import CLUSTER_EXECUTOR, TASK_TIMEOUT_S

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.mark.timeout(900)
def test_a_task_on_a_cluster_runs_in_the_members_warm_application(tmp_path: Path) -> None:
    # Prepare: a cluster, and an executor keeping one warm application at its master.
    cluster = SparkCluster(tmp_path / "cluster", cores=2, memory="2g").start()
    executor = ExecutorProcess(tmp_path / "executor", {
        "mode": "spark", "warm_pool": 1, "heartbeat_timeout_s": 120,
        "spark": {"master": cluster.master, "warm_on_cluster": True, **CLUSTER_EXECUTOR}})
    make_data_set(executor.storage_root, tmp_path)
    try:
        executor.start()
        executor.wait_warm(1, timeout=TASK_TIMEOUT_S)
        (warm_app,) = cluster.state()["activeapps"]

        # Execute
        stream = run_task(executor, task_spec(distribution_conf(backend=1), backend=common_pb2.BACKEND_SPARK))
        finished = stream.finish(TASK_TIMEOUT_S)
        apps = {app["id"]: app for app in cluster.apps()}
    finally:
        executor.stop(signal.SIGKILL)
        executor.kill_leftover_tasks()
        cluster.stop()

    # Assert: the task ran in the application that was warm before it came (its executors
    # imported the kernel from the shipped archive), which ended with it.
    assert finished.status == common_pb2.TASK_STATUS_SUCCESS, finished.error
    started = stream.of_kind("started")[0].started
    assert started.warm and started.spark_app_id == warm_app["id"]
    assert warm_app["name"] == f"weft-warm-{MEMBER}"
    assert '"count": 300' in stream.of_kind("metric")[-1].metric.json
    ended = apps[warm_app["id"]]
    assert ended["state"] == "FINISHED" and ended["cores"] <= CLUSTER_EXECUTOR["cores_max"], ended
