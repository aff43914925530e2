"""Locked install sets: the lock check catches drift, the sets split Spark and build tools off the
core, and the scheduler and transfer start in a Python where pyspark cannot be imported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from services.client.standalone import _free_port, health
from services.common import internal_auth
from services.common.certs import create_ca, issue_member_cert

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "requirements"
SETS = ("core", "spark", "build", "dev")


def locked(name: str) -> dict[str, list[str]]:
    """package -> its hashes, from one requirements file (a package pinned per Python version counts once)."""
    packages: dict[str, list[str]] = {}
    current = ""
    for line in (REQUIREMENTS / f"{name}.txt").read_text().splitlines():
        stripped = line.strip().rstrip("\\").strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("--hash="):
            packages[current].append(stripped.removeprefix("--hash="))
            continue
        requirement = Requirement(stripped)
        assert len(requirement.specifier) == 1 and next(iter(requirement.specifier)).operator == "==", stripped
        current = requirement.name
        packages.setdefault(current, [])
    return packages


def test_every_locked_package_is_pinned_with_hashes() -> None:
    for name in SETS:
        packages = locked(name)
        assert packages, name
        for package, hashes in packages.items():
            assert hashes and all(h.startswith("sha256:") for h in hashes), f"{name}: {package} has no hash"


def test_spark_and_build_tools_stay_out_of_the_core_set() -> None:
    # Execute
    sets = {name: set(locked(name)) for name in SETS}
    # Assert
    assert {"grpcio", "sqlalchemy", "pydantic", "pip", "setuptools"} <= sets["core"]
    assert not {"pyspark", "py4j", "grpcio-tools"} & sets["core"]
    assert sets["spark"] - sets["core"] == {"pyspark", "py4j"}
    assert "grpcio-tools" in sets["build"] and "pyspark" not in sets["build"]
    assert sets["core"] | sets["spark"] | sets["build"] <= sets["dev"]
    assert {"pytest", "uv", "kubernetes-validate"} <= sets["dev"]


def _lock_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "repo"
    (tree / "scripts").mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO / name, tree / name)
    shutil.copytree(REQUIREMENTS, tree / "requirements")
    shutil.copy(REPO / "scripts" / "lock.py", tree / "scripts" / "lock.py")
    return tree


def _check(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(tree / "scripts" / "lock.py"), "--check"], cwd=tree,
                          capture_output=True, text=True, timeout=300, check=False)


def test_lock_check_passes_on_the_repository_and_fails_on_drift(tmp_path: Path) -> None:
    # Prepare
    tree = _lock_tree(tmp_path)
    # Execute + Assert: as committed, it passes
    result = _check(tree)
    assert result.returncode == 0, result.stderr
    # a dependency added to pyproject.toml but not locked fails the check
    pyproject = tree / "pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(original.replace('"rich>=13",', '"rich>=13",\n  "weft-no-such-package-x",'))
    result = _check(tree)
    assert result.returncode == 1
    assert "uv.lock does not match pyproject.toml" in result.stderr
    # a requirements file edited by hand fails it too, naming the file
    pyproject.write_text(original)
    core = tree / "requirements" / "core.txt"
    core.write_text(core.read_text().replace("pyyaml==", "pyyaml==0.0.0+edited; ", 1))
    result = _check(tree)
    assert result.returncode == 1
    assert "requirements/{core}.txt do not match uv.lock" in result.stderr


def test_install_script_names_the_sets_when_one_is_unknown(tmp_path: Path) -> None:
    # Execute: the set is checked before any venv is made
    result = subprocess.run(["bash", str(REPO / "scripts" / "install-image.sh"), "--venv", str(tmp_path / "v"),
                             "--extras", "sparkk"], capture_output=True, text=True, timeout=60, check=False)
    # Assert
    assert result.returncode != 0
    assert "no install set 'sparkk'" in result.stderr and "core" in result.stderr and "spark" in result.stderr
    assert not (tmp_path / "v").exists()


@pytest.fixture
def no_pyspark(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """An environment in which `import pyspark` fails (as in the core image) and leaves a mark."""
    shadow = tmp_path / "shadow" / "pyspark"
    shadow.mkdir(parents=True)
    mark = tmp_path / "pyspark-imported"
    (shadow / "__init__.py").write_text(
        "import os, traceback\n"
        "with open(os.environ['WEFT_TEST_PYSPARK_MARK'], 'a') as out:\n"
        "    traceback.print_stack(file=out)\n"
        "raise ImportError('pyspark is not part of the core image')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(REPO)]),
           "WEFT_TEST_PYSPARK_MARK": str(mark)}
    yield env, mark


def test_scheduler_and_transfer_start_without_pyspark(no_pyspark: tuple[dict[str, str], Path],
                                                      tmp_path: Path) -> None:
    # Prepare: one member on loopback, SQLite, a real certificate
    env, mark = no_pyspark
    member_id = os.urandom(16).hex()
    create_ca(tmp_path / "ca")
    tls = issue_member_cert(tmp_path / "ca", member_id, ["127.0.0.1"], tmp_path / "tls")
    internal_auth.write_key(tmp_path / "data" / "internal.key")
    ports = {name: _free_port() for name in ("scheduler", "internal", "external")}
    config = tmp_path / "member.yaml"
    config.write_text(yaml.safe_dump({
        "member_id": member_id, "data_dir": str(tmp_path / "data"),
        "tls": {"ca_file": str(tls.ca_file), "cert_file": str(tls.cert_file), "key_file": str(tls.key_file)},
        "scheduler": {"listen": f"127.0.0.1:{ports['scheduler']}", "executors": ["127.0.0.1:1"]},
        "transfer": {"internal_listen": f"127.0.0.1:{ports['internal']}",
                     "external_listen": f"127.0.0.1:{ports['external']}"},
    }))
    probe = subprocess.run([sys.executable, "-c", "import pyspark"], env=env, capture_output=True, text=True,
                           check=False)
    assert probe.returncode != 0 and mark.exists(), "the shadow module must stand in for pyspark"
    mark.unlink()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # Execute
        for service, port in (("transfer", ports["internal"]), ("scheduler", ports["scheduler"])):
            process = subprocess.Popen([sys.executable, "-m", f"services.{service}", "--config", str(config)],
                                       env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                                       stderr=(tmp_path / f"{service}.log").open("wb"))
            processes.append(process)
            ready = False
            for _ in range(60):
                if process.poll() is not None:
                    break
                ready = health(f"127.0.0.1:{port}", timeout=2.0)
                if ready:
                    break
            # Assert
            log = (tmp_path / f"{service}.log").read_text(errors="replace")[-2000:]
            assert ready, f"{service} did not start without pyspark:\n{log}"
        assert not mark.exists(), f"starting the core services imported pyspark:\n{mark.read_text()}"
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
