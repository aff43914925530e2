"""benchmarks/transfer.py keeps its contract: a short run prints the JSON keys others read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_short_transfer_benchmark_prints_its_json_keys() -> None:
    # Execute: 16 MiB once through two members' services and the raw baselines
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "transfer.py"), "--size-mb", "16", "--repeat", "1"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)

    # Assert
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("weft_mb_s", "raw_grpc_mb_s", "ratio", "peak_rss_mb_sender", "peak_rss_mb_receiver"):
        assert result[key] > 0, key
    assert abs(result["ratio"] - result["weft_mb_s"] / result["raw_grpc_mb_s"]) < 0.01
