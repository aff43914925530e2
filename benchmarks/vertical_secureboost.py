"""VertSecureBoost seconds per tree and test AUC, beside plaintext histogram boosting in the same run.

Synthetic data (`make_classification`, fixed seed): the promoter holds the label and
`--promoter-features` columns, one provider `--provider-features` columns; both run on this
machine as threads through the real task path (in-process federation, LOCAL backend),
Paillier keys of `--key-bits`. Rows split 80/20 into train and test. The plaintext reference
is xgboost when it is installed, else scikit-learn's HistGradientBoostingClassifier, with the
same trees, depth, learning rate, bins and L2 regularisation; the line before the JSON says
which library produced `xgboost_auc`.

Per tree, each member's seconds per phase are printed (the promoter's encryption,
decryption, split finding; the provider's histograms and compression; both members'
messages sent and time waiting for the other, which on one machine is the other's work).

FATE 2.0's published figure: SecureBoost 1m54s per depth-5 tree on 100k rows x (30 + 300)
features with 16 cores; compared per core (seconds x cores).

    python benchmarks/vertical_secureboost.py                          # 100k rows, 30 + 300 features
    python benchmarks/vertical_secureboost.py --rows 5000 --provider-features 50 --trees 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import load_average, report, span  # noqa: E402

from kernel.computing import ComputingSession, local_session  # noqa: E402
from kernel.inprocess_run import run_parties  # noqa: E402
from kernel.runtime_conf import output_namespace  # noqa: E402
from kernel.security.paillier import WeakKeyWarning  # noqa: E402
from kernel.storage import DataStore  # noqa: E402
from kernel.task_executor import TaskOptions  # noqa: E402

FATE_SECUREBOOST_S_PER_TREE_16_CORES = 114.0
FATE_CORES = 16
FATE_SHAPE = (100_000, 30, 300, 5)  # rows, promoter features, provider features, depth
SEED = 7
TEST_FRACTION = 0.2
LEARNING_RATE = 0.3
MAX_BIN = 32
REG_LAMBDA = 1.0
MIN_CHILD_WEIGHT = 1e-3
COMPONENT = "vert_secureboost_0"


def _synthetic(rows: int, promoter_features: int, provider_features: int) -> tuple[np.ndarray, np.ndarray]:
    width = promoter_features + provider_features
    x, y = make_classification(n_samples=rows, n_features=width, n_informative=max(2, width // 10),
                               n_redundant=max(0, width // 20), random_state=SEED)
    return x, y


def _frames(x: np.ndarray, y: np.ndarray, ids: np.ndarray, promoter_features: int) -> dict[str, pd.DataFrame]:
    promoter = pd.DataFrame(x[:, :promoter_features], columns=[f"a{i}" for i in range(promoter_features)])
    promoter.insert(0, "y", y)
    promoter.insert(0, "id", ids)
    provider = pd.DataFrame(x[:, promoter_features:], columns=[f"b{i}" for i in range(x.shape[1] - promoter_features)])
    provider.insert(0, "id", ids)
    return {"promoter": promoter, "provider": provider}


def _plaintext_reference(trees: int, depth: int) -> tuple[Any, str]:
    """xgboost when installed, else scikit-learn's histogram boosting, configured like ours."""
    try:
        import xgboost  # type: ignore[import-not-found]

        model = xgboost.XGBClassifier(n_estimators=trees, max_depth=depth, learning_rate=LEARNING_RATE,
                                      max_bin=MAX_BIN, reg_lambda=REG_LAMBDA, min_child_weight=MIN_CHILD_WEIGHT,
                                      tree_method="hist")
        return model, f"xgboost {xgboost.__version__} XGBClassifier(tree_method=hist)"
    except ImportError:
        import sklearn
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(
            max_iter=trees, max_depth=depth, learning_rate=LEARNING_RATE, max_leaf_nodes=None, min_samples_leaf=1,
            l2_regularization=REG_LAMBDA, max_bins=MAX_BIN, early_stopping=False,
        )
        return model, f"scikit-learn {sklearn.__version__} HistGradientBoostingClassifier (xgboost is not installed)"


class _Pair:
    """A promoter and one provider on this machine, each with its own storage root."""

    def __init__(self, root: Path, computing: ComputingSession) -> None:
        self.computing = computing
        self.members = {"promoter": uuid.uuid4().hex, "provider": uuid.uuid4().hex}
        self.roots = {role: root / role for role in self.members}
        self.job_id = uuid.uuid4().hex[:12]

    def upload(self, name: str, frames: dict[str, pd.DataFrame]) -> None:
        for role, frame in frames.items():
            label = "y" if "y" in frame.columns else None
            DataStore(str(self.roots[role] / "data")).write_table(
                "bench", name, pa.Table.from_pandas(frame, preserve_index=False), "id", label
            )

    def train(self, params: dict[str, Any]) -> None:
        tasks = []
        for role, member_id in self.members.items():
            conf = {
                "initiator": {"member_id": self.members["promoter"], "role": "promoter"},
                "job_parameters": {"backend": "LOCAL", "work_mode": "STANDALONE", "db_type": "PARQUET"},
                "role": {r: [m] for r, m in self.members.items()},
                "local": {"member_id": member_id, "role": role},
                "job_args": {"data": {n: {"namespace": "bench", "name": n} for n in ("train", "test")}},
                "input": {"data": {"train_data": ["args.train"], "validate_data": ["args.test"]}},
                "output": {"data": ["train"], "model": ["model"]},
                "VertSecureBoostParam": params, "module": "VertSecureBoost",
            }
            options = TaskOptions(
                job_id=self.job_id, component_name=COMPONENT, task_id=f"{COMPONENT}_{role}", role=role,
                member_id=member_id, session_id=f"{self.job_id}_{COMPONENT}", storage_root=self.roots[role],
                get_timeout=3600.0,
            )
            tasks.append((conf, options))
        run_parties(tasks, self.computing, join_timeout=24 * 3600.0)

    def metrics(self, role: str = "promoter") -> dict[str, Any]:
        path = (self.roots[role] / "tasks" / self.job_id / COMPONENT / role
                / self.members[role] / "metrics.jsonl")
        return {m["name"]: m["points"] for m in map(json.loads, path.read_text().splitlines())}

    def predictions(self) -> pd.DataFrame:
        namespace = output_namespace(self.job_id, "promoter", self.members["promoter"])
        store = DataStore(str(self.roots["promoter"] / "data"))
        return store.read(self.computing, namespace, f"{COMPONENT}.train").to_pandas()


