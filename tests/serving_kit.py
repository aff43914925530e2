"""A local two-member federation (`weft standalone`) that trained VertLR and VertSecureBoost, for the serving suites.

The job: DataIO -> Intersection -> FillMissing -> Scale -> VertLR and VertSecureBoost,
trained on `train` rows and predicting the `test` rows as validate data (the batch scores
the online ones must equal). The data has missing values on both sides.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kernel.runtime_conf import output_namespace
from kernel.storage import DataStore
from services.client import standalone
from services.client.sdk import SchedulerClient, ServingClient, job_status_name

NAMESPACE = "serving"
PROMOTER_FEATURES = ("a0", "a1", "a2")
PROVIDER_FEATURES = ("b0", "b1", "b2", "b3")
TRAIN_ROWS, TEST_ROWS = 160, 40


def _write(path: Path, ids: np.ndarray, columns: dict[str, np.ndarray]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *columns])
        for i, row_id in enumerate(ids):
            writer.writerow([int(row_id), *("" if np.isnan(v[i]) else repr(float(v[i])) for v in columns.values())])
    return path


def make_data(root: Path, seed: int = 7) -> dict[str, Path]:
    """CSV files per member and split; about one value in twelve is missing."""
    rng = np.random.default_rng(seed)
    n = TRAIN_ROWS + TEST_ROWS
    ids = np.arange(1000, 1000 + n)
    a = rng.normal(size=(n, len(PROMOTER_FEATURES))) * [1.0, 5.0, 0.2] + [0.0, 10.0, -1.0]
    b = rng.normal(size=(n, len(PROVIDER_FEATURES))) * [2.0, 1.0, 0.5, 3.0]
    logit = 1.2 * a[:, 0] - 0.2 * (a[:, 1] - 10) + 0.8 * b[:, 0] - 1.5 * b[:, 2] + 0.3 * b[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    for matrix in (a, b):
        matrix[rng.random(matrix.shape) < 1 / 12] = np.nan
    files = {}
    # Horizontal: the provider holds other rows with the promoter's columns.
    h = rng.normal(size=(n, len(PROMOTER_FEATURES))) * [1.0, 5.0, 0.2] + [0.0, 10.0, -1.0]
    hy = (rng.random(n) < 1 / (1 + np.exp(-(1.2 * h[:, 0] - 0.2 * (h[:, 1] - 10))))).astype(float)
    h[rng.random(h.shape) < 1 / 12] = np.nan
    for split, rows in (("train", slice(0, TRAIN_ROWS)), ("test", slice(TRAIN_ROWS, n))):
        horizontal = {name: h[rows, k] for k, name in enumerate(PROMOTER_FEATURES)} | {"y": hy[rows]}
        files[f"horizontal_{split}"] = _write(root / f"horizontal_{split}.csv", ids[rows] + 5000, horizontal)
    for split, rows in (("train", slice(0, TRAIN_ROWS)), ("test", slice(TRAIN_ROWS, n))):
        promoter = {name: a[rows, k] for k, name in enumerate(PROMOTER_FEATURES)} | {"y": y[rows]}
        provider = {name: b[rows, k] for k, name in enumerate(PROVIDER_FEATURES)}
        files[f"promoter_{split}"] = _write(root / f"promoter_{split}.csv", ids[rows], promoter)
        files[f"provider_{split}"] = _write(root / f"provider_{split}.csv", ids[rows], provider)
    return files


def make_card_data(root: Path, seed: int = 11) -> dict[str, Path]:
    """CSV files of the scorecard job: numeric features and one integer category column per member
    (`c` at the promoter, `d` at the provider), about one value in twelve missing."""
    rng = np.random.default_rng(seed)
    n = TRAIN_ROWS + TEST_ROWS
    ids = np.arange(1000, 1000 + n)
    a = rng.normal(size=(n, len(PROMOTER_FEATURES))) * [1.0, 5.0, 0.2] + [0.0, 10.0, -1.0]
    b = rng.normal(size=(n, len(PROVIDER_FEATURES))) * [2.0, 1.0, 0.5, 3.0]
    c = rng.integers(0, 5, size=n).astype(float)
    d = rng.integers(0, 6, size=n).astype(float)
    logit = 1.2 * a[:, 0] - 0.2 * (a[:, 1] - 10) + 0.8 * b[:, 0] - 1.5 * b[:, 2] + 0.6 * (c == 1) - 0.7 * (d >= 4)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    for matrix in (a, b, c, d):
        matrix[rng.random(matrix.shape) < 1 / 12] = np.nan
    files = {}
    for split, rows in (("train", slice(0, TRAIN_ROWS)), ("test", slice(TRAIN_ROWS, n))):
        promoter = {name: a[rows, k] for k, name in enumerate(PROMOTER_FEATURES)} | {"c": c[rows], "y": y[rows]}
        provider = {name: b[rows, k] for k, name in enumerate(PROVIDER_FEATURES)} | {"d": d[rows]}
        files[f"card_promoter_{split}"] = _write(root / f"card_promoter_{split}.csv", ids[rows], promoter)
        files[f"card_provider_{split}"] = _write(root / f"card_provider_{split}.csv", ids[rows], provider)
    return files


def card_spec(promoter: str, provider: str) -> dict[str, Any]:
    """OneHot -> DataIO -> Intersection -> FillMissing -> Scale -> VertFeatureBinning -> WOE -> VertLR -> ScoreCard.

    The test rows run the fitted chain (without the binning, which passes the data) into
    VertLR's validate data and into a second ScoreCard with the first one's card."""
    def data(side: str) -> dict[str, Any]:
        return {"data": {"train_data": {"namespace": NAMESPACE, "name": f"card_{side}_train"},
                         "test_data": {"namespace": NAMESPACE, "name": f"card_{side}_test"}}}

    def step(module: str, source: str, kind: str, fitted_by: str = "", **extra: Any) -> dict[str, Any]:
        inputs: dict[str, Any] = {"data": {"data": [source]}}
        if fitted_by:
            inputs["model"] = [f"{fitted_by}.model"]
        return {"module": module, "input": inputs,
                "output": {"data": [kind], **({} if fitted_by else {"model": ["model"]})}, **extra}

    return {
        "name": "serving-kit-card",
        "initiator": {"member_id": promoter, "role": "promoter"},
        "role": {"promoter": [promoter], "provider": [provider], "arbiter": []},
        "job_parameters": {"backend": "LOCAL", "work_mode": "CLUSTER", "db_type": "PARQUET"},
        "job_args": {promoter: data("promoter"), provider: data("provider")},
        "components": {
            "onehot_0": step("OneHot", "args.train_data", "train", role_params={
                "promoter": {"columns": ["c"], "max_categories": 3}, "provider": {"columns": ["d"], "max_categories": 4}}),
            "dataio_0": step("DataIO", "onehot_0.train", "train", params={"with_label": True, "label_name": "y"},
                             role_params={"provider": {"with_label": False}}),
            "intersection_0": {"module": "Intersection", "input": {"data": {"data": ["dataio_0.train"]}},
                               "output": {"data": ["train"]}},
            "fill_missing_0": step("FillMissing", "intersection_0.train", "train"),
            "scale_0": step("Scale", "fill_missing_0.train", "train"),
            "binning_0": step("VertFeatureBinning", "scale_0.train", "train",
                              params={"method": "quantile", "bin_num": 4, "provider_woe": False}),
            "woe_0": {**step("WOE", "binning_0.train", "train"),
                      "input": {"data": {"data": ["binning_0.train"]}, "model": ["binning_0.model"]},
                      "params": {"provider_disclosure": "blinded", "random_seed": 3}},
            "onehot_1": step("OneHot", "args.test_data", "test", "onehot_0"),
            "dataio_1": step("DataIO", "onehot_1.test", "test", "dataio_0"),
            "intersection_1": {"module": "Intersection", "input": {"data": {"data": ["dataio_1.test"]}},
                               "output": {"data": ["test"]}},
            "fill_missing_1": step("FillMissing", "intersection_1.test", "test", "fill_missing_0"),
            "scale_1": step("Scale", "fill_missing_1.test", "test", "scale_0"),
            "woe_1": step("WOE", "scale_1.test", "test", "woe_0"),
            "vert_lr_0": {"module": "VertLR",
                          "input": {"data": {"train_data": ["woe_0.train"], "validate_data": ["woe_1.test"]}},
                          "output": {"data": ["train"], "model": ["model"]},
                          "params": {"max_iter": 15, "key_bits": 1024}},
            "score_card_0": {"module": "ScoreCard",
                             "input": {"data": {"data": ["woe_0.train"]},
                                       "model": ["vert_lr_0.model", "woe_0.model"]},
                             "output": {"data": ["train"], "model": ["model"]},
                             "params": {"base_score": 600, "base_odds": 50, "pdo": 20, "points_decimals": 3}},
            # The card's rounding is a parameter of the component that scores: the same as score_card_0's.
            "score_card_1": step("ScoreCard", "woe_1.test", "test", "score_card_0", params={"points_decimals": 3}),
        },
    }


def job_spec(promoter: str, provider: str) -> dict[str, Any]:
    def data(side: str) -> dict[str, Any]:
        return {"data": {"train_data": {"namespace": NAMESPACE, "name": f"{side}_train"},
                         "test_data": {"namespace": NAMESPACE, "name": f"{side}_test"}}}

    def chain(suffix: str, source: str, fitted: bool) -> dict[str, Any]:
        """DataIO -> Intersection -> FillMissing -> Scale; the test chain reuses the train chain's models."""
        kind = "train" if suffix == "0" else "test"

        def model(name: str) -> dict[str, Any]:
            return {"model": [f"{name}_0.model"]} if fitted else {}

        return {
            f"dataio_{suffix}": {"module": "DataIO", "input": {"data": {"data": [source]}, **model("dataio")},
                                 "output": {"data": [kind], "model": ["model"]},
                                 **({} if fitted else {"params": {"with_label": True, "label_name": "y"},
                                                      "role_params": {"provider": {"with_label": False}}})},
            f"intersection_{suffix}": {"module": "Intersection", "input": {"data": {"data": [f"dataio_{suffix}.{kind}"]}},
                                       "output": {"data": [kind]}},
            f"fill_missing_{suffix}": {"module": "FillMissing",
                                       "input": {"data": {"data": [f"intersection_{suffix}.{kind}"]},
                                                 **model("fill_missing")},
                                       "output": {"data": [kind], "model": ["model"]}},
            f"scale_{suffix}": {"module": "Scale", "input": {"data": {"data": [f"fill_missing_{suffix}.{kind}"]},
                                                             **model("scale")},
                                "output": {"data": [kind], "model": ["model"]}},
        }

    return {
        "name": "serving-kit",
        "initiator": {"member_id": promoter, "role": "promoter"},
        "role": {"promoter": [promoter], "provider": [provider], "arbiter": []},
        "job_parameters": {"backend": "LOCAL", "work_mode": "CLUSTER", "db_type": "PARQUET"},
        "job_args": {promoter: data("promoter"), provider: data("provider")},
        "components": {
            **chain("0", "args.train_data", fitted=False),
            **chain("1", "args.test_data", fitted=True),
            "vert_lr_0": {"module": "VertLR",
                          "input": {"data": {"train_data": ["scale_0.train"], "validate_data": ["scale_1.test"]}},
                          "output": {"data": ["train"], "model": ["model"]},
                          "params": {"max_iter": 15, "key_bits": 1024}},
            "vert_secureboost_0": {"module": "VertSecureBoost",
                                   "input": {"data": {"train_data": ["scale_0.train"],
                                                      "validate_data": ["scale_1.test"]}},
                                   "output": {"data": ["train"], "model": ["model"]},
                                   "params": {"num_trees": 3, "max_depth": 3, "key_bits": 1024, "max_bin": 16}},
        },
    }


