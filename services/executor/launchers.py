"""How a task process is started: the task_executor arguments, spark-submit's command line, the environment."""

from __future__ import annotations

import hashlib
import io
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import kernel
import protos
from kernel.computing.spark_watch import ENV_EXECUTOR_WAIT, ENV_MEMBER_ID
from kernel.constants import ENV_EVENT_SOCKET
from kernel.errors import InvalidArgument
from kernel.tracker import ENV_HEARTBEAT_INTERVAL
from protos.weft.v1 import executor_pb2
from services.common import spark_conf
from services.common.config import SparkConfig
from services.executor.constants import HEARTBEATS_PER_TIMEOUT, MAX_HEARTBEAT_INTERVAL_S

# Spark properties every task gets unless the config or the job says otherwise: no
# progress bars in the log, no UI port per task, and adaptive execution may merge the
# shuffle partitions of a cached table as it does any other's (Spark's default keeps
# all `spark.sql.shuffle.partitions` of a cached join: 200 tasks each time the table is
# read, whatever its size, which on an application of one or two cores costs more than
# the work itself).
DEFAULT_SPARK_CONF: dict[str, str] = {
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    "spark.sql.optimizer.canChangeCachedPlanOutputPartitioning": "true",
}
# Files of the kernel and protos packages that go into the --py-files archive.
_SHIPPED_SUFFIXES = (".py", ".json", ".proto")


# Spark properties that spark-submit also takes as flags: SparkSettings holds them as fields.
_DRIVER_MEMORY, _EXECUTOR_MEMORY = "spark.driver.memory", "spark.executor.memory"
_EXECUTOR_CORES, _INSTANCES = "spark.executor.cores", "spark.executor.instances"
_CORES_MAX, _MAX_EXECUTORS = "spark.cores.max", "spark.dynamicAllocation.maxExecutors"


def _capped(value: str | None, cap: int, key: str) -> str:
    """min(value, cap) for a count property; the cap when the value is unset."""
    if value is None:
        return str(cap)
    try:
        return str(min(int(value), cap))
    except ValueError:
        raise InvalidArgument(f"spark.conf: {key} must be an integer, got {value!r}") from None


@dataclass(frozen=True)
class SparkSettings:
    """The Spark settings one task runs with.

    In order: the executor config's defaults; the job's options and conf (only keys a job
    may set, see services/common/spark_conf.py); the operator's `extra_conf` over both; and
    last the member's caps (`cores_max`, `max_executors`), which a job can lower, never raise.
    """

    master: str
    driver_memory: str
    executor_memory: str
    executor_cores: int
    num_executors: int = 0
    conf: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @classmethod
    def resolve(cls, options: executor_pb2.SparkOptions | None, config: SparkConfig) -> SparkSettings:
        """The settings for a task; InvalidArgument naming the field or key a job may not set."""
        merged: dict[str, str] = {**DEFAULT_SPARK_CONF, _DRIVER_MEMORY: config.driver_memory,
                                  _EXECUTOR_MEMORY: config.executor_memory,
                                  _EXECUTOR_CORES: str(config.executor_cores)}
        if options is not None:
            if options.master and options.master != config.master:
                raise InvalidArgument(
                    f"spark.master: a job may not choose where its tasks run ({options.master!r}); this "
                    f"member's executor runs them on {config.master!r}")
            spark_conf.check_options(options)
            merged.update(dict(options.conf))
            for key, value in ((_DRIVER_MEMORY, options.driver_memory), (_EXECUTOR_MEMORY, options.executor_memory),
                               (_EXECUTOR_CORES, options.executor_cores), (_INSTANCES, options.num_executors)):
                if value:
                    merged[key] = str(value)
        merged.update(config.extra_conf)
        if config.cores_max > 0:
            merged[_CORES_MAX] = _capped(merged.get(_CORES_MAX), config.cores_max, _CORES_MAX)
            merged[_EXECUTOR_CORES] = _capped(merged.get(_EXECUTOR_CORES), int(merged[_CORES_MAX]), _EXECUTOR_CORES)
        if config.max_executors > 0:
            if _INSTANCES in merged:
                merged[_INSTANCES] = _capped(merged[_INSTANCES], config.max_executors, _INSTANCES)
            if merged.get("spark.dynamicAllocation.enabled", "").lower() == "true":
                merged[_MAX_EXECUTORS] = _capped(merged.get(_MAX_EXECUTORS), config.max_executors, _MAX_EXECUTORS)
        try:
            executor_cores = int(merged.pop(_EXECUTOR_CORES))
            num_executors = int(merged.pop(_INSTANCES, "0"))
        except ValueError as exc:
            raise InvalidArgument(f"spark.conf: executor cores and instances must be integers ({exc})") from None
        return cls(
            master=config.master,
            driver_memory=spark_conf.check_size(merged.pop(_DRIVER_MEMORY), _DRIVER_MEMORY),
            executor_memory=spark_conf.check_size(merged.pop(_EXECUTOR_MEMORY), _EXECUTOR_MEMORY),
            executor_cores=max(1, executor_cores),
            num_executors=max(0, num_executors),
            conf=tuple(sorted(merged.items())),
        )

    @property
    def is_local(self) -> bool:
        """A `local` master runs in the driver's JVM on this machine (the installed kernel is there)."""
        return self.master == "local" or self.master.startswith("local[")

    def session_conf(self) -> list[tuple[str, str]]:
        """The properties a SparkSession built in-process (a warm worker's) needs to match."""
        instances = [(_INSTANCES, str(self.num_executors))] if self.num_executors > 0 else []
        return [(_DRIVER_MEMORY, self.driver_memory), (_EXECUTOR_MEMORY, self.executor_memory),
                (_EXECUTOR_CORES, str(self.executor_cores)), *instances, *self.conf]


