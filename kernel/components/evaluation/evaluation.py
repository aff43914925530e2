"""Evaluation: metrics of a model's predictions, logged per split (train, validate, test)."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from kernel.base_param import BaseParam
from kernel.components.evaluation.credit_tables import log_credit_tables
from kernel.components.evaluation.federation import (
    FederationMetrics,
    Scored,
    log_federation_metrics,
)
from kernel.components.evaluation.metrics import evaluate
from kernel.components.evaluation.param import EvaluationParam
from kernel.components.evaluation.variables import EvaluationVariables
from kernel.errors import InvalidArgument
from kernel.model_base import PREDICT_TYPE_COLUMN, LabeledTable, ModelBase, TaskArgs, TaskOutputs


class Evaluation(ModelBase):
    """Reads only the label, score and split columns of the predictions; writes metrics.

    In a horizontal job (Evaluation at the promoter and at providers, each with labelled
    predictions) it also logs the federation's metrics, from masked sums of score
    histograms (`kernel.components.evaluation.federation`).
    """

    def run(self, params: BaseParam, args: TaskArgs) -> TaskOutputs:
        self._scored: dict[str, Scored] | None = None
        self._federation_done = False
        outputs = super().run(params, args)
        if not self._federation_done and isinstance(params, EvaluationParam) and params.eval_type == "binary":
            # No rows scored here (a vertical job's provider, need_run false): the promoter still waits to hear it.
            self._federate(params)
        return outputs

    def _federate(self, param: EvaluationParam) -> None:
        self._federation_done = True
        federation = FederationMetrics(self.ctx, self.ctx.variables(EvaluationVariables), param.threshold)
        log_federation_metrics(self.ctx, federation.run(self._scored))

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
        scored: dict[str, Scored] = {}
        for split in sorted(set(splits.tolist())):
            mask = splits == split
            result = evaluate(param.eval_type, y_true[mask], y_pred[mask], **options)
            self.tracker.log_metric(str(split), "evaluation", result, metric_type=param.eval_type)
            scored[str(split)] = Scored(np.asarray(y_true[mask]) == 1, np.asarray(y_pred[mask], dtype=np.float64))
        if param.eval_type == "binary":
            log_credit_tables(self.tracker, data.table, label, predicted, param)
            self._scored = scored
            self._federate(param)
        return None
