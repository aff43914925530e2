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
#: Columns of a few rows by name: each a float64 vector (NaN: missing).
Columns = dict[str, FloatArray]


def read_model(path: str) -> dict[str, Any]:
    model = decode((Path(path) / MODEL_FILE).read_bytes())
    if not isinstance(model, dict):
        raise InvalidArgument(f"{path} does not hold a model object")
    return model


# -- preprocessing ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One fitted preprocessing component, as a function of columns."""

    component: str
    module: str
    model: dict[str, Any]

    def output_columns(self, columns: list[str]) -> list[str]:
        return list(self.model["features"]) if self.module == "DataIO" else columns

    def required(self) -> list[str]:
        """Columns this step needs from the raw data (DataIO only: it selects the features)."""
        return list(self.model["features"]) if self.module == "DataIO" else []

    def apply(self, columns: Columns, ids: list[str]) -> Columns:
        if self.module == "DataIO":
            return self._dataio(columns, ids)
        if self.module == "FillMissing":
            out = dict(columns)
            for column, value in self.model["fill_values"].items():
                if isinstance(value, str):
                    raise InvalidArgument(f"{self.component}: text column {column!r} cannot be served")
                if column not in out:
                    raise InvalidArgument(f"{self.component}: the row lacks the fitted column {column!r}")
                numbers = out[column]
                out[column] = np.where(np.isnan(numbers), float(value), numbers)
            return out
        if self.module == "Scale":
            out = dict(columns)
            offsets, spreads, clip = self.model["offsets"], self.model["spreads"], bool(self.model["clip"])
            for column in offsets:
                if column not in out:
                    raise InvalidArgument(f"{self.component}: the row lacks the fitted column {column!r}")
                scaled = (out[column] - float(offsets[column])) / float(spreads[column])
                out[column] = np.clip(scaled, 0.0, 1.0) if clip else scaled
            return out
        raise InvalidArgument(f"{self.component}: {self.module} cannot be served")

    def _dataio(self, columns: Columns, ids: list[str]) -> Columns:
        fills: dict[str, float] = {str(k): float(v) for k, v in self.model["fill_values"].items()}
        rows = len(ids)
        out: Columns = {}
        for name in self.model["features"]:
            values = columns.get(name, np.full(rows, np.nan))
            out[name] = np.where(np.isnan(values), fills[name], values) if name in fills else values
        if self.model.get("drop_missing"):
            for name, values in out.items():
                if np.isnan(values).any():
                    row = ids[int(np.argmax(np.isnan(values)))]
                    raise InvalidArgument(f"{self.component}: id {row} has no value for {name!r}, and the model's "
                                          "DataIO drops such rows (a batch job would not score it either)")
        return out


def chain_columns(steps: list[Step], model_features: list[str]) -> list[str]:
    """The raw columns a chain reads: the first DataIO's features, else the model's features."""
    for step in steps:
        required = step.required()
        if required:
            return required
    return list(model_features)


def feature_matrix_of(columns: Columns, features: list[str], component: str, ids: list[str],
                      allow_missing: bool = False) -> FloatArray:
    """The model's features as a (rows, features) matrix; a missing value is refused as in batch
    (trees take it: a missing value goes right, as in batch)."""
    if not features:
        return np.zeros((len(ids), 0))
    vectors = []
    for name in features:
        values = columns.get(name)
        if values is None:
            raise InvalidArgument(f"{component}: the row lacks the model's feature {name!r}")
        if not allow_missing and np.isnan(values).any():
            row = ids[int(np.argmax(np.isnan(values)))]
            raise InvalidArgument(f"{component}: id {row} has no value for feature {name!r} and the model's "
                                  "preprocessing does not fill it")
        vectors.append(values)
    return np.column_stack(vectors)


# -- the model's share ------------------------------------------------------------------------
@dataclass
class LoadedPart:
    """A version's part at this member, loaded once and kept while it is served."""

    part: ModelPart
    steps: list[Step]
    model: dict[str, Any]
    features: list[str] = field(default_factory=list)
    raw_columns: list[str] = field(default_factory=list)
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
        loaded.raw_columns = chain_columns(steps, loaded.features)
        return loaded

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

    def prepare(self, columns: Columns, ids: list[str]) -> FloatArray:
        """Raw columns -> the chain -> the model's feature matrix."""
        for step in self.steps:
            columns = step.apply(columns, ids)
        return feature_matrix_of(columns, self.features, self.part.component, ids,
                                 allow_missing=self.part.module == VERT_SECUREBOOST)

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