def heartbeat_interval(timeout_s: float) -> float:
    """The interval a task beats at: several beats per timeout, at most every few seconds."""
    return min(MAX_HEARTBEAT_INTERVAL_S, timeout_s / HEARTBEATS_PER_TIMEOUT)


def source_root() -> Path:
    """The directory holding the `kernel` and `protos` packages."""
    return Path(kernel.__file__).resolve().parent.parent


def task_executor_args(spec: executor_pb2.TaskSpec, conf_path: Path, storage_root: Path,
                       transfer_endpoint: str) -> list[str]:
    """The task_executor command-line arguments for one task."""
    args = [
        "-j", spec.job_id, "-n", spec.component_name, "-t", spec.task_id, "-r", spec.role,
        "-m", spec.member_id, "-s", spec.federation_session_id, "-c", str(conf_path),
        "--storage-root", str(storage_root),
    ]
    if transfer_endpoint:
        args += ["--transfer-endpoint", transfer_endpoint]
    return args


def task_environment(socket_path: str, heartbeat_timeout_s: float) -> dict[str, str]:
    """Variables a task process needs on top of the executor's own environment."""
    return {
        ENV_EVENT_SOCKET: socket_path,
        ENV_HEARTBEAT_INTERVAL: f"{heartbeat_interval(heartbeat_timeout_s):g}",
        "PYTHONUNBUFFERED": "1",
    }


def spark_environment(config: SparkConfig, member_id: str) -> dict[str, str]:
    """What a Spark task's watch needs: how long its work may wait with no executor, and whose it is."""
    return {ENV_EXECUTOR_WAIT: f"{config.executor_wait_s:g}", ENV_MEMBER_ID: member_id}


def base_environment() -> dict[str, str]:
    """The executor's environment with the kernel importable and Spark using this Python."""
    env = dict(os.environ)
    root = str(source_root())
    paths = [root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    return env


def local_command(task_args: list[str]) -> list[str]:
    """A LOCAL task: this Python running the task executor module."""
    return [sys.executable, "-m", "kernel.task_executor", *task_args]


def spark_submit_path() -> Path:
    """The spark-submit script shipped inside the installed pyspark package."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent / "bin" / "spark-submit"


def spark_command(settings: SparkSettings, app_name: str, task_args: list[str],
                  py_files: Path | None) -> list[str]:
    """spark-submit in client deploy mode running kernel/task_executor.py with the task's arguments."""
    command = [
        str(spark_submit_path()), "--master", settings.master, "--deploy-mode", "client",
        "--name", app_name, "--driver-memory", settings.driver_memory,
        "--executor-memory", settings.executor_memory, "--executor-cores", str(settings.executor_cores),
    ]
    if settings.num_executors > 0:
        command += ["--num-executors", str(settings.num_executors)]
    for key, value in settings.conf:
        command += ["--conf", f"{key}={value}"]
    if py_files is not None:
        command += ["--py-files", str(py_files)]
    command.append(str(source_root() / "kernel" / "task_executor.py"))
    return command + task_args


def build_py_files(directory: Path) -> Path:
    """A zip of the kernel and protos packages for Spark executors on other machines.

    Named by the hash of its content, so a changed kernel gets a new archive and a
    running application keeps the one it started with.
    """
    root = source_root()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in (Path(kernel.__file__).parent, Path(protos.__file__).parent):
            for path in sorted(package.rglob("*")):
                if path.is_file() and path.suffix in _SHIPPED_SUFFIXES and "__pycache__" not in path.parts:
                    info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(1980, 1, 1, 0, 0, 0))
                    archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    content = buffer.getvalue()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"weft-kernel-{hashlib.sha256(content).hexdigest()[:16]}.zip"
    if not target.exists():
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temp.write_bytes(content)
        os.replace(temp, target)
    return target
