"""An executor lost mid-task on a Spark cluster fails the task with a message, never a silent stall.

A promoter's Distribution runs on a standalone cluster of one worker and waits for its
arbiter after its first Spark job. The worker (and with it the application's executor
process) is killed; then the arbiter answers, so the promoter's next Spark job has no
executor to run on. After the member's `executor_wait_s` the task must fail naming the
master, the wait, the member and the lost executor.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from protos.weft.v1 import common_pb2, executor_pb2
from tests.spark_cluster import QUICK_START_JVM, SparkCluster
from tests.test_executor_support import MEMBER, distribution_conf, run_task, task_spec
from tests.test_spark_cluster import TASK_TIMEOUT_S, cluster_executor

pytestmark = [pytest.mark.spark, pytest.mark.slow]

EXECUTOR_WAIT_S = 8


@pytest.mark.timeout(900)
def test_an_executor_lost_mid_task_fails_the_task_naming_master_wait_and_member(tmp_path: Path) -> None:
    # Prepare: a one-worker cluster; the promoter's application runs its first job there,
    # then waits for the arbiter.
    cluster = SparkCluster(tmp_path / "cluster", cores=1, memory="1g", java_options=QUICK_START_JVM).start()
    executor = cluster_executor(tmp_path / "executor", cluster.master, executor_wait_s=EXECUTOR_WAIT_S)
    job_id = "joblost01"
    promoter = task_spec(distribution_conf(with_arbiter=True, backend=1), job_id=job_id,
                         backend=common_pb2.BACKEND_SPARK)
    arbiter = task_spec(distribution_conf(role="arbiter", with_arbiter=True), job_id=job_id, role="arbiter",
                        backend=common_pb2.BACKEND_LOCAL)
    try:
        stream = run_task(executor, promoter)
        stream.wait_for("progress", TASK_TIMEOUT_S)  # the moments job ran on the worker's executor
        (app,) = cluster.state()["activeapps"]

        # Execute: the worker and its executor die; the arbiter lets the promoter go on.
        cluster.kill_worker()
        arbiter_stream = run_task(executor, arbiter)
        finished = stream.finish(TASK_TIMEOUT_S)
        executor.stub.StopTask(executor_pb2.StopTaskRequest(task_id=arbiter.task_id))
        arbiter_stream.finish()
    finally:
        executor.stop(signal.SIGKILL)
        executor.kill_leftover_tasks()
        cluster.stop()

    # Assert: failed, saying which member's application waited how long at which master, and why.
    assert finished.status == common_pb2.TASK_STATUS_FAILED
    for part in (cluster.master, app["id"], f"{EXECUTOR_WAIT_S} s", "executor_wait_s", f"member {MEMBER}",
                 "were lost"):
        assert part in finished.error, (part, finished.error)
