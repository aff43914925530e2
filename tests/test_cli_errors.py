"""The weft command's error paths: one clear line, non-zero exit, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def weft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.client.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_one_clear_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("weft: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_unreadable_job_file(tmp_path: Path) -> None:
    result = weft("--scheduler", "127.0.0.1:1", "submit", str(tmp_path / "missing.json"), cwd=tmp_path)
    assert_one_clear_line(result, "cannot read job file")


def test_job_file_that_is_not_json(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text("{not json")
    result = weft("--scheduler", "127.0.0.1:1", "submit", str(job), cwd=tmp_path)
    assert_one_clear_line(result, "is not valid JSON")


def test_server_that_is_down(tmp_path: Path) -> None:
    result = weft("--scheduler", f"127.0.0.1:{closed_port()}", "--timeout", "3", "jobs", cwd=tmp_path)
    assert_one_clear_line(result, "is unavailable")


def test_no_scheduler_and_no_local_federation(tmp_path: Path) -> None:
    result = weft("--data-dir", str(tmp_path / "none"), "jobs", cwd=tmp_path)
    assert_one_clear_line(result, "no scheduler given")


def test_standalone_down_without_a_federation(tmp_path: Path) -> None:
    result = weft("--data-dir", str(tmp_path / "none"), "standalone", "down", cwd=tmp_path)
    assert_one_clear_line(result, "no local federation")


def test_serve_with_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "member.yaml"
    config.write_text("member_id: not-hex\n")
    result = weft("serve", "scheduler", "--config", str(config), cwd=tmp_path)
    assert_one_clear_line(result, "config.member_id")


@pytest.mark.parametrize("args", [["upload", "x.csv", "--namespace", "n", "--name", "m", "--id-column", "id"]])
def test_upload_of_a_missing_file(tmp_path: Path, args: list[str]) -> None:
    result = weft("--scheduler", f"127.0.0.1:{closed_port()}", *args, cwd=tmp_path)
    assert_one_clear_line(result, "cannot read x.csv")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = weft("--debug", "--scheduler", "127.0.0.1:1", "submit", str(tmp_path / "missing.json"), cwd=tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr
