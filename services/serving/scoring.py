"""A member's part of a published model in memory: its preprocessing chain and its share of the score.

Each function here computes exactly what the component computes in a batch predict job
(the same fitted values, the same float64 operations, the kernel's own sigmoid and tree
walk), on the few rows of one request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.blocks.link import sigmoid
from kernel.components.one_hot.one_hot import KIND_NUMBER as ONE_HOT_NUMBER
from kernel.components.score_card.param import ScoreCardParam
from kernel.components.vert_feature_binning.bins import bin_indices
from kernel.components.vert_secureboost.constants import OWNER_FIRST_PROVIDER, OWNER_LEAF
from kernel.components.vert_secureboost.tree import Forest, Objective, Tree
from kernel.credit.bins import bin_index
from kernel.credit.points import PointScale, rounded
from kernel.errors import InvalidArgument
from kernel.federation.codec import decode
from kernel.tracker import MODEL_FILE
from services.serving.constants import (
    BINNING,
    DATA_IO,
    FILL_MISSING,
    HORZ_LR,
    ONE_HOT,
    SCALE,
    SCORE_CARD,
    VERT_LR,
    VERT_SECUREBOOST,
    WOE,
)
from services.serving.registry import ModelPart

FloatArray = npt.NDArray[np.float64]


def read_model(path: str) -> dict[str, Any]:
    model = decode((Path(path) / MODEL_FILE).read_bytes())
    if not isinstance(model, dict):
        raise InvalidArgument(f"{path} does not hold a model object")
    return model


# -- preprocessing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One fitted preprocessing component (its model as the component exported it)."""

    component: str
    module: str
    model: dict[str, Any]


class _Compiled:
    """A step bound to the column layout it meets; `apply` maps a (rows, layout) matrix to the next layout."""

    def __init__(self, step: Step) -> None:
        self.step = step

    def apply(self, matrix: FloatArray, ids: list[str]) -> FloatArray:
        raise NotImplementedError


class _DataIO(_Compiled):
    """Each output column from its input position (-1: absent, a missing value), filled where the model fills."""

    def __init__(self, step: Step, position: dict[str, int]) -> None:
        super().__init__(step)
        self.features = [str(f) for f in step.model["features"]]
        fills = {str(k): float(v) for k, v in step.model["fill_values"].items()}
        self.select = np.array([position.get(f, -1) for f in self.features], dtype=np.int64)
        self.fills = np.array([fills.get(f, np.nan) for f in self.features])
        self.drop_missing = bool(step.model.get("drop_missing"))

    def apply(self, matrix: FloatArray, ids: list[str]) -> FloatArray:
        widened = np.hstack([matrix, np.full((matrix.shape[0], 1), np.nan)])
        picked = widened[:, self.select]
        result: FloatArray = np.where(np.isnan(picked), self.fills, picked)
        if self.drop_missing and np.isnan(result).any():
            row, column = (int(v[0]) for v in np.nonzero(np.isnan(result)))
            raise InvalidArgument(
                f"{self.step.component}: id {ids[row]} has no value for {self.features[column]!r}, and "
                "the model's DataIO drops such rows (a batch job would not score it either)")
        return result


def _fitted_columns(step: Step, values: dict[str, Any], position: dict[str, int]) -> list[str]:
    text = [c for c, v in values.items() if isinstance(v, str)]
    if text:
        raise InvalidArgument(f"{step.component}: text column(s) {', '.join(text)} cannot be served")
    absent = [c for c in values if c not in position]
    if absent:
        raise InvalidArgument(f"{step.component}: the rows lack the fitted column(s) {', '.join(absent)}")
    return list(values)


class _FillMissing(_Compiled):
    def __init__(self, step: Step, position: dict[str, int]) -> None:
        super().__init__(step)
        values = step.model["fill_values"]
        names = _fitted_columns(step, values, position)
        self.columns = np.array([position[c] for c in names], dtype=np.int64)
        self.fills = np.array([float(values[c]) for c in names])

    def apply(self, matrix: FloatArray, ids: list[str]) -> FloatArray:
        block = matrix[:, self.columns]
        matrix[:, self.columns] = np.where(np.isnan(block), self.fills, block)
        return matrix