def horizontal_spec(promoter: str, provider: str) -> dict[str, Any]:
    """DataIO (filling by mean) -> HorzLR, the promoter also arbitrating."""
    def data(side: str) -> dict[str, Any]:
        return {"data": {"train_data": {"namespace": NAMESPACE, "name": f"{side}_train"},
                         "test_data": {"namespace": NAMESPACE, "name": f"{side}_test"}}}

    return {
        "name": "serving-kit-horizontal",
        "initiator": {"member_id": promoter, "role": "promoter"},
        "role": {"promoter": [promoter], "provider": [provider], "arbiter": [promoter]},
        "job_parameters": {"backend": "LOCAL", "work_mode": "CLUSTER", "db_type": "PARQUET"},
        "job_args": {promoter: data("promoter"), provider: data("horizontal")},
        "components": {
            "dataio_0": {"module": "DataIO", "roles": ["promoter", "provider"],
                         "input": {"data": {"data": ["args.train_data"]}},
                         "output": {"data": ["train"], "model": ["model"]},
                         "params": {"with_label": True, "label_name": "y", "missing_fill_method": "mean"}},
            "dataio_1": {"module": "DataIO", "roles": ["promoter", "provider"],
                         "input": {"data": {"data": ["args.test_data"]}, "model": ["dataio_0.model"]},
                         "output": {"data": ["test"]}},
            "horz_lr_0": {"module": "HorzLR", "input": {"data": {"train_data": ["dataio_0.train"],
                                                                  "validate_data": ["dataio_1.test"]}},
                          "output": {"data": ["train"], "model": ["model"]}, "params": {"max_iter": 10}},
        },
    }


