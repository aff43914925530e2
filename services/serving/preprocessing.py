"""A member's preprocessing chain online: each fitted component of the chain applied to a few raw rows.

Every step computes what the component computes in a batch job (the same fitted values,
the same float64 operations, element by element), so the rows the model meets online
equal the batch job's bit for bit.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from kernel.components.one_hot.one_hot import KIND_NUMBER as ONE_HOT_NUMBER
from kernel.components.vert_feature_binning.bins import bin_indices
from kernel.credit.bins import bin_index
from kernel.errors import InvalidArgument
from services.serving.constants import BINNING, DATA_IO, FILL_MISSING, ONE_HOT, SCALE, WOE

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Step:
    """One fitted preprocessing component (its model as the component exported it)."""

    component: str
    module: str
    model: dict[str, Any]


class _Compiled(abc.ABC):
    """A step bound to the column layout it meets; `apply` maps a (rows, layout) matrix to the next layout."""

    def __init__(self, step: Step) -> None:
        self.step = step

    @abc.abstractmethod
    def apply(self, matrix: FloatArray, ids: list[str]) -> FloatArray:
        """The next layout's matrix."""


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