class _Scale(_Compiled):
    def __init__(self, step: Step, position: dict[str, int]) -> None:
        super().__init__(step)
        offsets, spreads = step.model["offsets"], step.model["spreads"]
        names = _fitted_columns(step, offsets, position)
        self.columns = np.array([position[c] for c in names], dtype=np.int64)
        self.offsets = np.array([float(offsets[c]) for c in names])
        self.spreads = np.array([float(spreads.get(c, 1.0)) for c in names])
        self.clip = bool(step.model.get("clip", False))

    def apply(self, matrix: FloatArray, ids: list[str]) -> FloatArray:
        scaled = (matrix[:, self.columns] - self.offsets) / self.spreads
        matrix[:, self.columns] = np.clip(scaled, 0.0, 1.0) if self.clip else scaled
        return matrix


def _indicator_names(encoding: dict[str, Any]) -> list[str]:
    """A OneHot encoding's output columns in order: one per category, other, then missing if kept."""
    return [*(str(n) for n in encoding["names"]), str(encoding["other"])] + (
        [str(encoding["missing"])] if encoding.get("missing") else [])


class _OneHot(_Compiled):
    """Every encoded column replaced in place by its indicators, as the component writes them."""

    def __init__(self, step: Step, layout: list[str]) -> None:
        super().__init__(step)
        encodings: dict[str, dict[str, Any]] = step.model["encodings"]
        text = [c for c, e in encodings.items() if e["kind"] != ONE_HOT_NUMBER]
        if text:
            raise InvalidArgument(f"{step.component}: text column(s) {', '.join(text)} cannot be served "
                                  "(a request carries numbers; encode the categories as integers)")
        absent = [c for c in encodings if c not in layout]
        if absent:
            raise InvalidArgument(f"{step.component}: the rows lack the encoded column(s) {', '.join(absent)}")
        #: per input column: its position and, if encoded, its categories and whether missing has an indicator
        self.plan: list[tuple[int, FloatArray | None, bool]] = []
        self.layout: list[str] = []
        for k, name in enumerate(layout):
            encoding = encodings.get(name)
            if encoding is None:
                self.plan.append((k, None, False))
                self.layout.append(name)
            else:
                categories = np.array([float(v) for v in encoding["categories"]], dtype=np.float64)
                self.plan.append((k, categories, bool(encoding.get("missing"))))
                self.layout += _indicator_names(encoding)

    def apply(self, matrix: FloatArray, ids: list[str]) -> FloatArray:
        columns: list[FloatArray] = []
        for k, categories, keeps_missing in self.plan:
            values = matrix[:, k]
            if categories is None:
                columns.append(values)
                continue
            null = np.isnan(values)
            position = np.full(len(values), -1, dtype=np.int64)
            if len(categories):
                match = values[:, None] == categories[None, :]
                position = np.where(match.any(axis=1), np.argmax(match, axis=1), -1)
            columns += [(position == j).astype(np.float64) for j in range(len(categories))]
            columns.append(((position == -1) & ~null).astype(np.float64))
            if keeps_missing:
                columns.append(null.astype(np.float64))
        return np.column_stack(columns) if columns else np.zeros((matrix.shape[0], 0))


class _Bins(_Compiled):
    """WOE (and VertFeatureBinning's own transform): every binned column replaced by its bin's value."""

    def __init__(self, step: Step, position: dict[str, int]) -> None:
        super().__init__(step)
        model = step.model
        #: per binned column: its position, inner edges, the value of every bin (None: the bin's index)
        self.plan: list[tuple[int, FloatArray, FloatArray | None]] = []
        if step.module == WOE:
            if model.get("kind") != "woe" or not isinstance(model.get("tables"), dict):
                raise InvalidArgument(f"{step.component}: the model is not a WOE model")
            tables = {str(n): (t["edges"], t["values"]) for n, t in model["tables"].items()}
        else:
            method = str(model.get("transform_method", "none"))
            if method == "woe" and model.get("woe_withheld"):
                raise InvalidArgument(f"{step.component}: the promoter kept this provider's WOE; the binning "
                                      "cannot replace values by it (as in batch)")
            tables = {} if method == "none" else {
                str(n): (b["edges"], b["woe"] if method == "woe" else None) for n, b in model["bins"].items()}
        absent = [n for n in tables if n not in position]
        if absent:
            raise InvalidArgument(f"{step.component}: the rows lack the binned feature(s) {', '.join(absent)}")
        for name, (edges, values) in tables.items():
            self.plan.append((position[name], np.asarray(edges, dtype=np.float64),
                              None if values is None else np.asarray(values, dtype=np.float64)))

    def apply(self, matrix: FloatArray, ids: list[str]) -> FloatArray:
        woe = self.step.module == WOE
        for column, edges, values in self.plan:
            # WOE bins with kernel.credit's bin_index, the binning component with its own bin_indices.
            index = bin_index(matrix[:, column], edges) if woe else bin_indices(matrix[:, column], edges)
            matrix[:, column] = index.astype(np.float64) if values is None else values[index]
        return matrix