@dataclass
class Trained:
    """The running federation and what the job left."""

    state: standalone.FederationState
    job_id: str
    files: dict[str, Path]
    horizontal_job_id: str = ""

    @property
    def promoter(self) -> standalone.MemberState:
        return self.state.members[0]

    @property
    def provider(self) -> standalone.MemberState:
        return self.state.members[1]

    def serving(self, member: standalone.MemberState, token: str | None = None) -> ServingClient:
        return ServingClient(member.serving_endpoint, timeout=30.0, token=token or member.admin_token())

    def scheduler(self, member: standalone.MemberState) -> SchedulerClient:
        return SchedulerClient(member.scheduler_endpoint, timeout=60.0, token=member.admin_token())

    def batch_scores(self, component: str, job_id: str = "") -> dict[str, float]:
        """The batch job's predict_score of the validate (test) rows, by id, at the promoter."""
        import yaml

        config = yaml.safe_load(Path(self.promoter.config_path).read_text(encoding="utf-8"))
        store = DataStore(str(Path(config["data_dir"]) / "storage" / "data"))
        table = store.read_columns(output_namespace(job_id or self.job_id, "promoter", self.promoter.member_id),
                                   f"{component}.train", ["id", "predict_score", "type"])
        return {str(i): float(s) for i, s, kind in zip(table.column("id").to_pylist(),
                                                       table.column("predict_score").to_pylist(),
                                                       table.column("type").to_pylist(), strict=True)
                if kind == "validate"}

    def output_table(self, job_id: str, output: str, columns: list[str]) -> dict[str, list[Any]]:
        """Columns of a data output ("component.name") of a job at the promoter."""
        import yaml

        config = yaml.safe_load(Path(self.promoter.config_path).read_text(encoding="utf-8"))
        store = DataStore(str(Path(config["data_dir"]) / "storage" / "data"))
        table = store.read_columns(output_namespace(job_id, "promoter", self.promoter.member_id), output, columns)
        return {name: table.column(name).to_pylist() for name in columns}

    def test_rows(self, split_file: str = "promoter_test") -> list[tuple[str, dict[str, float]]]:
        """The promoter's raw test features per id (every column but id and y), a missing value left out."""
        rows = []
        with open(self.files[split_file], encoding="utf-8") as handle:
            for record in csv.DictReader(handle):
                features = {k: float(v) for k, v in record.items() if k not in ("id", "y") and v != ""}
                rows.append((record["id"], features))
        return rows

    def train_card(self) -> str:
        """Upload the scorecard job's data and run it to success; its job id."""
        root = Path(self.files["promoter_test"]).parent
        self.files.update(make_card_data(root))
        for member, side in ((self.promoter, "promoter"), (self.provider, "provider")):
            with self.scheduler(member) as client:
                for split in ("train", "test"):
                    client.upload(self.files[f"card_{side}_{split}"], NAMESPACE, f"card_{side}_{split}", "id",
                                  "y" if side == "promoter" else None, overwrite=True)
        with self.scheduler(self.promoter) as client:
            job_id = client.submit(card_spec(self.promoter.member_id, self.provider.member_id))
            job = client.wait(job_id)
            if job_status_name(job.status) != "success":
                raise AssertionError(f"the scorecard job ended {job_status_name(job.status)}: {job.message}")
        return job_id


