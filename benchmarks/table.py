"""Table API speed: join + map + reduce on N rows x C columns, LOCAL vs SPARK local[2] vs pandas.

Two Parquet data sets (id + C/2 float columns each, ids 90% overlapping, rows shuffled)
are written first, untimed. Each contender then reads both, joins them by id, maps every
feature (x -> 2(x - 0.5)) and adds a row-sum column, and reduces to column sums and a row
count. The three answers are checked to agree. Spark's start-up is not timed (a warm-up
job runs first); its per-job overheads are.

The contenders run in `--repeat` interleaved rounds (pandas, LOCAL, SPARK, then again):
the seconds are medians, and each ratio is the median of the per-round ratios, with its
min and max. Each round prints when done, with wall and CPU seconds (this process and its
children, Spark's JVM included) and the load average.

    python benchmarks/table.py [--rows 1000000] [--cols 50] [--repeat 3]

The last line printed is JSON: table_local_s, table_spark_s, pandas_s and the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from functools import reduce
from operator import add
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import MIN_ROUNDS, Span, load_average, report, span  # noqa: E402

from kernel.computing import ComputingSession, local_session, spark_session  # noqa: E402
from kernel.computing.spark import SparkComputingSession  # noqa: E402

ID = "id"
SPARK_CONFIG = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "4g",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
}


def make_inputs(folder: Path, rows: int, cols: int, seed: int = 42) -> tuple[str, str]:
    """Write the left and right Parquet inputs; returns their paths."""
    rng = np.random.default_rng(seed)
    left_cols, right_cols = cols // 2, cols - cols // 2
    left_ids = np.arange(rows, dtype=np.int64)
    right_ids = rng.permutation(np.arange(rows // 10, rows + rows // 10, dtype=np.int64))
    left = pa.table({ID: left_ids, **{f"a{i}": rng.random(rows) for i in range(left_cols)}})
    right = pa.table({ID: right_ids, **{f"b{i}": rng.random(rows) for i in range(right_cols)}})
    left_path, right_path = folder / "left", folder / "right"
    for data, path in ((left, left_path), (right, right_path)):
        path.mkdir()
        pq.write_table(data, path / "part-00000.parquet", row_group_size=1 << 17)
    return str(left_path), str(right_path)


def transform(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The map step: every feature to 2(x - 0.5), plus their row sum."""
    out = {name: (values - 0.5) * 2.0 for name, values in columns.items() if name != ID}
    out["score"] = reduce(add, out.values())
    return out


def block_sums(block: pa.Table) -> np.ndarray:
    """The reduce step's per-block value: column sums then the row count."""
    sums = [pc.sum(block.column(name)).as_py() or 0.0 for name in block.schema.names if name != ID]
    return np.array([*sums, float(block.num_rows)])


def run_table(session: ComputingSession, left_path: str, right_path: str) -> np.ndarray:
    """Read both inputs, join, map, reduce on one backend."""
    left = session.read_parquet(left_path, ID)
    right = session.read_parquet(right_path, ID)
    result: np.ndarray = left.join(right).map(transform).reduce(block_sums, add)
    return result


def run_pandas(left_path: str, right_path: str) -> np.ndarray:
    """The same work in plain pandas, single process."""
    joined = pd.read_parquet(left_path).merge(pd.read_parquet(right_path), on=ID, how="inner")
    mapped = (joined.drop(columns=[ID]) - 0.5) * 2.0
    mapped["score"] = mapped.sum(axis=1)
    return np.array([*mapped.sum().to_numpy(), float(len(mapped))])


def timed(fn: Callable[[], np.ndarray]) -> tuple[Span, np.ndarray]:
    with span() as measured:
        answer = fn()
    return measured, answer


def _ratio(name: str, ratios: list[float]) -> dict[str, float]:
    return {name: round(statistics.median(ratios), 2), f"{name}_min": round(min(ratios), 2),
            f"{name}_max": round(max(ratios), 2)}


