"""`weft demo` from a clean data directory: two members, the vertical LR job, AUC >= 0.97."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_weft_demo_prints_a_good_auc_and_stops_the_members(tmp_path: Path) -> None:
    # Execute
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "services.client.cli", "--data-dir", str(tmp_path), "demo"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)

    # Assert
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    match = re.search(r"^AUC: ([0-9.]+)$", result.stdout, re.MULTILINE)
    assert match, result.stdout
    assert float(match.group(1)) >= 0.97
    assert "members stopped" in result.stdout
    assert re.search(r"^model: .*vert_lr_0", result.stdout, re.MULTILINE)
    status = subprocess.run([sys.executable, "-m", "services.client.cli", "--data-dir", str(tmp_path / "demo"),
                             "standalone", "status"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert not re.search(r"\bserving\s*│?\s*$", status.stdout, re.MULTILINE) and status.stdout.count("stopped") == 10
