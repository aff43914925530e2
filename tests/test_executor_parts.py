"""Executor building blocks on real files and processes: log capping, records, Spark command, process helpers."""

from __future__ import annotations

import asyncio
import subprocess
import zipfile
from pathlib import Path

from protos.weft.v1 import common_pb2, executor_pb2
from services.common.config import SparkConfig
from services.executor.launchers import SparkSettings, build_py_files, spark_command
from services.executor.logs import LogFollower, tail_error
from services.executor.process import group_members, is_running, start_ticks, wait_for_exit
from services.executor.task import TaskRun


async def test_log_follower_streams_lines_and_keeps_each_file_under_its_cap(tmp_path: Path) -> None:
    # Prepare: a writer in append mode, as a task process has.
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    stdout.touch()
    stderr.touch()
    lines: list[tuple[int, str]] = []
    follower = LogFollower({1: stdout, 2: stderr}, max_bytes=4096,
                           listener=lambda stream, line: lines.append((stream, line)), wants_lines=lambda: True)
    follower.start()

    # Execute: write well past the cap, in bursts the follower sees one by one.
    with open(stderr, "ab", buffering=0) as writer:
        for index in range(200):
            writer.write(f"line {index:04d} {'x' * 40}\n".encode())
            if index % 10 == 9:
                await asyncio.sleep(0.02)
        writer.write(b"no newline at the end")
    await asyncio.sleep(0.1)
    follower.close()

    # Assert: every line arrived once, in order; the files on disk stay within the cap.
    stderr_lines = [line for stream, line in lines if stream == 2]
    assert stderr_lines[:200] == [f"line {index:04d} {'x' * 40}" for index in range(200)]
    assert stderr_lines[200:] == ["no newline at the end"]
    rotated = stderr.with_name("stderr.log.1")
    assert rotated.exists()
    assert stderr.stat().st_size + rotated.stat().st_size <= 4096 + 2048
    assert stderr.stat().st_size < 2048


def test_tail_error_finds_the_last_error_line(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    log.write_text("INFO starting\nerror: first\nTraceback ...\nerror: NotFound: data set x/y not found\n")
    assert tail_error(log) == "NotFound: data set x/y not found"
    assert tail_error(tmp_path / "missing.log") == ""


def test_task_record_round_trips(tmp_path: Path) -> None:
    # Prepare
    spec = executor_pb2.TaskSpec(job_id="j", task_id="t", component_name="c", role="promoter", member_id="m",
                                 federation_session_id="s", runtime_conf_json="{}", priority=3, attempt=2,
                                 spark=executor_pb2.SparkOptions(master="local[1]", conf={"a": "b"}))
    run = TaskRun(spec=spec, directory=tmp_path / "t" / "a2", task_dir=tmp_path / "task", socket_path="/s",
                  backend=common_pb2.BACKEND_SPARK, sequence=7, status=common_pb2.TASK_STATUS_RUNNING,
                  pid=1234, pid_ticks=99, spark_app_id="local-1", warm=True, progress=40.0)

    # Execute
    run.save()
    loaded = TaskRun.load(run.directory)

    # Assert
    assert loaded.spec == spec
    assert loaded.info() == run.info()
    assert (loaded.pid_ticks, loaded.warm, loaded.sequence) == (99, True, 7)


def test_spark_settings_take_the_job_over_the_config() -> None:
    # Prepare
    config = SparkConfig(master="spark://head:7077", driver_memory="2g", executor_memory="3g", executor_cores=2,
                         max_executors=8, extra_conf={"spark.x": "config", "spark.sql.shuffle.partitions": "8"})
    options = executor_pb2.SparkOptions(executor_memory="8g", num_executors=4,
                                        conf={"spark.sql.shuffle.partitions": "64", "spark.memory.fraction": "0.5"})

    # Execute
    settings = SparkSettings.resolve(options, config)
    defaults = SparkSettings.resolve(None, SparkConfig())
    command = spark_command(settings, "weft-t1", ["-j", "job"], Path("/k.zip"))

    # Assert: the job's options over the config's defaults, the operator's extra_conf over the job's conf.
    assert (settings.master, settings.driver_memory, settings.executor_memory) == ("spark://head:7077", "2g", "8g")
    assert settings.executor_cores == 2 and not settings.is_local and defaults.is_local
    conf = dict(settings.conf)
    assert conf["spark.memory.fraction"] == "0.5" and conf["spark.x"] == "config"
    assert conf["spark.sql.shuffle.partitions"] == "8"
    assert command[0].endswith("bin/spark-submit")
    assert command[command.index("--master") + 1] == "spark://head:7077"
    assert command[command.index("--deploy-mode") + 1] == "client"
    assert command[command.index("--num-executors") + 1] == "4"
    assert command[command.index("--py-files") + 1] == "/k.zip"
    assert command[-3].endswith("kernel/task_executor.py") and command[-2:] == ["-j", "job"]


def test_cached_tables_may_have_their_shuffle_partitions_merged_unless_the_operator_says_no() -> None:
    # Prepare
    key = "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning"
    operator = SparkConfig(master="spark://head:7077", extra_conf={key: "false"})

    # Execute
    default = dict(SparkSettings.resolve(executor_pb2.SparkOptions(), SparkConfig(master="spark://head:7077")).conf)
    chosen = dict(SparkSettings.resolve(None, operator).conf)

    # Assert
    assert default[key] == "true" and default["spark.ui.enabled"] == "false"
    assert chosen[key] == "false"


def test_py_files_archive_holds_the_kernel_and_protos(tmp_path: Path) -> None:
    archive = build_py_files(tmp_path)
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"kernel/task_executor.py", "kernel/components/distribution/setting.json",
            "protos/weft/v1/executor_pb2.py"} <= names
    assert build_py_files(tmp_path) == archive  # same content, same file


async def test_process_helpers_name_and_wait_for_a_process_group(tmp_path: Path) -> None:
    # Prepare: a process group of a shell and its sleeping child.
    leader = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], start_new_session=True)
    ticks = start_ticks(leader.pid)
    for _ in range(50):
        if len(group_members(leader.pid)) == 2:
            break
        await asyncio.sleep(0.05)

    # Execute
    members = group_members(leader.pid)
    same_process = is_running(leader.pid, ticks)
    other_start = is_running(leader.pid, (ticks or 0) + 1)  # same pid, another start time: a reused pid
    ended = asyncio.create_task(wait_for_exit(leader.pid, ticks))
    await asyncio.sleep(0.1)
    still_waiting = not ended.done()
    leader.kill()
    leader.wait()
    await asyncio.wait_for(ended, 10)

    # Assert
    assert len(members) == 2 and leader.pid in members
    assert same_process and not other_start and still_waiting
    assert not is_running(leader.pid, ticks)
    for pid in members:
        if pid != leader.pid:
            subprocess.run(["kill", "-9", str(pid)], check=False)
