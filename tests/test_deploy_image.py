"""The container image's recipe: what it copies is in the build context, its install script
refuses bad input clearly, and the Spark executor pod command starts Spark's executor backend."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
SPARK_ENTRYPOINT = REPO / "deploy" / "spark-executor-entrypoint.sh"


def dockerignore_includes(path: str) -> bool:
    """Docker's rule: the last .dockerignore pattern matching the path (or a parent) decides."""
    included = True
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            included = negate
    return included


def copied_sources() -> list[str]:
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY "):
            words = [w for w in line.split()[1:] if not w.startswith("--")]
            sources += words[:-1]
    return sources


def test_everything_the_dockerfile_copies_is_in_the_build_context() -> None:
    # Execute
    sources = copied_sources()
    # Assert
    assert sources, "the Dockerfile copies nothing"
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such file"
        assert dockerignore_includes(source), f"COPY {source}: .dockerignore leaves it out"
    assert not dockerignore_includes(".git")
    assert not dockerignore_includes("tests/test_deploy_image.py")


def test_image_is_python_311_with_java_17_non_root_and_runs_weft() -> None:
    # Execute
    text = DOCKERFILE.read_text()
    # Assert
    assert re.search(r"^FROM python:3\.11", text, re.MULTILINE)
    assert "openjdk-17-jre-headless" in text
    assert "scripts/install-image.sh" in text
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user and not user[-1].startswith(("0", "root"))
    entrypoint = re.findall(r"^ENTRYPOINT (.+)$", text, re.MULTILINE)[-1]
    assert entrypoint.rstrip("]").split(",")[-1].strip().strip('"') == "weft"


def test_install_script_names_an_unknown_extra() -> None:
    # Prepare: the running interpreter's venv is a venv the script accepts as it is
    venv = Path(sys.prefix)
    # Execute
    result = subprocess.run(["bash", str(REPO / "scripts" / "install-image.sh"), "--venv", str(venv),
                             "--extras", "no-such-extra"], capture_output=True, text=True, timeout=120,
                            check=False)
    # Assert
    assert result.returncode != 0
    assert "no-such-extra" in result.stderr


def test_install_script_requires_a_venv() -> None:
    result = subprocess.run(["bash", str(REPO / "scripts" / "install-image.sh")], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "--venv" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_spark_executor_entrypoint_names_a_missing_variable() -> None:
    result = subprocess.run(["bash", str(SPARK_ENTRYPOINT), "executor"], capture_output=True, text=True,
                            timeout=60, check=False, env={"PATH": os.environ["PATH"], "SPARK_HOME": "/nowhere"})
    assert result.returncode == 2
    assert "SPARK_DRIVER_URL is not set" in result.stderr


@pytest.mark.spark
def test_spark_executor_entrypoint_starts_the_executor_backend() -> None:
    # Prepare: what Spark sets on an executor pod, with a driver port nobody listens on
    import pyspark

    java = shutil.which("java")
    assert java is not None, "Java 17 is needed for Spark"
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "JAVA_HOME": str(Path(java).resolve().parents[1]),
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_DRIVER_URL": f"spark://CoarseGrainedScheduler@127.0.0.1:{port}",
        "SPARK_EXECUTOR_ID": "1",
        "SPARK_EXECUTOR_CORES": "1",
        "SPARK_EXECUTOR_MEMORY": "256m",
        "SPARK_APPLICATION_ID": "spark-weft-test",
        "SPARK_EXECUTOR_POD_IP": "127.0.0.1",
        "SPARK_EXECUTOR_POD_NAME": "weft-test-exec-1",
        "SPARK_JAVA_OPT_0": f"-Dspark.driver.port={port}",
    }
    # Execute
    result = subprocess.run(["bash", str(SPARK_ENTRYPOINT), "executor"], capture_output=True, text=True,
                            timeout=180, check=False, env=env)
    output = result.stdout + result.stderr
    # Assert: the backend ran and went for the driver (which is absent, so it exits)
    assert "KubernetesExecutorBackend" in output and "ClassNotFoundException" not in output
    assert f"Failed to connect to /127.0.0.1:{port}" in output
    assert result.returncode != 0
