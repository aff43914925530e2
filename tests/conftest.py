"""Fixtures shared by every suite: one Spark session per run, the local MariaDB, temp storage."""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

MYSQL_HOST = os.environ.get("WEFT_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("WEFT_TEST_MYSQL_PORT", "3306"))


def _mysql_up() -> bool:
    try:
        with socket.create_connection((MYSQL_HOST, MYSQL_PORT), timeout=1):
            return True
    except OSError:
        return False


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
