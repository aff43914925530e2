"""The Spark settings a job may choose: the allowlist, the order of the layers, the member's caps.

The attack of a job naming a program through a Spark property is replayed against a real
executor: RunTask answers INVALID_ARGUMENT naming the key and no process starts.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kernel.errors import InvalidArgument
from protos.weft.v1 import common_pb2, executor_pb2, scheduler_pb2
from services.common.config import SparkConfig
from services.common.spark_conf import check_conf, job_spark_options
from services.executor.launchers import SparkSettings, spark_command
from services.scheduler.spec import SpecError
from services.scheduler.spec_parser import parse_job_spec
from tests.test_executor_support import ExecutorProcess, distribution_conf, make_data_set, task_spec
from tests.test_scheduler_service import seed_like_spec
from tests.test_scheduler_support import PROMOTER, start_members, stop_members

A, B = "a" * 32, "b" * 32
REFUSED = [
    "spark.pyspark.driver.python", "spark.pyspark.python", "spark.driver.extraJavaOptions",
    "spark.executor.extraJavaOptions", "spark.driver.extraClassPath", "spark.executor.extraClassPath",
    "spark.jars", "spark.jars.packages", "spark.files", "spark.archives", "spark.submit.pyFiles",
    "spark.driver.extraLibraryPath", "spark.plugins", "spark.executor.plugins", "spark.serializer",
    "spark.executorEnv.LD_PRELOAD", "spark.master", "spark.sql.extensions", "spark.local.dir",
    "spark.kubernetes.driver.podTemplateFile", "spark.extraListeners", "spark.io.compression.codec",
    "spark.some.unknown.key",
]
ALLOWED = {
    "spark.executor.memory": "4g", "spark.executor.cores": "2", "spark.executor.instances": "3",
    "spark.dynamicAllocation.enabled": "true", "spark.dynamicAllocation.maxExecutors": "8",
    "spark.sql.shuffle.partitions": "64", "spark.kryoserializer.buffer.max": "128m",
    "spark.memory.fraction": "0.7", "spark.network.timeout": "300s",
}


@pytest.mark.parametrize("key", REFUSED)
def test_a_key_naming_a_program_path_class_or_jvm_option_is_refused_by_name(key: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_conf({key: "x"})
    assert repr(key) in str(refused.value)


def test_resource_keys_pass_and_values_must_be_plain() -> None:
    assert check_conf(ALLOWED) == ALLOWED
    with pytest.raises(InvalidArgument, match="spark.executor.memory"):
        check_conf({"spark.executor.memory": "4g -Dx=/tmp/a"})


def test_settings_layer_job_then_operator_then_caps() -> None:
    # Prepare: the operator pins shuffle partitions and caps cores and executors.
    config = SparkConfig(master="spark://head:7077", driver_memory="2g", executor_memory="3g", executor_cores=1,
                         cores_max=4, max_executors=3,
                         extra_conf={"spark.sql.shuffle.partitions": "8", "spark.kubernetes.namespace": "m"})
    options = executor_pb2.SparkOptions(
        executor_memory="8g", executor_cores=6, num_executors=10,
        conf={"spark.sql.shuffle.partitions": "500", "spark.cores.max": "64", "spark.memory.fraction": "0.5",
              "spark.dynamicAllocation.enabled": "true", "spark.dynamicAllocation.maxExecutors": "50"})

    # Execute
    settings = SparkSettings.resolve(options, config)
    modest = SparkSettings.resolve(executor_pb2.SparkOptions(conf={"spark.cores.max": "2"}), config)
    command = spark_command(settings, "weft-t1", ["-j", "job"], Path("/k.zip"))

    # Assert: the job's memory and tuning pass; the operator's keys win; caps hold; a job may ask for less.
    conf = dict(settings.conf)
    assert (settings.master, settings.driver_memory, settings.executor_memory) == ("spark://head:7077", "2g", "8g")
    assert conf["spark.sql.shuffle.partitions"] == "8" and conf["spark.memory.fraction"] == "0.5"
    assert conf["spark.kubernetes.namespace"] == "m"
    assert conf["spark.cores.max"] == "4" and settings.executor_cores == 4 and settings.num_executors == 3
    assert conf["spark.dynamicAllocation.maxExecutors"] == "3"
    assert dict(modest.conf)["spark.cores.max"] == "2" and modest.executor_cores == 1
    assert command[command.index("--num-executors") + 1] == "3"
    assert command[command.index("--executor-cores") + 1] == "4"
    assert "spark.cores.max=4" in command


def test_a_job_may_not_choose_the_master_or_a_program() -> None:
    config = SparkConfig(master="spark://head:7077")
    with pytest.raises(InvalidArgument, match="spark.master"):
        SparkSettings.resolve(executor_pb2.SparkOptions(master="spark://elsewhere:7077"), config)
    with pytest.raises(InvalidArgument, match="spark.pyspark.driver.python"):
        SparkSettings.resolve(executor_pb2.SparkOptions(conf={"spark.pyspark.driver.python": "/bin/sh"}), config)
    assert SparkSettings.resolve(executor_pb2.SparkOptions(master="spark://head:7077"), config).master == \
        "spark://head:7077"


def test_job_parameters_spark_become_the_task_options() -> None:
    options = job_spark_options({"backend": "SPARK", "spark": {
        "executor_memory": "4g", "num_executors": 2, "conf": {"spark.sql.shuffle.partitions": "16"}}})
    assert options is not None and options.executor_memory == "4g" and options.num_executors == 2
    assert dict(options.conf) == {"spark.sql.shuffle.partitions": "16"}
    assert job_spark_options({"backend": "SPARK"}) is None
    with pytest.raises(InvalidArgument, match="'master'"):
        job_spark_options({"spark": {"master": "spark://x:7077"}})
    with pytest.raises(InvalidArgument, match="num_executors"):
        job_spark_options({"spark": {"num_executors": "2"}})


def _job(job_parameters: dict[str, object]) -> dict[str, object]:
    return {
        "name": "spark-options", "initiator": {"member_id": A, "role": "promoter"},
        "role": {"promoter": [A], "provider": [B]},
        "job_parameters": job_parameters,
        "job_args": {A: {"data": {"d": {"namespace": "n", "name": "x"}}},
                     B: {"data": {"d": {"namespace": "n", "name": "y"}}}},
        "components": {"distribution_0": {"module": "Distribution", "input": {"data": {"data": ["args.d"]}},
                                          "output": {"data": ["out"]}}},
    }


def test_submit_refuses_a_job_whose_spark_conf_names_a_program() -> None:
    bad = _job({"backend": "SPARK", "spark": {"conf": {"spark.pyspark.driver.python": "/tmp/x.sh"}}})
    good = _job({"backend": "SPARK", "spark": {"conf": {"spark.sql.shuffle.partitions": "4"}}})
    with pytest.raises(SpecError, match="spark.pyspark.driver.python"):
        parse_job_spec(bad, local_member_id=A, known_members={A, B})
    assert parse_job_spec(good, local_member_id=A, known_members={A, B}).job_parameters["spark"]["conf"] == \
        {"spark.sql.shuffle.partitions": "4"}


@pytest.fixture()
def spark_executor(tmp_path: Path) -> Iterator[ExecutorProcess]:
    executor = ExecutorProcess(tmp_path, {"mode": "spark", "warm_pool": 0, "spark": {"master": "local[1]"}})
    make_data_set(executor.storage_root, tmp_path)
    executor.start()
    yield executor
    executor.stop(signal.SIGKILL)
    executor.kill_leftover_tasks()


@pytest.mark.parametrize("key", ["spark.pyspark.driver.python", "spark.pyspark.python",
                                 "spark.driver.extraJavaOptions"])
def test_run_task_refuses_a_program_in_the_spark_conf_and_runs_nothing(
        spark_executor: ExecutorProcess, tmp_path: Path, key: str) -> None:
    # Prepare: a script that would leave a mark if anything ran it.
    mark = tmp_path / "ran"
    script = tmp_path / "script.sh"
    script.write_text(f"#!/bin/sh\ntouch {mark}\nexec python3 \"$@\"\n")
    script.chmod(0o755)
    value = f"-Dx=$(/bin/sh {script})" if "Java" in key else str(script)
    spec = task_spec(distribution_conf(backend=1), backend=common_pb2.BACKEND_SPARK,
                     spark=executor_pb2.SparkOptions(conf={key: value}))

    # Execute
    with pytest.raises(grpc.RpcError) as refused:
        list(spark_executor.stub.RunTask(executor_pb2.RunTaskRequest(spec=spec), timeout=60))

    # Assert: refused by name; no task recorded, no process started, the script never ran.
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert repr(key) in str(refused.value.details())
    listed = spark_executor.stub.ListTasks(executor_pb2.ListTasksRequest(job_id=spec.job_id), timeout=30)
    assert list(listed.tasks) == [] and listed.running_count == 0
    assert not mark.exists()


async def test_a_scheduler_refuses_at_submit_a_job_naming_a_program(tmp_path: Path) -> None:
    # Prepare: a real scheduler (with its executor) on loopback.
    members = await start_members(tmp_path, {PROMOTER: f"sqlite+aiosqlite:///{tmp_path / 'promoter.db'}"})
    try:
        spec = seed_like_spec()
        spec["job_parameters"] = {"backend": "SPARK",
                                  "spark": {"conf": {"spark.pyspark.driver.python": str(tmp_path / "x.sh")}}}

        # Execute
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await members[PROMOTER].client.submit(spec)
        listed = await members[PROMOTER].client.stub.ListJobs(scheduler_pb2.ListJobsRequest(), timeout=30)
    finally:
        await stop_members(members)

    # Assert: refused by the key's name, and no job was created.
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "spark.pyspark.driver.python" in (refused.value.details() or "")
    assert list(listed.jobs) == []
