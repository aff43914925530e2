"""benchmarks/transfer.py keeps its contract: a short run prints the JSON keys others read."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_short_transfer_benchmark_prints_its_json_keys() -> None:
    # Execute: 16 MiB twice through two members' services and the raw baselines
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "transfer.py"), "--size-mb", "16", "--repeat", "2"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)

    # Assert
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("weft_mb_s", "raw_grpc_mb_s", "ratio", "peak_rss_mb_sender", "peak_rss_mb_receiver"):
        assert result[key] > 0, key
    # the ratio is the median of the per-round ratios of the interleaved runs
    rounds = list(zip(result["weft_runs_mb_s"], result["raw_grpc_runs_mb_s"], strict=True))
    assert len(rounds) == 2
    assert abs(result["ratio"] - statistics.median(weft / raw for weft, raw in rounds)) < 0.01