def run_table_benchmark(rows: int, cols: int, repeat: int = MIN_ROUNDS) -> dict[str, Any]:
    """Time join + map + reduce on pandas, LOCAL and SPARK local[2] in interleaved rounds."""
    if repeat < MIN_ROUNDS:
        raise ValueError(f"the ratios need at least {MIN_ROUNDS} rounds, got {repeat}")
    if __name__ != "__main__":
        # Imported by another benchmark: Spark workers may not find this file on their
        # path, so ship its functions by value.
        from pyspark import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    seconds: dict[str, list[float]] = {"pandas": [], "local": [], "spark": []}
    cpu: dict[str, list[float]] = {"pandas": [], "local": [], "spark": []}
    with tempfile.TemporaryDirectory(prefix="weft-table-bench-") as scratch:
        left_path, right_path = make_inputs(Path(scratch), rows, cols)
        spark = spark_session(master="local[2]", config=SPARK_CONFIG)
        local = local_session()
        try:
            if isinstance(spark, SparkComputingSession):
                spark.spark.sparkContext.setLogLevel("ERROR")
            spark.from_arrow(pa.table({ID: [1, 2], "x": [0.5, 1.5]}), ID).map(transform).count()  # warm-up
            contenders: dict[str, Callable[[], np.ndarray]] = {
                "pandas": lambda: run_pandas(left_path, right_path),
                "local": lambda: run_table(local, left_path, right_path),
                "spark": lambda: run_table(spark, left_path, right_path),
            }
            for round_ in range(repeat):
                answers: dict[str, np.ndarray] = {}
                for name, fn in contenders.items():
                    measured, answers[name] = timed(fn)
                    seconds[name].append(measured.wall_s)
                    cpu[name].append(measured.cpu_s)
                    report(f"round {round_ + 1} {name}", measured.text())
                for name in ("local", "spark"):
                    if not np.allclose(answers[name], answers["pandas"], rtol=1e-9, atol=1e-6):
                        raise RuntimeError(f"{name} answer differs from pandas: {answers[name][-1]} rows vs "
                                           f"{answers['pandas'][-1]}")
            joined = int(answers["pandas"][-1])
        finally:
            local.stop()
            spark.stop()
    local_s, spark_s, pandas_s = (statistics.median(seconds[n]) for n in ("local", "spark", "pandas"))
    per_round = list(zip(seconds["pandas"], seconds["local"], seconds["spark"], strict=True))
    return {
        "rows": rows,
        "cols": cols,
        "joined_rows": joined,
        "rounds": repeat,
        "table_local_s": round(local_s, 3),
        "table_spark_s": round(spark_s, 3),
        "pandas_s": round(pandas_s, 3),
        **_ratio("local_vs_pandas", [p / lo for p, lo, _ in per_round]),
        **_ratio("spark_vs_pandas", [p / sp for p, _, sp in per_round]),
        **_ratio("local_vs_spark", [sp / lo for _, lo, sp in per_round]),
        "table_local_cpu_s": round(statistics.median(cpu["local"]), 2),
        "table_spark_cpu_s": round(statistics.median(cpu["spark"]), 2),
        "pandas_cpu_s": round(statistics.median(cpu["pandas"]), 2),
        "load": list(load_average()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of each input (default 1,000,000)")
    parser.add_argument("--cols", type=int, default=50, help="feature columns after the join (default 50)")
    parser.add_argument("--repeat", type=int, default=MIN_ROUNDS,
                        help="interleaved rounds (>= 3); medians and per-round ratios")
    args = parser.parse_args()
    result = run_table_benchmark(args.rows, args.cols, args.repeat)
    print(f"join + map + reduce, {result['rows']:,} rows x {result['cols']} columns "
          f"({result['joined_rows']:,} rows after the join)")
    print(f"  pandas (1 process)   {result['pandas_s']:8.3f} s")
    print(f"  Table LOCAL          {result['table_local_s']:8.3f} s   {result['local_vs_pandas']:.2f}x pandas speed")
    print(f"  Table SPARK local[2] {result['table_spark_s']:8.3f} s   {result['spark_vs_pandas']:.2f}x pandas speed")
    print(f"  LOCAL is {result['local_vs_spark']:.2f}x faster than SPARK local[2] (median of {result['rounds']} "
          f"rounds, min {result['local_vs_spark_min']:.2f}, max {result['local_vs_spark_max']:.2f})", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
