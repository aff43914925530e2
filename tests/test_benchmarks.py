"""Every benchmark runs at tiny sizes and ends with the JSON keys others read (never a time asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 900
SPARK_SCALE_TIMEOUT_S = 2400


def run_benchmark(name: str, *args: str, timeout: float = RUN_TIMEOUT_S) -> tuple[dict[str, Any], str]:
    """Run benchmarks/<name>.py; its last line parsed as JSON, and everything it printed."""
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    return json.loads(lines[-1]), done.stdout


def assert_ratio_spread(result: dict[str, Any], key: str) -> None:
    assert result[f"{key}_min"] <= result[key] <= result[f"{key}_max"], key


def assert_load(result: dict[str, Any]) -> None:
    assert len(result["load"]) == 3 and all(value >= 0 for value in result["load"])


def test_paillier_benchmark_prints_ratios_of_interleaved_rounds() -> None:
    result, out = run_benchmark("paillier", "--smoke", "--bits", "1024")
    for name in ("encrypt", "encrypt_crt", "decrypt", "add", "scalar_mul", "matvec"):
        assert result[f"{name}_ratio_1024"] > 0
        assert_ratio_spread(result, f"{name}_ratio_1024")
    for key in ("encrypt_per_s_1024", "decrypt_per_s_1024", "matvec_s_1024", "matvec_s_all_cores_1024", "cpu_s"):
        assert result[key] > 0, key
    assert_load(result)
    assert "median of 3 rounds" in out and "load " in out


def test_anchors_benchmark_compares_with_fate_utils_and_phe() -> None:
    result, out = run_benchmark("anchors", "--smoke")
    for name in ("encrypt_1024", "decrypt_1024", "add_1024", "scalar_mul_1024", "matvec_1024"):
        for side in ("weft", "fate", "phe"):
            assert result[f"{name}_per_cpu_s_{side}"] > 0
        for other in ("fate", "phe"):
            assert_ratio_spread(result, f"{name}_ratio_vs_{other}")
    for name in ("psi_hash_blind", "psi_reblind"):
        assert result[f"{name}_per_cpu_s_fate"] > 0
        assert_ratio_spread(result, f"{name}_ratio_vs_fate")
    assert result["psi_commutes"] is True
    assert "matvec_1024 check" in out


def test_psi_benchmark_prints_its_time_beside_the_two_core_limit() -> None:
    result, out = run_benchmark("psi", "--rows", "3000", "--blind-sample", "1000")
    assert result["correct"] is True
    assert result["psi_3000_s"] > 0 and result["psi_limit_s"] > 0 and result["blind_per_s_per_core"] > 0
    # both times are printed to 0.01 s, so the ratio of the printed figures carries their rounding
    seconds, limit = result["psi_3000_s"], result["psi_limit_s"]
    rounding = 0.005 / seconds + 0.005 / limit
    assert result["psi_over_limit"] == pytest.approx(seconds / limit, rel=rounding + 0.001)
    assert "member A matches" in out and "member B matches" in out


def test_vertical_secureboost_benchmark_prints_seconds_per_tree_and_aucs() -> None:
    result, out = run_benchmark("vertical_secureboost", "--rows", "400", "--promoter-features", "3",
                                "--provider-features", "4", "--depth", "2", "--trees", "1")
    assert result["secureboost_s_per_tree"] > 0
    assert 0.0 <= result["secureboost_auc"] <= 1.0 and 0.0 <= result["xgboost_auc"] <= 1.0
    assert result["secureboost_fate_ratio_per_core"] is None  # not FATE's shape
    assert_load(result)
    assert "not compared at this size" in out


def test_vertical_benchmark_compares_with_fate_only_at_fates_shape() -> None:
    result, out = run_benchmark("vertical", "--rows", "400", "--promoter-features", "3", "--provider-features", "4",
                                "--epochs", "1", "--batch-size", "-1", "--trees", "1", "--psi-rows", "2000",
                                "--sections", "psi,vert_lr")
    assert result["psi_s"] > 0 and result["vert_lr_s_per_epoch"] > 0
    assert result["vert_lr_fate_ratio_per_core"] is None
    assert "x per core" not in out
    assert_load(result)


def test_horizontal_benchmark_prints_the_unmask_ratio_of_rounds() -> None:
    result, _ = run_benchmark("horizontal", "--members", "3", "--params", "2000", "--rounds", "3",
                              "--lr-rounds", "2")
    assert result["sum_exact"] is True
    assert result["secagg_s_per_member_round"] > 0
    assert_ratio_spread(result, "arbiter_unmask_over_plain_sum")
    assert_load(result)


@pytest.mark.mysql
def test_queue_claim_benchmark_prints_rates_with_cpu_and_load() -> None:
    result, _ = run_benchmark("queue_claim", "--actions", "60")
    assert result["actions_per_s_1_replica"] > 0 and result["actions_per_s_2_replicas"] > 0
    assert result["cpu_s_1_replica"] > 0
    assert_load(result)


@pytest.mark.mysql
@pytest.mark.slow
def test_scheduler_benchmark_names_its_polled_baseline() -> None:
    result, out = run_benchmark("scheduler", "--quick")
    for key in ("actions_per_s_1_replica", "actions_per_s_2_replicas", "submit_to_dispatch_p50_ms",
                "submit_to_dispatch_p99_ms", "wefe_model_p50_ms", "db_round_trips_p50"):
        assert result[key] > 0, key
    assert "Weft's scheduler with WeFe's 1 s queue and 3 s dependency polls" in out
    assert "WeFe model" not in out


@pytest.mark.spark
@pytest.mark.slow
def test_table_benchmark_prints_ratios_of_interleaved_rounds() -> None:
    result, _ = run_benchmark("table", "--rows", "2000", "--cols", "4", "--repeat", "3")
    assert result["joined_rows"] == 1800
    for key in ("table_local_s", "table_spark_s", "pandas_s"):
        assert result[key] > 0, key
    for key in ("local_vs_pandas", "spark_vs_pandas", "local_vs_spark"):
        assert_ratio_spread(result, key)
    assert_load(result)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_executor_benchmark_alternates_cold_and_warm_launches() -> None:
    # Two rounds (--smoke) show the alternation; the Table has its own test.
    result, out = run_benchmark("executor", "--smoke")
    assert result["launches"] == 2 and result["table_local_s"] is None
    assert result["cold_launch_s"] > 0 and result["warm_launch_s"] > 0
    assert_ratio_spread(result, "launch_ratio")
    assert out.index("round 1 cold launch") < out.index("round 1 warm launch") < out.index("round 2 cold launch")


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.timeout(SPARK_SCALE_TIMEOUT_S + 120)
def test_spark_scale_benchmark_runs_psi_and_vert_lr_on_a_cluster_beside_local() -> None:
    # Nine Spark applications start one after the other: on a loaded machine each takes
    # minutes, so the benchmark gets its own deadline and stops its cluster when it passes.
    result, out = run_benchmark("spark_scale", "--smoke", "--timeout", str(SPARK_SCALE_TIMEOUT_S),
                                timeout=SPARK_SCALE_TIMEOUT_S + 60)
    assert (result["psi_rows"], result["vert_lr_rows"], result["driver_memory"]) == (2000, 400, "1g")
    for key in ("psi_s", "vert_lr_s_per_epoch", "driver_peak_rss_mb", "task_start_warm_s", "task_start_cold_s",
                "local_psi_s", "local_vert_lr_s_per_epoch", "psi_input_mb", "vert_lr_input_mb"):
        assert result[key] > 0, key
    assert (result["local_psi_rows"], result["local_vert_lr_rows"]) == (2000, 400)
    assert_load(result)
    assert "on the cluster" in out and "LOCAL 2,000 x 2,000" in out and "round 1: cold" in out


def test_serving_benchmark_prints_latency_throughput_and_the_batch_path_beside_it() -> None:
    result, out = run_benchmark("serving", "--smoke")
    for key in ("lr_p50_ms", "lr_p99_ms", "sbt_p50_ms", "sbt_p99_ms", "batch_predictions_per_s", "batch_job_s"):
        assert result[key] > 0, key
    assert result["lr_p50_ms"] <= result["lr_p99_ms"] and result["sbt_p50_ms"] <= result["sbt_p99_ms"]
    assert result["batch_predictions_per_s_min"] <= result["batch_predictions_per_s"] \
        <= result["batch_predictions_per_s_max"]
    assert_ratio_spread(result, "online_over_batch_job")
    assert result["online_max_abs_diff"] <= 1e-9
    assert_load(result)
    assert "batch predict path for the same" in out and "load " in out