def _step_inputs(step: Step, needed: list[str]) -> list[str]:
    """The columns a step reads, given the columns wanted after it (in order, each once)."""
    model = step.model
    if step.module == DATA_IO:
        return [str(f) for f in model["features"]]
    if step.module == ONE_HOT:
        encodings = model["encodings"]
        sources = {name: str(column) for column, e in encodings.items() for name in _indicator_names(e)}
        wanted = [sources.get(n, n) for n in needed] + [str(c) for c in encodings]
    elif step.module == FILL_MISSING:
        wanted = needed + [str(c) for c in model["fill_values"]]
    elif step.module == SCALE:
        wanted = needed + [str(c) for c in model["offsets"]]
    elif step.module == WOE:
        wanted = needed + [str(c) for c in model["tables"]]
    elif step.module == BINNING:
        binned = [] if model.get("transform_method", "none") == "none" else [str(c) for c in model["bins"]]
        wanted = needed + binned
    else:
        raise InvalidArgument(f"{step.component}: {step.module} cannot be served")
    return list(dict.fromkeys(wanted))


def chain_columns(steps: list[Step], model_features: list[str]) -> list[str]:
    """The raw columns a chain reads: from the model's features back through every step
    (a DataIO reads its own features; OneHot reads the columns its indicators come from)."""
    needed = list(model_features)
    for step in reversed(steps):
        needed = _step_inputs(step, needed)
    return needed


class Preprocessor:
    """The chain compiled once against its column layout; applied to a (rows, raw columns) matrix.

    Every operation is the component's own, element by element (fill where missing,
    (x - offset) / spread, clip, indicator of a category, the value of a bin), so the
    values equal the batch job's bit for bit.
    """

    def __init__(self, steps: list[Step], model_features: list[str], component: str) -> None:
        self.raw_columns = chain_columns(steps, model_features)
        self.component = component
        layout = list(self.raw_columns)
        self.plan: list[_Compiled] = []
        for step in steps:
            position = {name: k for k, name in enumerate(layout)}
            if step.module == DATA_IO:
                data_io = _DataIO(step, position)
                self.plan.append(data_io)
                layout = data_io.features
            elif step.module == FILL_MISSING:
                self.plan.append(_FillMissing(step, position))
            elif step.module == SCALE:
                self.plan.append(_Scale(step, position))
            elif step.module == ONE_HOT:
                one_hot = _OneHot(step, layout)
                self.plan.append(one_hot)
                layout = one_hot.layout
            elif step.module in (WOE, BINNING):
                self.plan.append(_Bins(step, position))
            else:
                raise InvalidArgument(f"{step.component}: {step.module} cannot be served")
        position = {name: k for k, name in enumerate(layout)}
        absent = [f for f in model_features if f not in position]
        if absent:
            raise InvalidArgument(f"{component}: the preprocessed rows lack the model's feature(s) {', '.join(absent)}")
        self.features = list(model_features)
        self.final = np.array([position[f] for f in model_features], dtype=np.int64)

    def apply(self, raw: FloatArray, ids: list[str], allow_missing: bool = False) -> FloatArray:
        """Raw columns (in `raw_columns` order; NaN: missing) -> the model's feature matrix."""
        matrix = np.array(raw, dtype=np.float64, copy=True)
        for compiled in self.plan:
            matrix = compiled.apply(matrix, ids)
        features = matrix[:, self.final]
        if not allow_missing and np.isnan(features).any():
            row, column = (int(v[0]) for v in np.nonzero(np.isnan(features)))
            raise InvalidArgument(f"{self.component}: id {ids[row]} has no value for feature "
                                  f"{self.features[column]!r} and the model's preprocessing does not fill it")
        return features