def train(root: Path) -> Trained:
    """Start two members, upload the data, run the job to success."""
    files = make_data(root)
    state = standalone.create_federation(root / "federation", members=2, arbiter=False, db="sqlite", backend="local")
    standalone.start(state, log=lambda *_: None)
    trained = Trained(state, "", files)
    try:
        for member, side in ((trained.promoter, "promoter"), (trained.provider, "provider")):
            with trained.scheduler(member) as client:
                for split in ("train", "test"):
                    client.upload(files[f"{side}_{split}"], NAMESPACE, f"{side}_{split}", "id",
                                  "y" if side == "promoter" else None, overwrite=True)
        with trained.scheduler(trained.provider) as client:
            for split in ("train", "test"):
                client.upload(files[f"horizontal_{split}"], NAMESPACE, f"horizontal_{split}", "id", "y",
                              overwrite=True)
        with trained.scheduler(trained.promoter) as client:
            ids = (trained.promoter.member_id, trained.provider.member_id)
            trained.job_id = client.submit(job_spec(*ids))
            trained.horizontal_job_id = client.submit(horizontal_spec(*ids))
            for job_id in (trained.job_id, trained.horizontal_job_id):
                job = client.wait(job_id)
                if job_status_name(job.status) != "success":
                    raise AssertionError(f"the serving kit's job ended {job_status_name(job.status)}: {job.message}")
    except BaseException:
        standalone.stop(state)
        raise
    return trained
