"""Evaluation: metrics of a model's predictions, logged per split (train, validate, test)."""

from __future__ import annotations

from kernel.base_param import BaseParam
from kernel.components.evaluation.aggregates import (
    multiclass_split_metrics,
    regression_split_metrics,
)
from kernel.components.evaluation.credit_tables import log_credit_tables, split_tables
from kernel.components.evaluation.distributed import FloatArray, binary_split_metrics
from kernel.components.evaluation.federation import FederationMetrics, log_federation_metrics
from kernel.components.evaluation.metrics import EVAL_REGRESSION
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
        self._scored: dict[str, FloatArray] | None = None
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
        if param.eval_type == "binary":
            # Aggregates only: each split's histograms travel, its rows stay where they are.
            table = data.table.select(wanted).cache()
            sums: dict[str, FloatArray] = {}
            for split, rows in split_tables(table).items():
                result, sums[split] = binary_split_metrics(
                    rows, label, predicted, param.pos_label, param.threshold, param.curve_points)
                self.tracker.log_metric(split, "evaluation", result, metric_type=param.eval_type)
            log_credit_tables(self.tracker, data.table, label, predicted, param)
            self._scored = sums
            self._federate(param)
            return None
        # Aggregates only: per split, regression sums or label-pair counts (`aggregates`).
        table = data.table.select(wanted).cache()
        for split, rows in split_tables(table).items():
            if param.eval_type == EVAL_REGRESSION:
                result = regression_split_metrics(rows, label, predicted)
            else:
                result = multiclass_split_metrics(rows, label, predicted)
            self.tracker.log_metric(split, "evaluation", result, metric_type=param.eval_type)
        return None
