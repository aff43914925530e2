"""Trees of VertSecureBoost: objectives, the Newton split search over histograms, the node table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.blocks.link import log_loss_mean, sigmoid
from kernel.components.vert_secureboost.constants import (
    MIN_CHILD_HESSIAN,
    OWNER_LEAF,
    OWNER_PROMOTER,
    PROBABILITY_EPSILON,
)
from kernel.components.vert_secureboost.data import BinArray
from kernel.errors import InvalidArgument

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Objective:
    """Loss, its gradient and hessian in the raw score, and how a raw score is reported."""

    def __init__(self, name: str) -> None:
        if name not in ("binary", "regression"):
            raise InvalidArgument(f"VertSecureBoost: unknown objective {name!r}")
        self.name = name

    def init_score_of_mean(self, mean: float) -> float:
        """The constant raw score before the first tree, from the labels' mean: log-odds of
        the prior, or the mean."""
        if self.name == "binary":
            p = float(np.clip(mean, PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON))
            return float(np.log(p / (1.0 - p)))
        return mean

    def gradients(self, score: FloatArray, labels: FloatArray) -> tuple[FloatArray, FloatArray]:
        if self.name == "binary":
            p = sigmoid(score)
            return p - labels, np.maximum(p * (1.0 - p), PROBABILITY_EPSILON)
        return score - labels, np.ones_like(score)

    def loss(self, score: FloatArray, labels: FloatArray) -> float:
        """Mean log-loss, or mean squared error."""
        if self.name == "binary":
            return log_loss_mean(score, labels)
        return float(np.mean((score - labels) ** 2))

    def output(self, score: FloatArray) -> FloatArray:
        """What predict_score reports: the probability, or the value."""
        return sigmoid(score) if self.name == "binary" else score


@dataclass(frozen=True)
class SplitSearch:
    """The split rule every member's histograms are searched with."""

    reg_lambda: float
    min_child_weight: float

    def gains(self, hist: FloatArray, bins: IntArray) -> FloatArray:
        """The gain of every split from histograms of shape (nodes, features, max bins, 2).

        Splitting feature f at bin b sends bins <= b left. Shape (nodes, features, max bins);
        -inf where no split is allowed (a side under min_child_weight, or past the last cut).
        """
        nodes, features, width, _ = hist.shape
        if features == 0 or width < 2:
            return np.full((nodes, features, width), -np.inf)
        left = np.cumsum(hist, axis=2)
        total = left[:, :, -1:, :]
        g_left, h_left = left[..., 0], left[..., 1]
        g_right, h_right = total[..., 0] - g_left, total[..., 1] - h_left
        g_all, h_all = total[..., 0], total[..., 1]
        lam = self.reg_lambda
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = 0.5 * (g_left**2 / (h_left + lam) + g_right**2 / (h_right + lam) - g_all**2 / (h_all + lam))
        least = max(self.min_child_weight, MIN_CHILD_HESSIAN)
        allowed = (h_left >= least) & (h_right >= least) & (np.arange(width)[None, None, :] < (bins - 1)[None, :, None])
        result: FloatArray = np.where(allowed & np.isfinite(gain), gain, -np.inf)
        return result

    def best(self, hist: FloatArray, bins: IntArray) -> tuple[FloatArray, IntArray, IntArray]:
        """Best split of every node from histograms of shape (nodes, features, max bins, 2).

        Returns, per node, the gain (-inf when no split is allowed), the feature and the bin.
        Of splits of equal gain, the lowest feature wins, then the lowest bin.
        """
        return self.best_of(self.gains(hist, bins))

    @staticmethod
    def best_of(gain: FloatArray) -> tuple[FloatArray, IntArray, IntArray]:
        """Per node of a (nodes, features, max bins) gain array: the best gain, its feature and bin
        (the lowest feature, then the lowest bin, of equal gains)."""
        nodes, features, width = gain.shape
        if features == 0 or width < 2:
            return np.full(nodes, -np.inf), np.zeros(nodes, np.int64), np.zeros(nodes, np.int64)
        flat = gain.reshape(nodes, -1)
        best = np.argmax(flat, axis=1)
        return flat[np.arange(nodes), best], best // width, best % width

    @staticmethod
    def ties(gain: FloatArray, best: float) -> tuple[IntArray, IntArray]:
        """Every (feature, bin) of one node's (features, max bins) gains that equals `best`,
        feature by feature, bin by bin."""
        feature, bin_ = np.nonzero(gain == best)
        return feature.astype(np.int64), bin_.astype(np.int64)

    def leaf_value(self, g_sum: FloatArray, h_sum: FloatArray, learning_rate: float) -> FloatArray:
        value: FloatArray = -learning_rate * g_sum / (h_sum + self.reg_lambda)
        return value


