"""Evaluation: metrics of a model's predictions, logged per split (train, validate, test)."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from kernel.components.evaluation.credit_tables import log_credit_tables
from kernel.components.evaluation.metrics import evaluate
from kernel.components.evaluation.param import EvaluationParam
from kernel.errors import InvalidArgument
from kernel.model_base import PREDICT_TYPE_COLUMN, LabeledTable, ModelBase


class Evaluation(ModelBase):
    """Reads only the label, score and split columns of the predictions; writes metrics."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> None:
        param = self.model_param
        assert isinstance(param, EvaluationParam)
        label = param.label_column or data.label_column
        if label is None:
            raise InvalidArgument("EvaluationParam.label_column: the data has no label column; name one")
        predicted = param.prediction_column if param.eval_type == "multi" else param.score_column
        columns = data.table.schema.names
        for name, field in ((label, "label_column"), (predicted, "score_column/prediction_column")):
            if name not in columns:
                raise InvalidArgument(f"EvaluationParam.{field}: column {name!r} is not in the data")
        wanted = [label, predicted] + ([PREDICT_TYPE_COLUMN] if PREDICT_TYPE_COLUMN in columns else [])
        rows = data.table.select(wanted).collect()
        splits = (
            rows.column(PREDICT_TYPE_COLUMN).to_numpy(zero_copy_only=False)
            if PREDICT_TYPE_COLUMN in wanted else np.full(rows.num_rows, "data", dtype=object)
        )
        y_true = rows.column(label).to_numpy(zero_copy_only=False)
        y_pred = pc.cast(rows.column(predicted), "float64").to_numpy(zero_copy_only=False)
        options: dict[str, float | int] = {}
        if param.eval_type == "binary":
            y_true = (np.asarray(y_true) == param.pos_label).astype(np.int64)
            options = {"threshold": param.threshold, "curve_points": param.curve_points}
        for split in sorted(set(splits.tolist())):
            mask = splits == split
            result = evaluate(param.eval_type, y_true[mask], y_pred[mask], **options)
            self.tracker.log_metric(str(split), "evaluation", result, metric_type=param.eval_type)
        if param.eval_type == "binary":
            log_credit_tables(self.tracker, data.table, label, predicted, param)
        return None
