"""The kernel finds every component when it is imported from the --py-files zip or from a wheel.

A non-local Spark master ships the kernel as `weft-kernel-<hash>.zip`; a member may install
Weft from a wheel. Each test imports the kernel in a fresh interpreter whose only copy of
`kernel` is that archive (the source tree is taken off sys.path) and loads every component's
parameter class and role programs from it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kernel.constants import SETTING_FILE
from kernel.registry import registry
from services.executor.launchers import build_py_files, source_root

SUBPROCESS_TIMEOUT_S = 300.0

# Runs in the fresh interpreter: argv[1] is the archive, argv[2] the source tree to hide.
_PROBE = """
import json, os, sys
archive, source = sys.argv[1], os.path.realpath(sys.argv[2])
sys.path[:] = [archive] + [p for p in sys.path if p and os.path.realpath(p) != source]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
import kernel
from kernel.registry import registry
found = {}
for module, spec in registry().items():
    spec.param_class()
    found[module] = sorted(spec.roles)
    for role in spec.roles:
        spec.program_class(role)
print(json.dumps({"kernel": kernel.__file__, "components": found}))
"""


def _probe(archive: Path, cwd: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, str(archive), str(source_root())],
        cwd=cwd, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def _expected() -> dict[str, list[str]]:
    folders = sorted(p.parent.name for p in (source_root() / "kernel" / "components").glob(f"*/{SETTING_FILE}"))
    found = {module: sorted(spec.roles) for module, spec in registry().items()}
    assert len(found) == len(folders) and len(found) >= 20
    return found


def test_kernel_from_the_py_files_zip_finds_every_component(tmp_path: Path) -> None:
    # Prepare: the archive exactly as the executor ships it to a non-local master.
    archive = build_py_files(tmp_path / "ship")

    # Execute
    answer = _probe(archive, tmp_path)

    # Assert: the kernel came from the zip, and it found every component the source tree has.
    assert answer["kernel"].startswith(str(archive) + "/"), answer["kernel"]
    assert answer["components"] == _expected()


def test_kernel_from_a_built_wheel_finds_every_component(tmp_path: Path) -> None:
    # Prepare: a wheel built from a copy of the project (the build writes nothing in the tree).
    pytest.importorskip("setuptools")
    project = tmp_path / "project"
    project.mkdir()
    root = source_root()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, project / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("kernel", "protos", "services"):
        shutil.copytree(root / package, project / package, ignore=ignore)
    built = subprocess.run(
        [sys.executable, "-c",
         "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))",
         str(tmp_path / "dist")],
        cwd=project, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, check=False)
    assert built.returncode == 0, built.stderr[-4000:]
    wheel = tmp_path / "dist" / built.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as contents:
        assert f"kernel/components/dataio/{SETTING_FILE}" in contents.namelist()

    # Execute: a pure-Python wheel is importable as it is (its packages sit at its root).
    answer = _probe(wheel, tmp_path)

    # Assert
    assert answer["kernel"].startswith(str(wheel) + "/"), answer["kernel"]
    assert answer["components"] == _expected()
