"""Computing: the Table API over partitions of Arrow blocks, with LOCAL and SPARK backends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernel.computing.local import LocalSession, LocalTable
from kernel.computing.table import ComputingSession, Table
from kernel.constants import BACKEND_CODES, BACKEND_LOCAL, BACKEND_SPARK
from kernel.errors import InvalidArgument

if TYPE_CHECKING:
    import pyspark.sql

__all__ = [
    "ComputingSession",
    "LocalSession",
    "LocalTable",
    "Table",
    "local_session",
    "normalize_backend",
    "session_for_backend",
    "spark_session",
]


def local_session(num_workers: int | None = None, num_partitions: int | None = None) -> ComputingSession:
    """A LOCAL session: `num_workers` threads (default: the CPU count), tables split in
    `num_partitions` blocks (default: the worker count)."""
    return LocalSession(num_workers=num_workers, num_partitions=num_partitions)


def spark_session(
    spark: pyspark.sql.SparkSession | None = None,
    master: str | None = None,
    config: dict[str, str] | None = None,
) -> ComputingSession:
    """A SPARK session over `spark`, else over the active SparkSession, else a new one.

    A new SparkSession uses `master` (default `local[2]`; under spark-submit, the master
    spark-submit was given) and the extra Spark `config`, and is stopped by `stop()`; a
    session handed in or already active belongs to its creator and is left running.
    """
    from kernel.computing.spark import SparkComputingSession

    return SparkComputingSession.create(spark=spark, master=master, config=config)


def normalize_backend(backend: str | int) -> str:
    """"LOCAL" or "SPARK" from a name (any case) or the seed conf's code (0, 1)."""
    if isinstance(backend, bool):
        raise InvalidArgument(f"backend must be LOCAL/SPARK or 0/1, got {backend!r}")
    if isinstance(backend, int) or (isinstance(backend, str) and backend.strip().isdigit()):
        code = int(backend)
        if code not in BACKEND_CODES:
            raise InvalidArgument(f"backend code must be one of {sorted(BACKEND_CODES)}, got {code}")
        return BACKEND_CODES[code]
    name = str(backend).strip().upper()
    if name not in (BACKEND_LOCAL, BACKEND_SPARK):
        raise InvalidArgument(f"backend must be {BACKEND_LOCAL} or {BACKEND_SPARK} (or 0/1), got {backend!r}")
    return name


def session_for_backend(backend: str | int, **options: Any) -> ComputingSession:
    """The session for a conf's backend ("LOCAL"/0 or "SPARK"/1); options go to its factory."""
    if normalize_backend(backend) == BACKEND_LOCAL:
        return local_session(**options)
    return spark_session(**options)
