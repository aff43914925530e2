"""A member's part of a published model in memory: its preprocessing chain (preprocessing.py) and its share of the score.

Each function here computes exactly what the component computes in a batch predict job
(the same fitted values, the same float64 operations, the kernel's own sigmoid, tree
walk and points), on the few rows of one request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.blocks.link import sigmoid
from kernel.components.score_card.param import ScoreCardParam
from kernel.components.vert_secureboost.constants import OWNER_FIRST_PROVIDER, OWNER_LEAF
from kernel.components.vert_secureboost.tree import Forest, Objective, Tree
from kernel.credit.points import PointScale, rounded
from kernel.errors import InvalidArgument
from kernel.federation.codec import decode
from kernel.tracker import MODEL_FILE
from services.serving.constants import HORZ_LR, SCORE_CARD, VERT_LR, VERT_SECUREBOOST
from services.serving.preprocessing import FloatArray, Preprocessor, Step
from services.serving.registry import ModelPart


def read_model(path: str) -> dict[str, Any]:
    model = decode((Path(path) / MODEL_FILE).read_bytes())
    if not isinstance(model, dict):
        raise InvalidArgument(f"{path} does not hold a model object")
    return model


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
