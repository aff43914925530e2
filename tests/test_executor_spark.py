"""ExecutorService with Spark: a real spark-submit on local[1], and a warm worker holding a SparkSession."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from protos.weft.v1 import common_pb2, executor_pb2
from tests.test_executor_support import (
    ExecutorProcess,
    command_of,
    descendants,
    distribution_conf,
    make_data_set,
    run_task,
    task_spec,
    wait_gone,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow]
SPARK_TIMEOUT_S = 300.0
BACKEND_SPARK_CODE = 1  # the seed conf's numeric code for SPARK


def spark_executor(root: Path, warm_pool: int) -> ExecutorProcess:
    executor = ExecutorProcess(root, {
        "mode": "spark", "warm_pool": warm_pool, "heartbeat_timeout_s": 60,
        "spark": {"master": "local[1]", "driver_memory": "1g",
                  "extra_conf": {"spark.sql.shuffle.partitions": "2"}},
    })
    make_data_set(executor.storage_root, root)
    return executor


@pytest.fixture()
def cold_executor(tmp_path: Path) -> Iterator[ExecutorProcess]:
    executor = spark_executor(tmp_path, warm_pool=0).start()
    yield executor
    executor.stop(signal.SIGKILL)
    executor.kill_leftover_tasks()


@pytest.fixture()
def warm_executor(tmp_path: Path) -> Iterator[ExecutorProcess]:
    executor = spark_executor(tmp_path, warm_pool=1).start()
    yield executor
    executor.stop(signal.SIGKILL)
    executor.kill_leftover_tasks()


def test_spark_submit_runs_distribution_on_local_1(cold_executor: ExecutorProcess) -> None:
    # Prepare
    spec = task_spec(distribution_conf(backend=BACKEND_SPARK_CODE))

    # Execute
    stream = run_task(cold_executor, spec)
    finished = stream.finish(SPARK_TIMEOUT_S)

    # Assert: a Spark application ran it, the component's result arrived, Spark's log is kept.
    assert finished.status == common_pb2.TASK_STATUS_SUCCESS, finished.error
    started = stream.of_kind("started")[0].started
    assert started.spark_app_id.startswith("local-") and not started.warm
    summary = stream.of_kind("metric")[-1].metric.json
    assert '"count": 300' in summary
    info = cold_executor.stub.GetTask(executor_pb2.GetTaskRequest(task_id=spec.task_id))
    assert info.backend == common_pb2.BACKEND_SPARK and info.spark_app_id == started.spark_app_id
    assert "SparkContext" in Path(info.log_path).read_text(errors="replace")
    assert not wait_gone(descendants(started.pid), timeout=30)


def test_stop_of_a_task_in_a_warm_spark_worker_leaves_no_jvm(warm_executor: ExecutorProcess) -> None:
    # Prepare: a warm worker with its SparkSession takes a promoter that waits for an arbiter.
    warm_executor.wait_warm(1, timeout=SPARK_TIMEOUT_S)
    spec = task_spec(distribution_conf(with_arbiter=True, backend=BACKEND_SPARK_CODE))
    stream = run_task(warm_executor, spec)
    started = stream.wait_for("started", SPARK_TIMEOUT_S).started
    stream.wait_for("progress", SPARK_TIMEOUT_S)  # Spark jobs ran: the moments are computed
    processes = descendants(started.pid)
    jvms = {pid for pid in processes if "java" in command_of(pid)}
    assert started.warm and started.spark_app_id.startswith("local-") and jvms

    # Execute
    reply = warm_executor.stub.StopTask(executor_pb2.StopTaskRequest(task_id=spec.task_id))

    # Assert: stopped, and every process of the task (the JVM included) is gone.
    assert reply.status == common_pb2.TASK_STATUS_STOPPED
    assert stream.finish().status == common_pb2.TASK_STATUS_STOPPED
    assert not wait_gone(processes)
