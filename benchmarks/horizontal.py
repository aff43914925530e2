"""Secure aggregation per round against plain summation, and HorzLR's accuracy against scikit-learn.

Part 1: `--members` members (default 10) each mask a `--params`-long model update (default
1M float64) for `--rounds` rounds, and the arbiter adds and unmasks them, all on one core
(the process pins itself to one CPU). Plain summation of the same float vectors is timed in
the same run, in the same rounds. `secagg_s_per_member_round` is one member's masking plus its share of the
arbiter's unmasking: mask_s + unmask_s / members (target: <= 1 s).

Part 2: HorzLR trains on breast cancer rows split between two members (fixed, stratified)
through the real task path (in-process federation), and its test AUC is set beside
scikit-learn's LogisticRegression on the pooled rows with the same L2 objective.

    python benchmarks/horizontal.py
    python benchmarks/horizontal.py --params 100000 --rounds 2     # a quick check

Each round and section prints when done (flushed), with the load average and CPU seconds;
the last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import load_average, load_text, report, span  # noqa: E402

from kernel.security.secure_aggregation import (  # noqa: E402
    MaskingClient,
    SecureAggregator,
    decode_sum,
    encode_fixed,
)

PRECISION_BITS = 24
ALPHA = 0.01


def pin_to_one_core() -> int:
    """Run on a single CPU, so the figures are per core; returns the CPU used."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def secure_aggregation(members: int, params: int, rounds: int) -> dict[str, Any]:
    names = [uuid.uuid4().hex for _ in range(members)]
    start = time.perf_counter()
    clients = [MaskingClient(name, precision_bits=PRECISION_BITS) for name in names]
    keys = {c.member_id: c.public_key() for c in clients}
    for client in clients:
        client.set_peer_keys(keys)
    key_setup_s = time.perf_counter() - start
    aggregator = SecureAggregator(names, precision_bits=PRECISION_BITS)
    rng = np.random.default_rng(0)
    mask_s: list[float] = []
    unmask_s: list[float] = []
    plain_s: list[float] = []
    exact = True
    for index in range(rounds):
        # A member's update weighted by its row count: |values| up to a few thousand.
        updates = [rng.normal(0.0, 1000.0, params) for _ in range(members)]
        masked: dict[str, Any] = {}
        for client, update in zip(clients, updates, strict=True):
            t = time.perf_counter()
            masked[client.member_id] = client.mask(update, f"round-{index}")
            mask_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        total = aggregator.unmask_sum(masked, f"round-{index}")
        unmask_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        plain = updates[0].copy()
        for update in updates[1:]:
            plain += update
        plain_s.append(time.perf_counter() - t)
        # Untimed check: the unmasked sum is exactly the sum of the members' fixed-point vectors.
        fixed = encode_fixed(updates[0], PRECISION_BITS, members)
        for update in updates[1:]:
            fixed += encode_fixed(update, PRECISION_BITS, members)
        exact = exact and bool(np.array_equal(total, decode_sum(fixed, PRECISION_BITS)))
        exact = exact and bool(np.max(np.abs(total - plain)) <= members * 2.0 ** -PRECISION_BITS)
        report(f"round {index}", f"mask {float(np.median(mask_s[-members:])):.4f}s per member, unmask "
               f"{unmask_s[-1]:.4f}s, plain sum {plain_s[-1]:.4f}s; {load_text()}")
    mask = float(np.median(mask_s))
    unmask = float(np.median(unmask_s))
    plain_sum = float(np.median(plain_s))
    # Each round times unmasking and the plain sum of the same updates back to back: one ratio per round.
    ratios = [u / p for u, p in zip(unmask_s, plain_s, strict=True)]
    return {
        "key_setup_s": key_setup_s, "mask_s_per_member": mask, "unmask_s": unmask, "plain_sum_s": plain_sum,
        "secagg_s_per_member_round": mask + unmask / members, "exact": exact,
        "ratio": float(np.median(ratios)), "ratio_min": min(ratios), "ratio_max": max(ratios),
    }


