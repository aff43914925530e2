"""The member-local credit components chained on SPARK, each output checked against pandas.

The detailed suites run on LOCAL; this one proves the same code on the SPARK backend in one
job: OneHot -> FillMissing -> Scale -> DataSplit -> Statistics, FeatureStability and Union.
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
