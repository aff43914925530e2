"""Online serving on two members on this machine, beside the batch predict path for the same ids.

A local federation (`weft standalone`: each member's scheduler, executor, transfer and
serving service as its own process, members linked by mutual TLS) trains, through real
jobs, VertLR on `--lr-features` (promoter + provider, default 30 + 300) and
VertSecureBoost of `--trees` trees of depth `--depth` (default 50 x 5), publishes both,
and points the provider's serving at the rows to score. Then:

- lr / sbt:  single-request latency, one Predict at a time from a client in this process
             (promoter features in the request, the provider's part fetched over the
             transfer services), p50 and p99 of `--requests` requests after a warm-up
- batch:     BatchPredict of all `--ids` ids, interleaved with the baseline, the batch
             predict path for the same ids (DataIO -> Intersection -> VertLR predict as
             tasks of the kernel's task executor, both members as threads over the
             in-process federation, no scheduling), median predictions per second with the
             spread, and the batch path's seconds beside it

Every section prints the load average and CPU seconds of this process tree beside its
figures; the last line is JSON. The online scores are checked against the batch path's.

    python benchmarks/serving.py                      # 30 + 300 features, 50 trees of depth 5
    python benchmarks/serving.py --smoke              # tiny sizes, for the test suite
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from measure import interleaved, load_average, load_text, ratio_keys, report, span  # noqa: E402

from kernel.computing import local_session  # noqa: E402
from kernel.inprocess_run import run_parties  # noqa: E402
from kernel.runtime_conf import output_namespace  # noqa: E402
from kernel.storage import DataStore  # noqa: E402
from kernel.task_executor import TaskOptions  # noqa: E402
from services.client import standalone  # noqa: E402
from services.client.sdk import SchedulerClient, ServingClient, job_status_name  # noqa: E402

NAMESPACE = "bench"
SEED = 11
KEY_BITS = 1024


def _frames(rows: int, promoter: int, provider: int, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(rows, promoter))
    b = rng.normal(size=(rows, provider))
    logit = a[:, : max(1, promoter // 3)].sum(axis=1) - b[:, : max(1, provider // 10)].sum(axis=1) * 0.5
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    ids = np.arange(100_000, 100_000 + rows)
    left = pd.DataFrame(a, columns=[f"a{i}" for i in range(promoter)])
    left.insert(0, "y", y)
    left.insert(0, "id", ids)
    right = pd.DataFrame(b, columns=[f"b{i}" for i in range(provider)])
    right.insert(0, "id", ids)
    return {"promoter": left, "provider": right}


def _spec(promoter: str, provider: str, model: str, prefix: str, params: dict[str, Any]) -> dict[str, Any]:
    def data(side: str) -> dict[str, Any]:
        return {"data": {"train_data": {"namespace": NAMESPACE, "name": f"{prefix}_{side}_train"},
                         "test_data": {"namespace": NAMESPACE, "name": f"{prefix}_{side}_score"}}}

    return {
        "name": f"serving-bench-{prefix}",
        "initiator": {"member_id": promoter, "role": "promoter"},
        "role": {"promoter": [promoter], "provider": [provider], "arbiter": []},
        "job_parameters": {"backend": "LOCAL", "work_mode": "CLUSTER", "db_type": "PARQUET"},
        "job_args": {promoter: data("promoter"), provider: data("provider")},
        "components": {
            "dataio_0": {"module": "DataIO", "input": {"data": {"data": ["args.train_data"]}},
                         "output": {"data": ["train"], "model": ["model"]},
                         "params": {"with_label": True, "label_name": "y"},
                         "role_params": {"provider": {"with_label": False}}},
            "dataio_1": {"module": "DataIO", "input": {"data": {"data": ["args.test_data"]},
                                                       "model": ["dataio_0.model"]},
                         "output": {"data": ["test"]}},
            "intersection_0": {"module": "Intersection", "input": {"data": {"data": ["dataio_0.train"]}},
                               "output": {"data": ["train"]}},
            "intersection_1": {"module": "Intersection", "input": {"data": {"data": ["dataio_1.test"]}},
                               "output": {"data": ["test"]}},
            "model_0": {"module": model, "input": {"data": {"train_data": ["intersection_0.train"],
                                                            "validate_data": ["intersection_1.test"]}},
                        "output": {"data": ["train"], "model": ["model"]}, "params": params},
        },
    }


class Bench:
    """The running federation, its clients and the published models."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = standalone.create_federation(root / "federation", members=2, arbiter=False, db="sqlite",
                                                  backend="local")
        standalone.start(self.state, log=lambda *_: None)
        self.promoter, self.provider = self.state.members[0], self.state.members[1]
        self.jobs: dict[str, str] = {}
        self.rows: dict[str, list[tuple[str, dict[str, float]]]] = {}

    def storage(self, member: standalone.MemberState) -> Path:
        return Path(member.config_path).parent / "storage"

    def scheduler(self, member: standalone.MemberState) -> SchedulerClient:
        return SchedulerClient(member.scheduler_endpoint, timeout=3600.0, token=member.admin_token())

    def serving(self, member: standalone.MemberState) -> ServingClient:
        return ServingClient(member.serving_endpoint, timeout=600.0, token=member.admin_token())

    def upload(self, prefix: str, split: str, frames: dict[str, pd.DataFrame]) -> None:
        for side, member in (("promoter", self.promoter), ("provider", self.provider)):
            path = self.root / f"{prefix}_{side}_{split}.parquet"
            pq.write_table(pa.Table.from_pandas(frames[side], preserve_index=False), path)
            with self.scheduler(member) as client:
                client.upload(path, NAMESPACE, f"{prefix}_{side}_{split}", "id",
                              "y" if side == "promoter" else None, data_format="parquet", overwrite=True)
        if split == "score":
            promoter = frames["promoter"].drop(columns=["y"])
            names = [c for c in promoter.columns if c != "id"]
            self.rows[prefix] = [(str(int(r[0])), dict(zip(names, map(float, r[1:]), strict=True)))
                                 for r in promoter.itertuples(index=False)]

    def train(self, prefix: str, model: str, params: dict[str, Any]) -> float:
        with self.scheduler(self.promoter) as client, span() as measured:
            job_id = client.submit(_spec(self.promoter.member_id, self.provider.member_id, model, prefix, params))
            job = client.wait(job_id)
        if job_status_name(job.status) != "success":
            raise SystemExit(f"the {model} job ended {job_status_name(job.status)}: {job.message}")
        self.jobs[prefix] = job_id
        report(f"train {model}", f"job {job_id}, {measured.text()}")
        return measured.wall_s

    def publish(self, prefix: str) -> None:
        with self.serving(self.promoter) as client:
            client.publish(self.jobs[prefix], "model_0", f"bench-{prefix}")
        with self.serving(self.provider) as client:
            client.set_feature_table(f"bench-{prefix}", f"{NAMESPACE}/{prefix}_provider_score")

    def batch_path(self, prefix: str, computing: Any) -> dict[str, float]:
        """The batch predict path for the score ids: DataIO -> Intersection -> model predict, as tasks."""
        job_id = uuid.uuid4().hex[:12]
        members = {"promoter": self.promoter, "provider": self.provider}
        steps = [
            ("dataio_1", "DataIO", {"data": {"data": ["args.test_data"]}, "model": ["dataio_0.model"]}, ["test"]),
            ("intersection_1", "Intersection", {"data": {"data": ["dataio_1.test"]}}, ["test"]),
            ("model_0", "VertLR" if prefix == "lr" else "VertSecureBoost",
             {"data": {"test_data": ["intersection_1.test"]}, "model": ["model_0.model"]}, ["test"]),
        ]
        for component, module, inputs, outputs in steps:
            tasks = []
            for role, member in members.items():
                conf = {
                    "initiator": {"member_id": self.promoter.member_id, "role": "promoter"},
                    "job_parameters": {"backend": "LOCAL", "work_mode": "STANDALONE", "db_type": "PARQUET",
                                       "model_job_id": self.jobs[prefix]},
                    "role": {r: [m.member_id] for r, m in members.items()},
                    "local": {"member_id": member.member_id, "role": role},
                    "job_args": {"data": {"test_data": {"namespace": NAMESPACE, "name": f"{prefix}_{role}_score"}}},
                    "input": inputs, "output": {"data": outputs}, f"{module}Param": {}, "module": module,
                }
                options = TaskOptions(job_id=job_id, component_name=component, task_id=f"{component}_{role}",
                                      role=role, member_id=member.member_id, session_id=f"{job_id}_{component}",
                                      storage_root=self.storage(member), get_timeout=3600.0)
                tasks.append((conf, options))
            run_parties(tasks, computing, join_timeout=3600.0)
        store = DataStore(str(self.storage(self.promoter) / "data"))
        table = store.read_columns(output_namespace(job_id, "promoter", self.promoter.member_id), "model_0.test",
                                   ["id", "predict_score"])
        return {str(i): float(s) for i, s in zip(table.column("id").to_pylist(),
                                                 table.column("predict_score").to_pylist(), strict=True)}

    def stop(self) -> None:
        standalone.stop(self.state)


