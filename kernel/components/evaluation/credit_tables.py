"""Evaluation's credit-risk tables per split: gain, lift and KS by score group, precision/recall,
the confusion matrix at the threshold, and the score PSI of each split against the reference."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pyarrow as pa

from kernel.components.evaluation.param import EvaluationParam
from kernel.computing import Table
from kernel.credit.performance import performance_tables, score_psi, scored_rows
from kernel.model_base import PREDICT_TYPE_COLUMN
from kernel.stats.constants import PSI_SHIFT_BELOW, PSI_STABLE_BELOW
from kernel.tracker import Tracker

NAMESPACE: Final = "evaluation"
TABLES_SUFFIX: Final = "_tables"
SCORE_PSI: Final = "score_psi"


def _split(table: Table, split: str) -> Table:
    def member(block: pa.Table) -> np.ndarray:
        return np.asarray(block.column(PREDICT_TYPE_COLUMN).to_numpy(zero_copy_only=False) == split, dtype=bool)

    return table.filter(member)


def split_tables(table: Table) -> dict[str, Table]:
    """The rows of each split (the distinct values of the type column), or all rows as "data"."""
    if PREDICT_TYPE_COLUMN not in table.schema.names:
        return {"data": table}
    names = table.select([PREDICT_TYPE_COLUMN]).reduce(
        lambda block: set(block.column(PREDICT_TYPE_COLUMN).to_pylist()), lambda a, b: a | b)
    return {str(name): _split(table, str(name)) for name in sorted(names)}


def log_credit_tables(tracker: Tracker, table: Table, label: str, score: str, param: EvaluationParam) -> None:
    """Log `<split>_tables` for every split and, with several splits, `score_psi`."""
    splits = split_tables(table)
    scored: dict[str, Table] = {}
    for name, rows in splits.items():
        scored[name] = scored_rows(rows, label, score, param.pos_label).cache()
        tables = performance_tables(scored[name], param.threshold, param.groups, param.curve_points)
        tracker.log_metric(f"{name}{TABLES_SUFFIX}", NAMESPACE, tables, metric_type="binary_tables")
    reference = scored.get(param.psi_reference)
    others = {name: rows for name, rows in scored.items() if name != param.psi_reference}
    if reference is not None and others:
        result: dict[str, Any] = {"reference": param.psi_reference, "splits": {
            name: score_psi(reference, rows, param.groups, PSI_STABLE_BELOW, PSI_SHIFT_BELOW)
            for name, rows in others.items()}}
        tracker.log_metric(SCORE_PSI, NAMESPACE, result, metric_type="psi")
