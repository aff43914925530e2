"""A VertFeatureBinning model read as bins: edges, the bin of a value, a readable label per bin.

A feature with inner edges e_1 < ... < e_{B-1} has B value bins (bin i holds
e_i <= x < e_{i+1}; bin 0 everything below e_1, bin B-1 everything from e_{B-1} up) and one
more, index B, for missing values: len(edges) + 2 bins in all, as the binning component
counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def bin_index(values: FloatArray, edges: FloatArray) -> IntArray:
    """The bin of every value; NaN goes to the missing bin, len(edges) + 1."""
    index = np.searchsorted(edges, values, side="right").astype(np.int64)
    index[np.isnan(values)] = len(edges) + 1
    return index


def bin_labels(edges: list[float]) -> list[str]:
    """'[a, b)' per value bin and 'missing' for the last."""
    bounds = ["-inf", *(f"{e:.6g}" for e in edges), "inf"]
    return [f"[{bounds[i]}, {bounds[i + 1]})" for i in range(len(edges) + 1)] + ["missing"]


@dataclass(frozen=True)
class FeatureBins:
    """One binned feature: its inner edges, and per bin the WOE (zeros when not known here)."""

    edges: list[float]
    woe: list[float]
    iv: float
    counts: list[int]

    @property
    def size(self) -> int:
        return len(self.edges) + 2


@dataclass(frozen=True)
class BinningModel:
    """What a member's binning model says: its role, its features' bins, and at the promoter
    the providers' WOE per bin by the names it knows them by."""

    role: str
    features: dict[str, FeatureBins]
    provider_woe: list[dict[str, list[float]]]
    public_names: dict[str, str]
    woe_withheld: bool


def read_binning_model(model: dict[str, Any], what: str) -> BinningModel:
    """A VertFeatureBinning model, checked; anything else is refused naming `what`."""
    bins = model.get("bins")
    if model.get("role") not in ("promoter", "provider") or not isinstance(bins, dict):
        raise InvalidArgument(f"{what}: the model input is not a VertFeatureBinning model")
    features: dict[str, FeatureBins] = {}
    try:
        for name, entry in bins.items():
            edges = [float(e) for e in entry["edges"]]
            woe = [float(w) for w in entry["woe"]]
            counts = [int(c) for c in entry.get("counts", [0] * len(woe))]
            if len(woe) != len(edges) + 2:
                raise ValueError(f"{name}: {len(woe)} WOE values for {len(edges) + 2} bins")
            features[str(name)] = FeatureBins(edges, woe, float(entry.get("iv", 0.0)), counts)
        provider_woe = [{str(n): [float(w) for w in b["woe"]] for n, b in dict(per).items()}
                        for per in model.get("provider_bins", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgument(f"{what}: the binning model is malformed ({exc})") from None
    public = {str(k): str(v) for k, v in dict(model.get("public_names", {})).items()}
    return BinningModel(str(model["role"]), features, provider_woe, public, bool(model.get("woe_withheld", False)))
