"""The Spark settings a job may choose: resources and tuning, never programs, paths, classes or JVM options.

A job's Spark options travel from a submitter to the scheduler and from the scheduler to
the executor, which hands them to spark-submit. Spark properties can name a Python or Java
program to run (`spark.pyspark.driver.python`), files and jars to load, classes and plugins
to instantiate and JVM flags; any of those would let a job run code as the service user.
So a job may set only the properties listed here, each with a plain value (a number, a
size, a duration, a boolean or a word); the member's operator sets everything else in the
executor's own config. The scheduler checks at submit, the executor again at RunTask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kernel.errors import InvalidArgument
from protos.weft.v1 import executor_pb2

# job_parameters.spark: the Spark options of every SPARK task of a job.
JOB_SPARK_KEY = "spark"
JOB_SPARK_FIELDS = ("conf", "driver_memory", "executor_memory", "executor_cores", "num_executors")
MAX_JOB_CORES = 1024

# Properties a job may set (exact names).
ALLOWED_KEYS: frozenset[str] = frozenset({
    # memory
    "spark.driver.memory", "spark.driver.memoryOverhead", "spark.driver.maxResultSize",
    "spark.executor.memory", "spark.executor.memoryOverhead", "spark.executor.memoryOverheadFactor",
    "spark.executor.pyspark.memory", "spark.python.worker.memory", "spark.python.worker.reuse",
    "spark.memory.fraction", "spark.memory.storageFraction",
    "spark.memory.offHeap.enabled", "spark.memory.offHeap.size",
    # cores and executors
    "spark.driver.cores", "spark.executor.cores", "spark.executor.instances", "spark.cores.max",
    "spark.task.cpus", "spark.default.parallelism",
    # dynamic allocation
    "spark.dynamicAllocation.enabled", "spark.dynamicAllocation.minExecutors",
    "spark.dynamicAllocation.maxExecutors", "spark.dynamicAllocation.initialExecutors",
    "spark.dynamicAllocation.executorAllocationRatio", "spark.dynamicAllocation.executorIdleTimeout",
    "spark.dynamicAllocation.cachedExecutorIdleTimeout", "spark.dynamicAllocation.schedulerBacklogTimeout",
    "spark.dynamicAllocation.sustainedSchedulerBacklogTimeout",
    "spark.dynamicAllocation.shuffleTracking.enabled", "spark.dynamicAllocation.shuffleTracking.timeout",
    # SQL shuffle and partitioning
    "spark.sql.shuffle.partitions", "spark.sql.adaptive.enabled",
    "spark.sql.adaptive.coalescePartitions.enabled", "spark.sql.adaptive.advisoryPartitionSizeInBytes",
    "spark.sql.adaptive.skewJoin.enabled", "spark.sql.files.maxPartitionBytes",
    "spark.sql.autoBroadcastJoinThreshold", "spark.sql.execution.arrow.maxRecordsPerBatch",
    # serializer buffers, shuffle buffers, compression switches (not codecs: those name classes)
    "spark.kryoserializer.buffer", "spark.kryoserializer.buffer.max",
    "spark.shuffle.file.buffer", "spark.reducer.maxSizeInFlight", "spark.shuffle.compress",
    "spark.shuffle.spill.compress", "spark.rdd.compress", "spark.broadcast.blockSize",
    # timeouts, retries and scheduling
    "spark.network.timeout", "spark.executor.heartbeatInterval", "spark.task.maxFailures",
    "spark.speculation", "spark.speculation.multiplier", "spark.speculation.quantile",
    "spark.locality.wait", "spark.scheduler.mode",
})

# Families refused with a reason of their own (checked first, so the message says why).
_DANGEROUS = (
    (re.compile(r"env\b|env\.|environment", re.IGNORECASE), "sets environment variables of a process"),
    (re.compile(r"python|\.py[-.]?files|pythonpath", re.IGNORECASE), "names a program or a path"),
    (re.compile(r"extrajavaoptions|defaultjavaoptions|javaoptions", re.IGNORECASE), "sets JVM options"),
    (re.compile(r"classpath|librarypath|\.jars?\b|\.jars\.|packages|repositories|ivy", re.IGNORECASE),
     "names a jar, a class path or a library path"),
    (re.compile(r"\.files\b|\.archives\b|\.dir\b|file$|path|\.log\.", re.IGNORECASE), "names a file or a path"),
    (re.compile(r"plugins|class$|classes|listeners|serializer$|codec|extensions|factory|provider",
                re.IGNORECASE), "names a class to load"),
    (re.compile(r"^spark\.(master|submit|driver\.host|driver\.bindAddress|kubernetes\.|yarn\.|"
                r"authenticate|ssl\.|acls|ui\.|eventLog|history)", re.IGNORECASE),
     "is the member's to set (where and how its applications run)"),
)

# A value is one plain token: "4", "0.6", "2g", "512m", "120s", "true", "FAIR".
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9.]{1,32}$")
_SIZE = re.compile(r"^[0-9]{1,9}[kmgtp]?b?$", re.IGNORECASE)

ALLOWED_FAMILIES = ("memory, cores, executor instances, dynamic allocation, shuffle partitions, "
                    "serializer and shuffle buffers, timeouts")


def check_key(key: str, where: str = "spark.conf") -> None:
    """Raise InvalidArgument naming `key` unless a job may set it."""
    if key in ALLOWED_KEYS:
        return
    for pattern, reason in _DANGEROUS:
        if pattern.search(key):
            raise InvalidArgument(f"{where}: Spark setting {key!r} is refused: it {reason}; a job may set only "
                                  f"{ALLOWED_FAMILIES} (the member's operator sets the rest in the executor's config)")
    raise InvalidArgument(f"{where}: Spark setting {key!r} is not one a job may set; allowed: {ALLOWED_FAMILIES} "
                          "(docs/executor.md lists the keys)")


def check_value(key: str, value: str, where: str = "spark.conf") -> None:
    if not _PLAIN_VALUE.match(value):
        raise InvalidArgument(f"{where}: the value of Spark setting {key!r} must be one plain token "
                              f"(a number, a size, a duration, true/false or a word), got {value[:40]!r}")


def check_conf(conf: Mapping[str, str], where: str = "spark.conf") -> dict[str, str]:
    """Every key allowed and every value plain; returns the conf as a dict of strings."""
    checked: dict[str, str] = {}
    for key in sorted(conf):
        value = conf[key]
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgument(f"{where}: keys and values must be strings, got {key!r}: {value!r}")
        check_key(key, where)
        check_value(key, value, where)
        checked[key] = value
    return checked


def check_size(value: str, where: str) -> str:
    """A memory size in spark-submit syntax ("2g", "512m"); empty means unset."""
    if value and not _SIZE.match(value):
        raise InvalidArgument(f"{where}: expected a memory size such as 2g or 512m, got {value[:40]!r}")
    return value


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_JOB_CORES:
        raise InvalidArgument(f"{where}: expected an integer from 0 to {MAX_JOB_CORES}, got {value!r}")
    return value


def check_options(options: executor_pb2.SparkOptions, where: str = "spark") -> None:
    """A task's SparkOptions as a job may set them (the master is the member's choice, not checked here)."""
    check_size(options.driver_memory, f"{where}.driver_memory")
    check_size(options.executor_memory, f"{where}.executor_memory")
    _count(options.executor_cores, f"{where}.executor_cores")
    _count(options.num_executors, f"{where}.num_executors")
    check_conf(dict(options.conf), f"{where}.conf")


def job_spark_options(job_parameters: Mapping[str, Any]) -> executor_pb2.SparkOptions | None:
    """The SparkOptions that `job_parameters.spark` asks for (None when it is absent); InvalidArgument
    naming the field or the Spark key otherwise."""
    raw = job_parameters.get(JOB_SPARK_KEY)
    if raw is None:
        return None
    where = f"job_parameters.{JOB_SPARK_KEY}"
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{where}: expected an object with {', '.join(JOB_SPARK_FIELDS)}")
    unknown = sorted(set(raw) - set(JOB_SPARK_FIELDS))
    if unknown:
        raise InvalidArgument(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                              f"(allowed: {', '.join(JOB_SPARK_FIELDS)}; Spark properties go under conf)")
    conf = raw.get("conf", {})
    if not isinstance(conf, dict):
        raise InvalidArgument(f"{where}.conf: expected an object of Spark properties")
    for name in ("driver_memory", "executor_memory"):
        if not isinstance(raw.get(name, ""), str):
            raise InvalidArgument(f"{where}.{name}: expected a memory size such as 2g or 512m")
    options = executor_pb2.SparkOptions(
        driver_memory=raw.get("driver_memory", ""), executor_memory=raw.get("executor_memory", ""),
        executor_cores=_count(raw.get("executor_cores", 0), f"{where}.executor_cores"),
        num_executors=_count(raw.get("num_executors", 0), f"{where}.num_executors"),
        conf=check_conf(conf, f"{where}.conf"))
    check_options(options, where)
    return options
