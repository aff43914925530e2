"""A whole vertical job through the task path: DataIO -> Intersection -> VertFeatureBinning ->
FeatureSelection -> VertLR -> Evaluation on the bundled breast-cancer example data."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kernel.computing import ComputingSession, local_session
from kernel.security.paillier import WeakKeyWarning
from tests.test_vert_kit import VerticalJob

EXAMPLES = Path(__file__).resolve().parent.parent / "services" / "client" / "examples"


@pytest.fixture(autouse=True)
def quiet_weak_keys() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        yield


@pytest.fixture(scope="module")
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=2)
    yield session
    session.stop()


def example(member: str, part: str) -> pd.DataFrame:
    return pd.read_csv(EXAMPLES / f"breast_{member}_{part}.csv")


def test_dataio_intersection_binning_selection_vert_lr_evaluation(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: the example data, whose ids overlap only partly between the members.
    job = VerticalJob(tmp_path, providers=1)
    job.upload("train", [example("promoter", "train"), example("provider", "train")])
    job.upload("test", [example("promoter", "test"), example("provider", "test")])
    promoter_ids = set(example("promoter", "train")["id"])
    common = promoter_ids & set(example("provider", "train")["id"])
    assert len(common) < len(promoter_ids)

    def step(name: str, module: str, inputs: dict[str, Any], outputs: dict[str, list[str]], **kw: Any) -> None:
        job.run(name, module, computing, inputs, outputs, timeout=60, **kw)

    # Execute: the training branch and the test branch, each fitted stage reused on test rows.
    step("dataio_0", "DataIO", {"data": {"data": ["args.train"]}}, {"data": ["train"], "model": ["model"]},
         params={"with_label": True, "label_name": "y"}, role_params={"provider": {"with_label": False}},
         data_args=("train",))
    step("dataio_1", "DataIO", {"data": {"data": ["args.test"]}, "model": ["dataio_0.model"]}, {"data": ["test"]},
         data_args=("test",))
    step("intersection_0", "Intersection", {"data": {"data": ["dataio_0.train"]}}, {"data": ["train"]})
    step("intersection_1", "Intersection", {"data": {"data": ["dataio_1.test"]}}, {"data": ["test"]})
    step("binning_0", "VertFeatureBinning", {"data": {"data": ["intersection_0.train"]}},
         {"data": ["train"], "model": ["model"]}, params={"key_bits": 1024, "bin_num": 8})
    step("selection_0", "FeatureSelection",
         {"data": {"data": ["binning_0.train"]}, "model": ["binning_0.model"]},
         {"data": ["train"], "model": ["model"]}, params={"iv_top_k": 18})
    step("selection_1", "FeatureSelection",
         {"data": {"data": ["intersection_1.test"]}, "model": ["selection_0.model"]}, {"data": ["test"]})
    step("vert_lr_0", "VertLR",
         {"data": {"train_data": ["selection_0.train"], "validate_data": ["selection_1.test"]}},
         {"data": ["train"], "model": ["model"]}, params={"key_bits": 1024, "max_iter": 30, "learning_rate": 0.1, "decay": 0.0, "batch_size": -1})
    step("evaluation_0", "Evaluation", {"data": {"data": ["vert_lr_0.train"]}}, {})

    # Assert: intersected rows only, 18 features in all, and a good model on the test rows.
    predictions = job.output(job.promoter, computing, "vert_lr_0", "train")
    train_rows = predictions[predictions["type"] == "train"]
    assert set(train_rows["id"]) == common
    kept = [job.metrics(m, "selection_0")["selection"]["kept"] for m in job.members]
    assert len(kept[0]) + len(kept[1]) == 18
    evaluation = job.metrics(job.promoter, "evaluation_0")
    assert evaluation["validate"]["auc"] >= 0.97
    assert evaluation["train"]["auc"] >= 0.97
