"""FeatureStability against toad's PSI over the same bins, and the stored reference reused later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import toad

from kernel.computing import local_session
from tests.credit_kit import mixed_frame
from tests.test_vert_kit import VerticalJob

BINS = 10


def reference_bins(values: pd.Series, new: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The twin's binning: exact deciles of the reference, missing values in a bin of their own."""
    present = values.dropna().to_numpy()
    edges = np.unique(np.quantile(present, np.arange(1, BINS) / BINS))
    edges = edges[edges > present.min()]

    def index(v: pd.Series) -> np.ndarray:
        out = np.searchsorted(edges, v.to_numpy(), side="right")
        out[v.isna().to_numpy()] = len(edges) + 1
        return out

    return index(values), index(new)


def test_psi_matches_toad_and_the_reference_is_reused(tmp_path: Path) -> None:
    # Prepare: a reference sample and a later one where two columns drifted.
    computing = local_session(num_partitions=3)
    reference, later = mixed_frame(3000, seed=1), mixed_frame(2000, seed=2)
    later["normal"] = later["normal"] + 0.4
    later["level"] = np.where(later["level"] == 0, 3.0, later["level"])
    later["id"] = "n" + later["id"]
    columns = [["id", "y", "normal", "heavy"], ["id", "level", "gappy"]]
    job = VerticalJob(tmp_path, providers=1)
    job.upload("reference", [reference[c] for c in columns])
    job.upload("later", [later[c] for c in columns])

    # Execute: compare the samples, then compare again from the stored reference alone.
    job.run("stability_0", "FeatureStability", computing, {"data": {"data": ["args.reference", "args.later"]}},
            {"data": ["data"], "model": ["model"]}, data_args=("reference", "later"))
    job.run("stability_1", "FeatureStability", computing,
            {"data": {"data": ["args.later"]}, "model": ["stability_0.model"]}, {"data": ["data"]},
            data_args=("later",))

    # Assert
    for member, names in ((job.members[0], ["normal", "heavy"]), (job.members[1], ["level", "gappy"])):
        report = job.metrics(member, "stability_0")["psi"]
        again = job.metrics(member, "stability_1")["psi"]
        assert sorted(report) == sorted(names)
        for name in names:
            base, new = reference_bins(reference[name], later[name])
            if set(np.unique(base)) == set(np.unique(new)):
                assert report[name]["psi"] == pytest.approx(toad.metrics.PSI(new, base), rel=1e-9)
            else:  # toad skips a bin empty on one side; here it counts as a share of 1e-4
                assert name == "level" and report[name]["psi"] > toad.metrics.PSI(new, base)
            assert again[name]["psi"] == report[name]["psi"]
    readings = {**{n: r["reading"] for n, r in job.metrics(job.members[0], "stability_0")["psi"].items()},
                **{n: r["reading"] for n, r in job.metrics(job.members[1], "stability_0")["psi"].items()}}
    assert readings == {"normal": "minor shift", "heavy": "stable", "level": "major shift", "gappy": "stable"}
    computing.stop()