# -- the model's share ------------------------------------------------------------------------
@dataclass
class LoadedPart:
    """A version's part at this member, loaded once and kept while it is served."""

    part: ModelPart
    steps: list[Step]
    model: dict[str, Any]
    features: list[str] = field(default_factory=list)
    preprocessor: Preprocessor | None = None
    # Linear models
    weights: FloatArray = field(default_factory=lambda: np.zeros(0))
    mean: FloatArray = field(default_factory=lambda: np.zeros(0))
    scale: FloatArray = field(default_factory=lambda: np.ones(0))
    intercept: float = 0.0
    threshold: float = 0.5
    # SecureBoost
    forest: Forest | None = None
    objective: str = "binary"
    init_score: float = 0.0
    #: promoter: per provider member, the split ids it owns, sorted (the bit order of its answer)
    provider_splits: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    #: provider: its splits sorted by id (features, cuts)
    split_features: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    split_cuts: FloatArray = field(default_factory=lambda: np.zeros(0))
    # ScoreCard: per feature its coefficient; this member's base points; the card's scale and rounding
    coefficients: FloatArray = field(default_factory=lambda: np.zeros(0))
    base_points: float = 0.0
    point_scale: PointScale | None = None
    points_decimals: int | None = 0

    @classmethod
    def load(cls, part: ModelPart) -> LoadedPart:
        steps = [Step(s.component, s.module, read_model(s.model_path)) for s in part.chain]
        model = read_model(part.model_path)
        loaded = cls(part, steps, model)
        loaded.threshold = float(part.params.get("threshold", 0.5))
        try:
            loaded._load_model()
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"{part.component}: the model output is not a {part.module} model ({exc})") from None
        try:
            loaded.preprocessor = Preprocessor(steps, loaded.features, part.component)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument(f"{part.component}: a preprocessing model of its chain is malformed ({exc})") from None
        return loaded

    @property
    def raw_columns(self) -> list[str]:
        assert self.preprocessor is not None
        return self.preprocessor.raw_columns

    def _load_model(self) -> None:
        model, module = self.model, self.part.module
        if module == SCORE_CARD:
            self._load_card()
            return
        self.features = [str(f) for f in model["features"]]
        if module in (VERT_LR, HORZ_LR):
            self.weights = np.asarray(model["weights"], dtype=np.float64)
            self.mean = np.asarray(model["mean"], dtype=np.float64)
            self.scale = np.asarray(model["scale"], dtype=np.float64)
            self.intercept = float(model.get("intercept", 0.0))
            if module == HORZ_LR and "threshold" in model:
                self.threshold = float(model["threshold"])
            if not len(self.weights) == len(self.mean) == len(self.scale) == len(self.features):
                raise ValueError("weights, scaling and features differ in length")
        elif module == VERT_SECUREBOOST and self.part.role == "promoter":
            trees = [Tree.from_dict(raw, f"tree {i}") for i, raw in enumerate(model["trees"])]
            self.forest = Forest(trees)
            self.objective, self.init_score = str(model["objective"]), float(model["init_score"])
            order = [str(m) for m in model["providers"]]
            for index, member in enumerate(order):
                owned = self.forest.split_id[self.forest.owner == OWNER_FIRST_PROVIDER + index]
                self.provider_splits[member] = np.unique(owned)
        elif module == VERT_SECUREBOOST:
            split_ids = np.asarray(model["split_ids"], dtype=np.int64)
            by_id = np.argsort(split_ids, kind="stable")
            self.split_features = np.asarray(model["split_features"], dtype=np.int64)[by_id]
            self.split_cuts = np.asarray(model["split_thresholds"], dtype=np.float64)[by_id]

    def _load_card(self) -> None:
        """ScoreCard: this member's card (its features' coefficients, its base points) and its scale."""
        model = self.model
        card = model["card"]
        if model.get("kind") != "score_card" or not isinstance(card, dict):
            raise ValueError("no card")
        self.features = [str(f) for f in card]
        self.coefficients = np.array([float(card[f]["coefficient"]) for f in card], dtype=np.float64)
        self.base_points = float(model["base_points"])
        self.point_scale = PointScale(float(model["base_score"]), float(model["base_odds"]), float(model["pdo"]))
        self.points_decimals = ScoreCardParam.from_dict(self.part.params).points_decimals

    def prepare(self, raw: FloatArray, ids: list[str]) -> FloatArray:
        """Raw columns -> the chain -> the model's feature matrix (trees take missing values, as in batch)."""
        assert self.preprocessor is not None
        return self.preprocessor.apply(raw, ids, allow_missing=self.part.module == VERT_SECUREBOOST)

    def linear(self, matrix: FloatArray) -> FloatArray:
        """w . x on the model's own scaling (without the intercept)."""
        result: FloatArray = ((matrix - self.mean) / self.scale) @ self.weights
        return result

    def card_points(self, matrix: FloatArray) -> FloatArray:
        """ScoreCard: the points of every feature of every row (rows, features), rounded as the card rounds."""
        scale = self.point_scale
        assert scale is not None
        columns = [rounded(scale.points(float(c), matrix[:, j]), self.points_decimals)
                   for j, c in enumerate(self.coefficients.tolist())]
        return np.column_stack(columns) if columns else np.zeros((matrix.shape[0], 0))

    def card_total(self, points: FloatArray) -> FloatArray:
        """ScoreCard: this member's points per row, its base first and then feature by feature (as in batch)."""
        total: FloatArray = np.full(points.shape[0], self.base_points)
        for j in range(points.shape[1]):
            total = total + points[:, j]
        return total

    def decisions(self, matrix: FloatArray) -> list[bytes]:
        """Provider: per row, its left/right decision at every split it owns, packed one bit each."""
        go_left = matrix[:, self.split_features] <= self.split_cuts
        packed = np.packbits(go_left, axis=1, bitorder="little")
        return [row.tobytes() for row in packed]

    # -- promoter: combining ---------------------------------------------------------------------
    def combine_linear(self, own: FloatArray, partials: list[FloatArray]) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """VertLR / HorzLR: the probability and the label, summed in the batch job's order."""
        total = np.sum([own + self.intercept, *partials], axis=0) if partials else own + self.intercept
        probability = sigmoid(np.asarray(total, dtype=np.float64))
        return probability, (probability >= self.threshold).astype(np.int64)

    def combine_card(self, own: FloatArray, partials: list[FloatArray]) -> tuple[FloatArray, FloatArray,
                                                                                  npt.NDArray[np.int64]]:
        """ScoreCard: the score in points (the members' points summed in the batch job's order),
        the event probability it stands for, and the label at the threshold."""
        scale = self.point_scale
        assert scale is not None
        total: FloatArray = np.asarray(np.sum([own, *partials], axis=0), dtype=np.float64)
        probability = scale.probability(total)
        return total, probability, (probability >= self.threshold).astype(np.int64)

    def walk_trees(self, matrix: FloatArray, answers: dict[str, list[bytes]]) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """VertSecureBoost at the promoter: every tree walked with its own and the providers' decisions."""
        forest = self.forest
        assert forest is not None
        rows = matrix.shape[0]
        bits: dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]] = {}
        for index, member in enumerate(str(m) for m in self.model["providers"]):
            splits = self.provider_splits[member]
            packed = answers.get(member, [])
            width = (len(splits) + 7) // 8
            if len(packed) != rows or any(len(row) != width for row in packed):
                raise InvalidArgument(f"VertSecureBoost: provider {member} answered {len(packed)} rows of "
                                      f"decisions, not {rows} of {len(splits)} splits each")
            unpacked = np.unpackbits(np.frombuffer(b"".join(packed), dtype=np.uint8).reshape(rows, width),
                                     axis=1, bitorder="little")[:, :len(splits)].astype(np.bool_)
            bits[OWNER_FIRST_PROVIDER + index] = (splits, unpacked)
        current = forest.start(rows)
        for _ in range(forest.depth):
            internal = forest.owner[current] != OWNER_LEAF
            if not internal.any():
                break
            _, go_left = forest.promoter_directions(current, matrix)
            for owner, (splits, decided) in bits.items():
                trees, row_index = np.nonzero(forest.owner[current] == owner)
                position = np.searchsorted(splits, forest.split_id[current[trees, row_index]])
                go_left[trees, row_index] = decided[row_index, position]
            current = forest.step(current, internal, go_left)
        raw = self.init_score + forest.value[current].sum(axis=0) if forest.roots.size else np.full(rows, self.init_score)
        score = Objective(self.objective).output(np.asarray(raw, dtype=np.float64))
        label = (score >= self.threshold).astype(np.int64) if self.objective == "binary" else np.zeros(rows, np.int64)
        return score, label
