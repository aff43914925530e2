"""benchmarks/transfer.py keeps its contract: a short run prints the JSON keys others read."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_short_transfer_benchmark_prints_its_json_keys() -> None:
    # Execute: 64 MiB (enough CPU to measure) three times over the product's path (direct, with a ticket), through both
    # members' services, and the raw baselines
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "transfer.py"), "--size-mb", "64", "--repeat", "3"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)

    # Assert
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("weft_mb_s", "raw_grpc_mb_s", "ratio", "peak_rss_mb_sender", "peak_rss_mb_receiver"):
        assert result[key] > 0, key
    # the ratio is the median of the per-round ratios of the interleaved runs
    rounds = list(zip(result["weft_runs_mb_s"], result["raw_grpc_runs_mb_s"], strict=True))
    assert len(rounds) == 3
    assert abs(result["ratio"] - statistics.median(weft / raw for weft, raw in rounds)) < 0.01
    # each round's ratio is reported as a spread, and the CPU and memory of every process beside it
    assert result["ratio_min"] <= result["ratio"] <= result["ratio_max"]
    for key in ("cpu_ratio", "weft_cpu_s_per_gib", "raw_grpc_cpu_s_per_gib", "peak_rss_mb_sending_task",
                "peak_rss_mb_receiving_task"):
        assert result[key] > 0, key
    assert len(result["round_loads"]) == 3 and len(result["load"]) == 3
    # the product's path is the direct path (the task delivers to the peer's external listener with a
    # ticket): its bytes all arrived and the receiving task verified their checksum in every round, and
    # the direct_* keys are the same runs
    assert result["direct_bytes_verified"] == [64 * 1024 * 1024] * 3
    assert result["direct_runs_mb_s"] == result["weft_runs_mb_s"]
    assert result["direct_ratio"] == result["ratio"] and result["direct_cpu_ratio"] == result["cpu_ratio"]
    for key in ("direct_mb_s", "direct_ratio_vs_tls", "direct_cpu_ratio", "direct_cpu_s_per_gib"):
        assert result[key] > 0, key
    # the path through both services ran in the same rounds
    assert result["service_bytes_verified"] == [64 * 1024 * 1024] * 3
    service_rounds = list(zip(result["service_runs_mb_s"], result["raw_grpc_runs_mb_s"], strict=True))
    assert abs(result["service_ratio"] - statistics.median(s / raw for s, raw in service_rounds)) < 0.01
    assert result["service_ratio_min"] <= result["service_ratio"] <= result["service_ratio_max"]
    for key in ("service_mb_s", "service_ratio_vs_tls", "service_cpu_ratio", "service_cpu_s_per_gib"):
        assert result[key] > 0, key
    # each path's CPU per GiB is also given per process (at 64 MiB a process may still stay under one clock tick)
    for path in ("weft", "direct", "service"):
        by_process = result[f"{path}_cpu_s_per_gib_by_process"]
        assert set(by_process) == {"sending_task", "sending_service", "receiving_service", "receiving_task"}
        assert all(seconds >= 0 for seconds in by_process.values()), path
