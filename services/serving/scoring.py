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
from kernel.components.vert_secureboost.constants import OWNER_FIRST_PROVIDER, OWNER_LEAF
from kernel.components.vert_secureboost.tree import Forest, Objective, Tree
from kernel.errors import InvalidArgument
from kernel.federation.codec import decode
from kernel.tracker import MODEL_FILE
from services.serving.constants import HORZ_LR, VERT_LR, VERT_SECUREBOOST
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


@dataclass(frozen=True)
class _Compiled:
    """A step bound to the column layout it meets: index arrays, fill and scale vectors."""

    step: Step
    #: DataIO: for each output column, its position in the input (-1: absent, a missing value).
    select: npt.NDArray[np.int64] | None
    #: FillMissing / Scale: the positions they change; DataIO: every output position.
    columns: npt.NDArray[np.int64]
    first: FloatArray  # fill values (NaN: no fill), or offsets
    second: FloatArray  # spreads (Scale)
    clip: bool = False
    drop_missing: bool = False


def chain_columns(steps: list[Step], model_features: list[str]) -> list[str]:
    """The raw columns a chain reads: the first DataIO's features, else the model's features."""
    for step in steps:
        if step.module == "DataIO":
            return [str(f) for f in step.model["features"]]
    return list(model_features)


class Preprocessor:
    """The chain compiled once against its column layout; applied to a (rows, raw columns) matrix.

    Every operation is the component's own, element by element (fill where missing,
    (x - offset) / spread, clip), so the values equal the batch job's bit for bit.
    """

    def __init__(self, steps: list[Step], model_features: list[str], component: str) -> None:
        self.raw_columns = chain_columns(steps, model_features)
        self.component = component
        layout = list(self.raw_columns)
        self.plan: list[_Compiled] = []
        for step in steps:
            position = {name: k for k, name in enumerate(layout)}
            if step.module == "DataIO":
                features = [str(f) for f in step.model["features"]]
                fills = {str(k): float(v) for k, v in step.model["fill_values"].items()}
                self.plan.append(_Compiled(
                    step, np.array([position.get(f, -1) for f in features], dtype=np.int64),
                    np.arange(len(features), dtype=np.int64), np.array([fills.get(f, np.nan) for f in features]),
                    np.zeros(0), drop_missing=bool(step.model.get("drop_missing"))))
                layout = features
            elif step.module in ("FillMissing", "Scale"):
                values = step.model["fill_values"] if step.module == "FillMissing" else step.model["offsets"]
                text = [c for c, v in values.items() if isinstance(v, str)]
                if text:
                    raise InvalidArgument(f"{step.component}: text column(s) {', '.join(text)} cannot be served")
                absent = [c for c in values if c not in position]
                if absent:
                    raise InvalidArgument(f"{step.component}: the rows lack the fitted column(s) {', '.join(absent)}")
                names = list(values)
                spreads = step.model["spreads"] if step.module == "Scale" else {}
                self.plan.append(_Compiled(
                    step, None, np.array([position[c] for c in names], dtype=np.int64),
                    np.array([float(values[c]) for c in names]), np.array([float(spreads.get(c, 1.0)) for c in names]),
                    clip=bool(step.model.get("clip", False))))
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
            step = compiled.step
            if compiled.select is not None:  # DataIO
                widened = np.hstack([matrix, np.full((matrix.shape[0], 1), np.nan)])
                picked = widened[:, compiled.select]
                matrix = np.where(np.isnan(picked), compiled.first, picked)
                if compiled.drop_missing and np.isnan(matrix).any():
                    row, column = (int(v[0]) for v in np.nonzero(np.isnan(matrix)))
                    raise InvalidArgument(
                        f"{step.component}: id {ids[row]} has no value for {step.model['features'][column]!r}, and "
                        "the model's DataIO drops such rows (a batch job would not score it either)")
            elif step.module == "FillMissing":
                block = matrix[:, compiled.columns]
                matrix[:, compiled.columns] = np.where(np.isnan(block), compiled.first, block)
            else:  # Scale
                scaled = (matrix[:, compiled.columns] - compiled.first) / compiled.second
                matrix[:, compiled.columns] = np.clip(scaled, 0.0, 1.0) if compiled.clip else scaled
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
        loaded.preprocessor = Preprocessor(steps, loaded.features, part.component)
        return loaded

    @property
    def raw_columns(self) -> list[str]:
        assert self.preprocessor is not None
        return self.preprocessor.raw_columns

    def _load_model(self) -> None:
        model, module = self.model, self.part.module
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

    def prepare(self, raw: FloatArray, ids: list[str]) -> FloatArray:
        """Raw columns -> the chain -> the model's feature matrix (trees take missing values, as in batch)."""
        assert self.preprocessor is not None
        return self.preprocessor.apply(raw, ids, allow_missing=self.part.module == VERT_SECUREBOOST)

    def linear(self, matrix: FloatArray) -> FloatArray:
        """w . x on the model's own scaling (without the intercept)."""
        result: FloatArray = ((matrix - self.mean) / self.scale) @ self.weights
        return result

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
