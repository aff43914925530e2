"""The container images' recipe: two images (core, spark) from one multi-stage Dockerfile, what it
copies is in the build context, CI runs its install steps, its install script refuses bad input
clearly, and the Spark executor pod command starts Spark's executor backend."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile
import pytest

from services.common.ports import free_port as _free_port

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
    """Sources of the COPY instructions that read the build context (not another stage)."""
    return [source for command in dockerfile.parse_file(str(DOCKERFILE))
            if command.cmd == "COPY" and not any(f.startswith("--from=") for f in command.flags)
            for source in command.value[:-1]]


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


@dataclass
class Stage:
    """One FROM ... AS name block of the Dockerfile."""

    name: str
    base: str
    instructions: list[dockerfile.Command] = field(default_factory=list)

    def runs(self) -> list[str]:
        return [" ".join(c.value) for c in self.instructions if c.cmd == "RUN"]

    def copies_from(self) -> list[tuple[str, str]]:
        """(stage, source path) of each COPY --from=stage."""
        found = []
        for command in self.instructions:
            for flag in command.flags:
                if command.cmd == "COPY" and flag.startswith("--from="):
                    found += [(flag.removeprefix("--from="), source) for source in command.value[:-1]]
        return found

    def last(self, cmd: str) -> tuple[str, ...]:
        return [c.value for c in self.instructions if c.cmd == cmd][-1]


def stages() -> dict[str, Stage]:
    """The Dockerfile parsed with Docker's own parser (the `dockerfile` package), stage by stage."""
    parsed: dict[str, Stage] = {}
    current: Stage | None = None
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            words = command.value
            assert len(words) == 3 and words[1].upper() == "AS", f"line {command.start_line}: name every stage"
            current = parsed[words[2]] = Stage(words[2], words[0])
        elif current is not None:
            current.instructions.append(command)
    return parsed


def lineage(all_stages: dict[str, Stage], name: str) -> list[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    chain = [all_stages[name]]
    while chain[-1].base in all_stages:
        chain.append(all_stages[chain[-1].base])
    return chain


def install_sets(stage: Stage) -> list[str]:
    return [re.search(r"--extras (\S+)", run).group(1)  # type: ignore[union-attr]
            for run in stage.runs() if "scripts/install-image.sh" in run]


def image_venv_sets(all_stages: dict[str, Stage], image: str) -> set[str]:
    """The install sets whose venv an image copies in from a build stage."""
    sources = [stage for stage, path in all_stages[image].copies_from() if path == "/opt/weft/venv"]
    assert len(sources) == 1, f"{image} copies its venv from {sources}"
    return {s for stage in lineage(all_stages, sources[0]) for s in install_sets(stage)}


def test_two_images_from_one_file_core_without_java_or_spark() -> None:
    # Prepare
    all_stages = stages()
    # Execute
    core_chain = [s.name for s in lineage(all_stages, "core")]
    spark_chain = [s.name for s in lineage(all_stages, "spark")]
    # Assert: the base is Python 3.11; the default target (the last stage) is core
    assert list(all_stages)[-1] == "core"
    assert "python:3.11" in dockerfile.parse_string(DOCKERFILE.read_text())[0].value[0]
    assert "jre" not in core_chain and "jre" in spark_chain
    assert not any("openjdk" in run for stage in lineage(all_stages, "core") for run in stage.runs())
    assert any("openjdk-17-jre-headless" in run for run in all_stages["jre"].runs())
    assert image_venv_sets(all_stages, "core") == {"core"}
    assert image_venv_sets(all_stages, "spark") == {"spark"}
    assert "import pyspark" in " ".join(all_stages["core"].runs()), "the core image checks pyspark is absent"
    for image in ("core", "spark"):
        user = all_stages[image].last("USER")[0]
        assert not user.startswith(("0", "root")), image
        assert all_stages[image].last("ENTRYPOINT")[-1] == "weft", image


def test_build_tools_stay_in_the_build_stage() -> None:
    # Prepare
    all_stages = stages()
    # Execute
    build_users = [s.name for s in all_stages.values() if "build" in install_sets(s)]
    copied_from_protos = {path for s in all_stages.values() for stage, path in s.copies_from() if stage == "protos"}
    # Assert: grpcio-tools (the build set) only in the protos stage, which hands on the checked protos only
    assert build_users == ["protos"]
    assert any("gen_protos.py --check" in run for run in all_stages["protos"].runs())
    assert copied_from_protos == {"/opt/weft/src/protos"}
    for image in ("core", "spark"):
        assert all(stage != "protos" for stage, _ in all_stages[image].copies_from()), image


def test_ci_runs_the_install_steps_of_both_images() -> None:
    # Prepare: what CI runs (.ci/run calls scripts/check_install_sets.py)
    all_stages = stages()
    ci = (REPO / ".ci" / "run").read_text()
    checker = (REPO / "scripts" / "check_install_sets.py").read_text()
    # Execute
    image_sets = image_venv_sets(all_stages, "core") | image_venv_sets(all_stages, "spark")
    # Assert
    assert "scripts/check_install_sets.py" in ci and "scripts/lock.py --check" in ci
    for name in image_sets:
        assert f'"{name}": ((' in checker, f"CI does not build the {name} set"
        assert (REPO / "requirements" / f"{name}.txt").exists()


def test_install_script_requires_a_venv() -> None:
    result = subprocess.run(["bash", str(REPO / "scripts" / "install-image.sh")], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "--venv" in result.stderr


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