def fixed_point(values: FloatArray, precision_bits: int) -> FloatArray:
    """`values` rounded to multiples of 2**-precision_bits, as the encrypted gradients are.

    Sums of such values are exact in float64, in any order: the promoter's own histograms
    then hold exactly what a provider's decrypted ones would for the same rows, so a
    promoter feature and a provider feature that cut the rows alike have equal gains.
    """
    rounded: FloatArray = np.ldexp(np.rint(np.ldexp(values, precision_bits)), -precision_bits)
    return rounded


def fixed_point_integers(values: FloatArray, precision_bits: int) -> IntArray:
    """`values` in units of 2**-precision_bits, rounded to the nearest (`fixed_point` as integers)."""
    integers: IntArray = np.rint(np.ldexp(values, precision_bits)).astype(np.int64)
    return integers


def integer_sums(group: IntArray, values: IntArray, size: int) -> IntArray:
    """The sum of `values` of every group in [0, size) (`group[i]` is value i's): exact integer
    sums, the same in any order of the values and however they are split and added."""
    out = np.zeros(size, dtype=np.int64)
    if not len(group):
        return out
    order = np.argsort(group, kind="stable")
    ordered = group[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    out[ordered[starts]] = np.add.reduceat(values[order], starts)
    return out


def padded_histograms(flat: FloatArray, bins: IntArray, nodes: int) -> FloatArray:
    """(nodes, features, max bins, 2) from a feature-major, node, bin flat array of (g, h)."""
    width = int(bins.max()) if len(bins) else 1
    out = np.zeros((nodes, len(bins), width, 2))
    start = 0
    for f, count in enumerate(bins.tolist()):
        block = flat[start : start + nodes * count].reshape(nodes, count, 2)
        out[:, f, :count, :] = block
        start += nodes * count
    return out


def plain_histograms(node: IntArray, binned: BinArray, bins: IntArray, g: FloatArray, h: FloatArray,
                     nodes: int) -> FloatArray:
    """The promoter's own histograms, (nodes, features, max bins, 2), from plaintext gradients."""
    width = int(bins.max()) if len(bins) else 1
    out = np.zeros((nodes, len(bins), width, 2))
    for f in range(len(bins)):
        index = node * width + binned[:, f].astype(np.int64)
        out[:, f, :, 0] = np.bincount(index, weights=g, minlength=nodes * width).reshape(nodes, width)
        out[:, f, :, 1] = np.bincount(index, weights=h, minlength=nodes * width).reshape(nodes, width)
    return out


@dataclass
class Tree:
    """One tree as parallel arrays indexed by node id; node 0 is the root.

    owner: OWNER_LEAF, OWNER_PROMOTER, or OWNER_FIRST_PROVIDER + k for provider k.
    feature/threshold: the promoter's splits (x <= threshold goes left).
    split_id: a provider's opaque id of its split (the promoter never learns more).
    """

    owner: list[int] = field(default_factory=lambda: [OWNER_LEAF])
    feature: list[int] = field(default_factory=lambda: [-1])
    threshold: list[float] = field(default_factory=lambda: [0.0])
    split_id: list[int] = field(default_factory=lambda: [-1])
    left: list[int] = field(default_factory=lambda: [-1])
    right: list[int] = field(default_factory=lambda: [-1])
    value: list[float] = field(default_factory=lambda: [0.0])
    depth: list[int] = field(default_factory=lambda: [0])

    def split(self, node: int, owner: int, feature: int, threshold: float, split_id: int) -> tuple[int, int]:
        """Make `node` internal; returns the ids of its new left and right leaves."""
        children = []
        for _ in range(2):
            children.append(len(self.owner))
            self.owner.append(OWNER_LEAF)
            self.feature.append(-1)
            self.threshold.append(0.0)
            self.split_id.append(-1)
            self.left.append(-1)
            self.right.append(-1)
            self.value.append(0.0)
            self.depth.append(self.depth[node] + 1)
        self.owner[node], self.feature[node], self.threshold[node] = owner, feature, threshold
        self.split_id[node], self.left[node], self.right[node] = split_id, children[0], children[1]
        return children[0], children[1]

    def to_dict(self) -> dict[str, Any]:
        return {"owner": self.owner, "feature": self.feature, "threshold": self.threshold,
                "split_id": self.split_id, "left": self.left, "right": self.right, "value": self.value,
                "depth": self.depth}

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> Tree:
        keys = ("owner", "feature", "threshold", "split_id", "left", "right", "value", "depth")
        if not isinstance(raw, dict) or any(not isinstance(raw.get(k), list) for k in keys):
            raise InvalidArgument(f"VertSecureBoost: {where} is not a tree of the model")
        lengths = {len(raw[k]) for k in keys}
        if len(lengths) != 1 or not lengths.pop():
            raise InvalidArgument(f"VertSecureBoost: {where}'s node arrays differ in length")
        tree = cls(*([type_(v) for v in raw[k]] for k, type_ in zip(
            keys, (int, int, float, int, int, int, float, int), strict=True)))
        size = len(tree.owner)
        for node, owner in enumerate(tree.owner):
            if owner != OWNER_LEAF and not (node < tree.left[node] < size and node < tree.right[node] < size):
                raise InvalidArgument(f"VertSecureBoost: {where} has a node whose children are out of range")
        return tree


class Forest:
    """Every tree's nodes in one set of arrays (node ids shifted past the trees before), for
    walking all trees at once, level by level: online serving walks them here; a batch
    prediction walks them where the rows are (`state.PredictionPairs`)."""

    def __init__(self, trees: list[Tree]) -> None:
        offsets = np.cumsum([0] + [len(t.owner) for t in trees])
        self.roots: IntArray = offsets[:-1].astype(np.int64)

        def joined(name: str, dtype: type) -> npt.NDArray[Any]:
            return np.array([v for t in trees for v in getattr(t, name)], dtype=dtype)

        self.owner = joined("owner", np.int64)
        self.feature = joined("feature", np.int64)
        self.threshold = joined("threshold", np.float64)
        self.split_id = joined("split_id", np.int64)
        self.value = joined("value", np.float64)
        shift = np.repeat(offsets[:-1], [len(t.owner) for t in trees]).astype(np.int64)
        self.left = np.where(joined("left", np.int64) >= 0, joined("left", np.int64) + shift, -1)
        self.right = np.where(joined("right", np.int64) >= 0, joined("right", np.int64) + shift, -1)
        self.depth = max((max(t.depth) for t in trees), default=0)

    def start(self, rows: int) -> IntArray:
        """Every (tree, row) at its tree's root: shape (trees, rows)."""
        return np.repeat(self.roots[:, None], rows, axis=1)

    def promoter_directions(self, current: IntArray, matrix: FloatArray) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Which (tree, row) pairs sit at a promoter split, and whether each goes left (rows of `matrix`)."""

        def compare(rows: IntArray, features: IntArray, cuts: FloatArray) -> npt.NDArray[np.bool_]:
            result: npt.NDArray[np.bool_] = matrix[rows, features] <= cuts
            return result

        return self.promoter_directions_by(current, compare)

    def promoter_directions_by(
        self, current: IntArray, compare: Callable[[IntArray, IntArray, FloatArray], npt.NDArray[np.bool_]],
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """Which (tree, row) pairs sit at a promoter split, and whether each goes left.

        `compare(rows, features, thresholds)` answers, for every j, whether feature
        `features[j]` of row `rows[j]` is at most `thresholds[j]` (where the rows are).
        """
        at = self.owner[current] == OWNER_PROMOTER
        go_left = np.zeros(current.shape, dtype=np.bool_)
        trees, rows = np.nonzero(at)
        nodes = current[trees, rows]
        go_left[trees, rows] = compare(rows.astype(np.int64), self.feature[nodes], self.threshold[nodes])
        return at, go_left

    def step(self, current: IntArray, internal: npt.NDArray[np.bool_], go_left: npt.NDArray[np.bool_]) -> IntArray:
        moved: IntArray = np.where(internal, np.where(go_left, self.left[current], self.right[current]), current)
        return moved
