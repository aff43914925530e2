"""Fixtures shared by every suite: one Spark session per run, the local MariaDB, temp storage; the modules' order."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterator
from typing import Any, Final

import pytest

MYSQL_HOST = os.environ.get("WEFT_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("WEFT_TEST_MYSQL_PORT", "3306"))

# The longest modules, longest first (each took minutes in CI's run on two workers). Under
# `--dist loadfile` a module runs whole on one worker, so a long module handed out last keeps
# one worker busy while the other has nothing left to do; started first, the short modules
# fill the gaps at the end. scripts/test.sh passes --no-loadscope-reorder, so this order is
# the one the workers take modules in.
LONGEST_MODULES: Final = ("test_benchmarks.py", "test_spark_cluster.py", "test_default_quality.py")


def _mysql_up() -> bool:
    try:
        with socket.create_connection((MYSQL_HOST, MYSQL_PORT), timeout=1):
            return True
    except OSError:
        return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules in the order they should start: LONGEST_MODULES, then the modules holding a test
    marked slow or spark, then the rest; within a group, the modules with more tests first (as
    xdist orders them on its own). Tests keep their order within a module."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)

    def rank(module: str) -> tuple[int, int]:
        name = module.rsplit("/", 1)[-1]
        if name in LONGEST_MODULES:
            return LONGEST_MODULES.index(name), 0
        heavy = any(item.get_closest_marker("slow") or item.get_closest_marker("spark") for item in modules[module])
        return len(LONGEST_MODULES) + (0 if heavy else 1), -len(modules[module])

    items[:] = [item for module in sorted(modules, key=rank) for item in modules[module]]


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local SparkSession for the whole run (its start costs seconds)."""
    from pyspark.sql import SparkSession

    # Spark's Python workers must be this interpreter (it has pyarrow and the kernel).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("weft-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture()
def mysql_url() -> Iterator[str]:
    """A fresh database on the local MariaDB, dropped afterwards."""
    if not _mysql_up():
        pytest.fail(f"MariaDB is not reachable on {MYSQL_HOST}:{MYSQL_PORT}; .ci/run starts it")
    import pymysql

    name = f"weft_test_{uuid.uuid4().hex[:12]}"
    conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        yield f"mysql+aiomysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()