def latency(bench: Bench, prefix: str, requests: int, warmup: int) -> tuple[float, float, dict[str, float]]:
    """p50 and p99 in ms of single Predict calls, one at a time; the scores seen."""
    rows = bench.rows[prefix]
    seen: dict[str, float] = {}
    times: list[float] = []
    with bench.serving(bench.promoter) as client, span() as measured:
        for i in range(warmup + requests):
            row_id, features = rows[i % len(rows)]
            start = time.perf_counter()
            answer = client.predict(f"bench-{prefix}", row_id, features)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times.append(elapsed * 1000)
            seen[row_id] = answer.score
    p50 = statistics.median(times)
    p99 = float(np.percentile(times, 99))
    report(f"{prefix} latency", f"p50 {p50:.2f} ms, p99 {p99:.2f} ms over {requests} requests "
                                f"(after {warmup} warm-up); {measured.text()}")
    return p50, p99, seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000, help="training rows")
    parser.add_argument("--ids", type=int, default=2000, help="ids to score")
    parser.add_argument("--lr-features", default="30,300", help="VertLR features: promoter,provider")
    parser.add_argument("--sbt-features", default="10,20", help="VertSecureBoost features: promoter,provider")
    parser.add_argument("--trees", type=int, default=50)
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--requests", type=int, default=500, help="single requests timed per model")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the batch comparison")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the test suite's run)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows, args.ids, args.lr_features, args.sbt_features = 120, 60, "3,5", "2,3"
        args.trees, args.depth, args.requests = 2, 2, 20
    lr_a, lr_b = (int(v) for v in args.lr_features.split(","))
    sbt_a, sbt_b = (int(v) for v in args.sbt_features.split(","))
    print(f"serving benchmark: {args.rows} training rows, {args.ids} ids; VertLR {lr_a}+{lr_b} features, "
          f"VertSecureBoost {args.trees} trees of depth {args.depth} on {sbt_a}+{sbt_b}; {load_text()}", flush=True)
    total = args.rows + args.ids
    with tempfile.TemporaryDirectory(prefix="weft-serving-bench-") as temp:
        bench = Bench(Path(temp))
        try:
            for prefix, (a, b), seed in (("lr", (lr_a, lr_b), SEED), ("sbt", (sbt_a, sbt_b), SEED + 1)):
                frames = _frames(total, a, b, seed)
                bench.upload(prefix, "train", {k: v.iloc[: args.rows] for k, v in frames.items()})
                bench.upload(prefix, "score", {k: v.iloc[args.rows:] for k, v in frames.items()})
            train_lr_s = bench.train("lr", "VertLR", {"max_iter": 5, "key_bits": KEY_BITS})
            train_sbt_s = bench.train("sbt", "VertSecureBoost", {"num_trees": args.trees, "max_depth": args.depth,
                                                                 "key_bits": KEY_BITS, "max_bin": 32})
            for prefix in ("lr", "sbt"):
                bench.publish(prefix)
            warmup = min(20, args.requests)
            lr_p50, lr_p99, lr_seen = latency(bench, "lr", args.requests, warmup)
            sbt_p50, sbt_p99, sbt_seen = latency(bench, "sbt", args.requests, warmup)

            computing = local_session()
            rows = bench.rows["lr"]
            with bench.serving(bench.promoter) as client:
                def ours() -> list[Any]:
                    return client.batch_predict("bench-lr", rows)

                def theirs() -> dict[str, float]:
                    return bench.batch_path("lr", computing)

                with span() as measured:
                    rounds, online, batch = interleaved(ours, theirs, rounds=args.rounds)
            per_s = [len(rows) / s for s in rounds.ours_s]
            batch_per_s = statistics.median(per_s)
            batch_job_s = statistics.median(rounds.theirs_s)
            report("batch", f"BatchPredict {batch_per_s:.0f} predictions/s (median of {len(per_s)} rounds, min "
                            f"{min(per_s):.0f}, max {max(per_s):.0f}); the batch predict path for the same "
                            f"{len(rows)} ids: {batch_job_s:.3f} s ({len(rows) / batch_job_s:.0f} predictions/s); "
                            f"online over batch: {rounds.text()}; {measured.text()}")
            differences = [abs(a.score - batch[a.id]) for a in online]
            differences += [abs(score - batch[i]) for i, score in lr_seen.items()]
            sbt_batch = bench.batch_path("sbt", computing)
            differences += [abs(score - sbt_batch[i]) for i, score in sbt_seen.items()]
            worst = max(differences)
            report("check", f"online scores vs the batch path: largest difference {worst:.3g} over "
                            f"{len(differences)} scores")
        finally:
            bench.stop()
    result = {
        "lr_p50_ms": round(lr_p50, 3), "lr_p99_ms": round(lr_p99, 3),
        "sbt_p50_ms": round(sbt_p50, 3), "sbt_p99_ms": round(sbt_p99, 3),
        "batch_predictions_per_s": round(batch_per_s, 1),
        "batch_predictions_per_s_min": round(min(per_s), 1), "batch_predictions_per_s_max": round(max(per_s), 1),
        "batch_job_s": round(batch_job_s, 4), "batch_job_predictions_per_s": round(len(rows) / batch_job_s, 1),
        **ratio_keys("online_over_batch_job", rounds),
        "online_max_abs_diff": worst, "ids": args.ids, "requests": args.requests,
        "lr_features": lr_a + lr_b, "sbt_trees": args.trees, "sbt_depth": args.depth,
        "train_lr_s": round(train_lr_s, 2), "train_sbt_s": round(train_sbt_s, 2),
        "cpu_s": round(measured.cpu_s, 2), "load": list(load_average()),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
