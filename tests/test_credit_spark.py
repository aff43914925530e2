"""The credit components chained on SPARK, each output checked against pandas or numpy.

The detailed suites run on LOCAL; these two jobs prove the same code on the SPARK backend:
OneHot -> FillMissing -> Scale -> DataSplit -> Statistics, FeatureStability and Union at each
member; then Sample -> VertFeatureBinning -> WOE -> VertPearson -> VertLR -> ScoreCard ->
Evaluation (its credit tables) across two members.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import StandardScaler

from kernel.computing import spark_session
from tests.credit_kit import mixed_frame
from tests.test_vert_kit import VerticalJob

pytestmark = pytest.mark.spark


def test_member_local_components_on_spark(tmp_path: Path, spark: Any) -> None:
    # Prepare: 600 rows with gaps; the provider holds a text column.
    computing = spark_session(spark=spark)
    frame = mixed_frame(600, seed=8)
    frame.loc[frame.index % 9 == 0, "normal"] = np.nan
    job = VerticalJob(tmp_path, providers=1, backend="SPARK")
    job.upload("raw", [frame[["id", "y", "normal", "heavy"]], frame[["id", "city", "level"]]])

    def step(name: str, module: str, inputs: dict[str, Any], outputs: list[str], **kw: Any) -> None:
        job.run(name, module, computing, inputs, {"data": outputs, "model": ["model"]}, timeout=300, **kw)

    # Execute
    step("one_hot_0", "OneHot", {"data": {"data": ["args.raw"]}}, ["data"], data_args=("raw",),
         role_params={"provider": {"max_categories": 2}})
    step("fill_0", "FillMissing", {"data": {"data": ["one_hot_0.data"]}}, ["data"],
         role_params={"promoter": {"method": "median"}})
    step("scale_0", "Scale", {"data": {"data": ["fill_0.data"]}}, ["data"])
    step("split_0", "DataSplit", {"data": {"data": ["scale_0.data"]}}, ["train", "validate", "test"],
         params={"train_fraction": 0.7, "test_fraction": 0.3, "random_seed": 5})
    step("statistics_0", "Statistics", {"data": {"data": ["split_0.train"]}}, ["data"],
         params={"quantiles": [0.1, 0.5, 0.9]})
    step("stability_0", "FeatureStability", {"data": {"data": ["split_0.train", "split_0.test"]}}, ["data"])
    step("union_0", "Union", {"data": {"data": ["split_0.train", "split_0.test"]}}, ["data"])

    # Assert: each step as pandas and scikit-learn compute it.
    median = frame["normal"].median()
    filled = frame[["normal", "heavy"]].assign(normal=frame["normal"].fillna(median))
    scaled = pd.DataFrame(StandardScaler().fit_transform(filled), columns=["normal", "heavy"])
    scaled.insert(0, "id", frame["id"])
    promoter = job.output(job.promoter, computing, "union_0", "data")
    np.testing.assert_allclose(promoter[["normal", "heavy"]].to_numpy(), scaled[["normal", "heavy"]].to_numpy(),
                               rtol=1e-9, atol=1e-12)
    train = job.output(job.promoter, computing, "split_0", "train")
    test = job.output(job.promoter, computing, "split_0", "test")
    assert len(train) + len(test) == 600 and not set(train["id"]) & set(test["id"])
    for value in (0, 1):
        assert (train["y"] == value).sum() == round((frame["y"] == value).sum() * 0.7)
    provider_train = job.output(job.members[1], computing, "split_0", "train")
    assert provider_train["id"].tolist() == train["id"].tolist()
    top = frame["city"].value_counts().sort_index().sort_values(ascending=False, kind="stable").index[:2]
    assert sorted(c for c in provider_train.columns if c.startswith("city_")) == sorted(
        [f"city_{c}" for c in top] + ["city_other", "city_missing"])
    summary = job.metrics(job.promoter, "statistics_0")["statistics"]
    rows = scaled.set_index("id").loc[train["id"]]
    assert summary["normal"]["mean"] == pytest.approx(rows["normal"].mean(), abs=1e-12)
    assert summary["heavy"]["quantiles"]["0.5"] == pytest.approx(rows["heavy"].median(), rel=1e-12)
    assert summary["heavy"]["skewness"] == pytest.approx(rows["heavy"].skew(), rel=1e-9)
    psi = job.metrics(job.members[1], "stability_0")["psi"]
    assert "level" in psi and psi["level"]["reading"] == "stable"


def test_federated_credit_components_on_spark(tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: 500 German credit applicants split between two members; the sample's (id, part)
    # table and the provider's points cross in messages of 64 rows, read back from several
    # scratch parts.
    import warnings

    from kernel.components.score_card import score_card
    from kernel.security.paillier import WeakKeyWarning
    from kernel.stats import partition
    from tests.credit_kit import german_members, german_numeric

    warnings.simplefilter("ignore", WeakKeyWarning)
    monkeypatch.setattr(partition, "ASSIGNMENT_STREAM_ROWS", 64)
    monkeypatch.setattr(score_card, "POINTS_STREAM_ROWS", 64)
    computing = spark_session(spark=spark)
    frame = german_numeric().iloc[:500]
    promoter, provider = german_members(frame, promoter_features=6)
    job = VerticalJob(tmp_path, providers=1, backend="SPARK")
    job.upload("raw", [promoter, provider[["id", *provider.columns[1:7]]]])

    def step(name: str, module: str, inputs: dict[str, Any], outputs: dict[str, list[str]], **kw: Any) -> None:
        job.run(name, module, computing, inputs, outputs, timeout=300, **kw)

    out = {"data": ["data"], "model": ["model"]}
    # Execute: sample, bin, WOE, correlate, fit, score, evaluate.
    step("sample_0", "Sample", {"data": {"data": ["args.raw"]}}, {"data": ["data"]}, data_args=("raw",),
         params={"method": "stratified", "fractions": {"0": 0.6, "1": 1.0}, "random_seed": 2})
    step("binning_0", "VertFeatureBinning", {"data": {"data": ["sample_0.data"]}}, out,
         params={"key_bits": 1024, "bin_num": 4})
    step("woe_0", "WOE", {"data": {"data": ["binning_0.data"]}, "model": ["binning_0.model"]}, out)
    step("pearson_0", "VertPearson", {"data": {"data": ["woe_0.data"]}}, {"data": ["data"]},
         params={"key_bits": 1024})
    step("vert_lr_0", "VertLR", {"data": {"train_data": ["woe_0.data"]}}, out,
         params={"key_bits": 1024, "max_iter": 3, "random_seed": 1, "learning_rate": 0.1, "decay": 0.0, "batch_size": -1})
    step("card_0", "ScoreCard", {"data": {"data": ["woe_0.data"]}, "model": ["vert_lr_0.model", "woe_0.model"]}, out,
         params={"points_decimals": None})
    step("evaluation_0", "Evaluation", {"data": {"data": ["card_0.data"]}}, {}, role_params={"provider": {"need_run": False}})

    # Assert: the sample's counts, the scores' probabilities equal VertLR's, tables logged,
    # and the cross-correlations those of the pooled WOE columns.
    sampled = job.output(job.promoter, computing, "sample_0", "data")
    counts = frame["y"].value_counts()
    assert (sampled["y"] == 1).sum() == counts[1] and (sampled["y"] == 0).sum() == round(counts[0] * 0.6)
    assert job.output(job.members[1], computing, "sample_0", "data")["id"].tolist() == sampled["id"].tolist()
    cards = job.output(job.promoter, computing, "card_0", "data")
    lr = job.output(job.promoter, computing, "vert_lr_0", "data")
    assert cards["id"].tolist() == lr["id"].tolist()
    np.testing.assert_allclose(cards["predict_score"], lr["predict_score"], rtol=1e-9)
    tables = job.metrics(job.promoter, "evaluation_0")["data_tables"]
    assert sum(tables["gain_table"]["rows"]) == len(sampled)
    woe = pd.merge(*[job.output(m, computing, "woe_0", "data") for m in job.members], on="id")
    cross = job.metrics(job.promoter, "pearson_0")["cross_correlation"][0]
    a, b = list(promoter.columns[2:]), list(provider.columns[1:7])
    pooled = np.nan_to_num(woe[a + b].corr().to_numpy())
    np.testing.assert_allclose(cross["matrix"], pooled[: len(a), len(a):], atol=1e-5)