def run_secureboost_benchmark(
    rows: int, promoter_features: int, provider_features: int, key_bits: int = 1024, depth: int = 5,
    trees: int = 2, computing: ComputingSession | None = None,
) -> dict[str, Any]:
    """Train `trees` depth-`depth` trees on synthetic data; returns seconds per tree and the AUCs.

    Keys: secureboost_s_per_tree, secureboost_auc, xgboost_auc (the plaintext reference, which
    is scikit-learn's HistGradientBoostingClassifier unless xgboost is installed),
    xgboost_library, xgboost_s_per_tree, secureboost_fate_ratio_per_core (None unless the shape is
    FATE 2.0's published one), cores.
    """
    cores = len(os.sched_getaffinity(0))
    x, y = _synthetic(rows, promoter_features, provider_features)
    ids = np.array([f"r{i:08d}" for i in range(rows)])
    train_idx, test_idx = train_test_split(np.arange(rows), test_size=TEST_FRACTION, random_state=SEED, stratify=y)
    own_session = computing is None
    session = computing if computing is not None else local_session()
    try:
        with tempfile.TemporaryDirectory(prefix="weft-secureboost-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", WeakKeyWarning)
            pair = _Pair(Path(tmp), session)
            pair.upload("train", _frames(x[train_idx], y[train_idx], ids[train_idx], promoter_features))
            pair.upload("test", _frames(x[test_idx], y[test_idx], ids[test_idx], promoter_features))
            params = {"key_bits": key_bits, "num_trees": trees, "max_depth": depth, "learning_rate": LEARNING_RATE,
                      "max_bin": MAX_BIN, "reg_lambda": REG_LAMBDA, "min_child_weight": MIN_CHILD_WEIGHT,
                      "random_seed": SEED}
            with span() as training:
                pair.train(params)
            seconds = [float(point[1]) for point in pair.metrics()["tree_seconds"]]
            phases = {role: dict(pair.metrics(role)["tree_phases"]) for role in ("promoter", "provider")}
            predictions = pair.predictions()
    finally:
        if own_session:
            session.stop()
    test_rows = predictions[predictions["type"] == "validate"]
    auc = float(roc_auc_score(test_rows["y"], test_rows["predict_score"]))
    reference, library = _plaintext_reference(trees, depth)
    start = time.perf_counter()
    reference.fit(x[train_idx], y[train_idx])
    plain_s = time.perf_counter() - start
    plain_auc = float(roc_auc_score(y[test_idx], reference.predict_proba(x[test_idx])[:, 1]))
    per_tree = float(np.mean(seconds))
    ours_core_s = per_tree * cores
    fate_core_s = FATE_SECUREBOOST_S_PER_TREE_16_CORES * FATE_CORES
    fate_shape = (rows, promoter_features, provider_features, depth) == FATE_SHAPE
    report("secureboost", f"{len(train_idx):,} train rows, {promoter_features} + {provider_features} features, "
           f"{trees} trees of depth {depth}, {key_bits}-bit keys, end to end (with predict and storage): "
           f"{training.text()}")
    if fate_shape:
        comparison = (f"FATE 2.0 SecureBoost {FATE_SECUREBOOST_S_PER_TREE_16_CORES:.0f}s on {FATE_CORES} cores = "
                      f"{fate_core_s:.0f} core-s (ratio {fate_core_s / ours_core_s:.1f}x per core)")
    else:
        comparison = "FATE 2.0's figure is for 100k rows x (30 + 300) features at depth 5: not compared at this size"
    report("secureboost", f"{per_tree:.2f}s per tree on {cores} cores = {ours_core_s:.0f} core-s (trees: "
           f"{', '.join(f'{s:.1f}s' for s in seconds)}); {comparison}")
    for t, tree_s in enumerate(seconds):
        for role in ("promoter", "provider"):
            spent = phases[role].get(t, {})
            listed = ", ".join(f"{name} {value:.2f}s" for name, value in sorted(spent.items(), key=lambda kv: -kv[1]))
            report(f"tree {t + 1} {role}", f"{tree_s:.2f}s: {listed}; other {tree_s - sum(spent.values()):.2f}s")
    report("secureboost", f"test AUC {auc:.4f}; plaintext reference AUC {plain_auc:.4f} in {plain_s:.2f}s")
    report("secureboost", f"xgboost_auc was produced by {library}")
    return {
        "secureboost_s_per_tree": round(per_tree, 3), "secureboost_auc": round(auc, 5),
        "xgboost_auc": round(plain_auc, 5), "xgboost_library": library,
        "xgboost_s_per_tree": round(plain_s / trees, 4),
        "secureboost_fate_ratio_per_core": round(fate_core_s / ours_core_s, 3) if fate_shape else None,
        "cores": cores, "secureboost_train_cpu_s": round(training.cpu_s, 2),
        "tree_phases": {role: [phases[role].get(t, {}) for t in range(len(seconds))] for role in phases},
        "secureboost_train_wall_s": round(training.wall_s, 2), "load": list(load_average()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the synthetic data set")
    parser.add_argument("--promoter-features", type=int, default=30)
    parser.add_argument("--provider-features", type=int, default=300)
    parser.add_argument("--key-bits", type=int, default=1024, choices=(1024, 2048, 3072))
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--trees", type=int, default=2, help="trees to train and time")
    args = parser.parse_args()
    result = {"rows": args.rows, "promoter_features": args.promoter_features,
              "provider_features": args.provider_features, "depth": args.depth, "trees": args.trees}
    result.update(run_secureboost_benchmark(args.rows, args.promoter_features, args.provider_features,
                                            key_bits=args.key_bits, depth=args.depth, trees=args.trees))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
