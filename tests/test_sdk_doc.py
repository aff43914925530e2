"""docs/sdk.md: its Python examples, taken from the page itself, run against a `weft standalone` federation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "sdk.md"


def examples() -> list[str]:
    """Every ```python block of the page, in order."""
    return re.findall(r"^```python\n(.*?)^```$", PAGE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


def weft(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "services.client.cli", "--data-dir", str(data_dir), *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data_dir = tmp_path_factory.mktemp("sdk-federation")
    try:
        started = weft(data_dir, "standalone", "up", "--members", "2")
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield data_dir
    finally:
        weft(data_dir, "standalone", "down")


def run_example(code: str, data_dir: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "WEFT_HOME": str(data_dir)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_the_page_has_a_sync_and_an_async_example() -> None:
    # Assert
    blocks = examples()
    assert len(blocks) == 2
    assert "SchedulerClient(" in blocks[0] and "AsyncSchedulerClient(" in blocks[1]


def test_the_sync_example_uploads_submits_watches_and_reads_results(federation: Path) -> None:
    # Execute
    output = run_example(examples()[0], federation)

    # Assert: four uploads, a labelled job id, success, the evaluation's AUC and the promoter's model
    assert output.count(" rows\n") == 4
    job_id = output.split("job id: ", 1)[1].split()[0]
    assert f"job {job_id}: success" in output
    auc = float(re.search(r"AUC ([0-9.]+)", output).group(1))  # type: ignore[union-attr]
    assert auc >= 0.95
    assert "promoter's model: " in output


def test_the_async_example_runs_an_intersection(federation: Path) -> None:
    # Execute
    output = run_example(examples()[1], federation)

    # Assert
    assert "job id: " in output and "job success 100%" in output
    assert "intersection" in output.lower()