def horz_lr_against_sklearn(max_iter: int) -> dict[str, float]:
    """Train HorzLR with two members and an arbiter; the AUCs of HorzLR and scikit-learn."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, train_test_split
    from sklearn.preprocessing import StandardScaler

    from kernel.computing import local_session
    from kernel.federation.base import Party
    from kernel.inprocess_run import run_parties
    from kernel.runtime_conf import output_namespace
    from kernel.storage import DataStore
    from kernel.task_executor import TaskOptions

    data = load_breast_cancer()
    x, y = data.data, data.target
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.3, random_state=0, stratify=y)
    halves = [train_idx[part] for _, part in
              StratifiedKFold(2, shuffle=True, random_state=0).split(train_idx, y[train_idx])]
    tests = np.array_split(test_idx, 2)

    def table(rows: np.ndarray) -> pa.Table:
        columns: dict[str, Any] = {"id": [f"p{i:04d}" for i in rows], "y": y[rows]}
        columns.update({f"x{c}": x[rows, c] for c in range(x.shape[1])})
        return pa.table(columns)

    job_id = uuid.uuid4().hex[:12]
    ids = [uuid.uuid4().hex for _ in range(3)]
    roles = {"promoter": [ids[0]], "provider": [ids[1]], "arbiter": [ids[2]]}
    parties = [Party("promoter", ids[0]), Party("provider", ids[1]), Party("arbiter", ids[2])]
    with tempfile.TemporaryDirectory() as scratch:
        roots = [Path(scratch) / f"member{k}" for k in range(3)]
        for k in range(2):
            store = DataStore(str(roots[k] / "data"))
            store.write_table("bench", "train", table(halves[k]), "id", "y")
            store.write_table("bench", "test", table(tests[k]), "id", "y")
        tasks = []
        for k, party in enumerate(parties):
            data_args = {} if party.role == "arbiter" else {
                "train": {"namespace": "bench", "name": "train"}, "test": {"namespace": "bench", "name": "test"}}
            conf = {
                "initiator": {"member_id": ids[0], "role": "promoter"},
                "job_parameters": {"backend": "LOCAL", "work_mode": "STANDALONE", "db_type": "PARQUET"},
                "role": roles, "local": {"member_id": party.member_id, "role": party.role},
                "job_args": {"data": data_args},
                "input": {"data": {"train_data": ["args.train"], "validate_data": ["args.test"]}},
                "output": {"data": ["train"], "model": ["model"]},
                "HorzLRParam": {"alpha": ALPHA, "penalty": "L2", "max_iter": max_iter, "tol": 1e-6},
                "module": "HorzLR",
            }
            options = TaskOptions(job_id=job_id, component_name="horz_lr_0", task_id=f"horz_lr_0_{party.role}",
                                  role=party.role, member_id=party.member_id, session_id=f"{job_id}_horz_lr_0",
                                  storage_root=roots[k])
            tasks.append((conf, options))
        computing = local_session(num_partitions=1)
        try:
            run_parties(tasks, computing)
            frames = []
            for k in range(2):
                namespace = output_namespace(job_id, parties[k].role, parties[k].member_id)
                frames.append(DataStore(str(roots[k] / "data")).read(computing, namespace, "horz_lr_0.train").to_pandas())
        finally:
            computing.stop()
    predictions = pd.concat(frames)
    validate = predictions[predictions["type"] == "validate"]
    horz_auc = float(roc_auc_score(validate["y"], validate["predict_score"]))
    scaler = StandardScaler().fit(x[train_idx])
    model = LogisticRegression(C=1.0 / (ALPHA * len(train_idx)), max_iter=10_000)
    model.fit(scaler.transform(x[train_idx]), y[train_idx])
    sklearn_auc = float(roc_auc_score(y[test_idx], model.predict_proba(scaler.transform(x[test_idx]))[:, 1]))
    return {"horz_lr_auc": horz_auc, "sklearn_lr_auc": sklearn_auc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10, help="members masking an update each round")
    parser.add_argument("--params", type=int, default=1_000_000, help="length of the model update")
    parser.add_argument("--rounds", type=int, default=5, help="rounds timed (the median is reported)")
    parser.add_argument("--lr-rounds", type=int, default=40, help="aggregation rounds of the HorzLR run")
    args = parser.parse_args()
    cpu = pin_to_one_core()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3 (the unmask / plain-sum ratio is a median of rounds)")

    with span() as secagg:
        figures = secure_aggregation(args.members, args.params, args.rounds)
    print(f"{args.members} members, {args.params:,} parameters, {args.rounds} rounds on CPU {cpu}")
    print(f"  key agreement (all members):   {figures['key_setup_s']:8.3f} s")
    print(f"  mask, one member:              {figures['mask_s_per_member']:8.3f} s")
    print(f"  add + unmask, arbiter:         {figures['unmask_s']:8.3f} s")
    print(f"  plain float sum, arbiter:      {figures['plain_sum_s']:8.3f} s")
    print(f"  secure aggregation per member: {figures['secagg_s_per_member_round']:8.3f} s per round "
          f"(target <= 1 s), sum exact: {figures['exact']}")
    print(f"  add + unmask over plain sum:   {figures['ratio']:8.2f}x (median of {args.rounds} rounds, min "
          f"{figures['ratio_min']:.2f}, max {figures['ratio_max']:.2f})")
    report("secure aggregation", f"{secagg.text()}")
    with span() as horz:
        aucs = horz_lr_against_sklearn(args.lr_rounds)
    report("HorzLR", f"test AUC {aucs['horz_lr_auc']:.4f}, scikit-learn {aucs['sklearn_lr_auc']:.4f}; {horz.text()}")
    print(json.dumps({
        "secagg_s_per_member_round": round(figures["secagg_s_per_member_round"], 4),
        "mask_s_per_member": round(figures["mask_s_per_member"], 4),
        "unmask_s": round(figures["unmask_s"], 4),
        "plain_sum_s": round(figures["plain_sum_s"], 4),
        "arbiter_unmask_over_plain_sum": round(figures["ratio"], 2),
        "arbiter_unmask_over_plain_sum_min": round(figures["ratio_min"], 2),
        "arbiter_unmask_over_plain_sum_max": round(figures["ratio_max"], 2),
        # Members mask in parallel (each on its own machine): what one round's wall time gains.
        "round_overhead_s": round(figures["mask_s_per_member"] + figures["unmask_s"] - figures["plain_sum_s"], 4),
        "key_setup_s": round(figures["key_setup_s"], 4),
        "sum_exact": figures["exact"],
        "members": args.members,
        "params": args.params,
        "horz_lr_auc": round(aucs["horz_lr_auc"], 4),
        "sklearn_lr_auc": round(aucs["sklearn_lr_auc"], 4),
        "secagg_cpu_s": round(secagg.cpu_s, 3), "secagg_wall_s": round(secagg.wall_s, 3),
        "load": list(load_average()),
    }))


if __name__ == "__main__":
    main()
