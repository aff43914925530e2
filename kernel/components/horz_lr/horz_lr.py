"""HorzLR: logistic regression on rows split between members; an arbiter averages masked updates.

Per round (the protocol, message by message, is in docs/algorithms/horizontal.md): every
data member starts from the global weights, trains locally for `local_epochs` passes over
its rows, and sends (n_k * w_k, n_k, n_k * loss_k) masked by secure aggregation; the
arbiter adds the masked vectors, divides by the total row count, checks convergence and
returns the new global weights. The arbiter sees sums only, never one member's update.
Before the first round, with standard scaling, the global mean and standard deviation of
every feature come from two masked sums the same way. Prediction is local at each member.
A member's rows stay on its workers: every sum is a per-partition reduce (see rows.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from kernel.blocks.constants import MODE_PREDICT, SECURE_AGGREGATION_METRIC
from kernel.blocks.link import sigmoid
from kernel.blocks.optimizers import MemberOptimizer
from kernel.blocks.payloads import PayloadCheck
from kernel.blocks.secure_sum import SecureSumArbiter, SecureSumMember
from kernel.components.horz_lr.constants import (
    METRIC_NAMESPACE_TRAIN,
    MIN_SCALE,
    PREDICT_RESULT_COLUMN,
    PREDICT_SCORE_COLUMN,
    ROUND_PREFIX_TRAIN,
    ROUND_SCALE_MEAN,
    ROUND_SCALE_VARIANCE,
)
from kernel.components.horz_lr.param import HorzLRParam
from kernel.components.horz_lr.rows import (
    Columns,
    batch_count,
    batch_sums,
    epoch_batches,
    mean_gradient,
    squared_deviations,
    table_stats,
    table_sums,
    with_row_keys,
)
from kernel.components.horz_lr.variables import HorzLRVariables
from kernel.computing import Table
from kernel.constants import ARBITER, FLOW_FIT
from kernel.errors import InvalidArgument
from kernel.features import feature_matrix
from kernel.model_base import LabeledTable, ModelBase

FloatArray = npt.NDArray[np.float64]

COMPONENT = "HorzLR"
PAYLOAD: Final = PayloadCheck(COMPONENT)


def round_id(index: int) -> str:
    return f"{ROUND_PREFIX_TRAIN}{index}"


class _HorzLRBase(ModelBase):
    is_estimator = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.features: list[str] = []
        self.weights: FloatArray = np.zeros(0)
        self.intercept = 0.0
        self.mean: FloatArray = np.zeros(0)
        self.scale: FloatArray = np.ones(0)
        self.loss_history: list[list[float]] = []
        self.converged = False
        self.masked = True
        self.trained = False

    @property
    def param(self) -> HorzLRParam:
        assert isinstance(self.model_param, HorzLRParam)
        return self.model_param

    def _record_training(self, members: int) -> None:
        self.tracker.log_metric(SECURE_AGGREGATION_METRIC, METRIC_NAMESPACE_TRAIN,
                                {"masked": self.masked, "members": members})
        self.tracker.log_metric("loss", METRIC_NAMESPACE_TRAIN, self.loss_history, metric_type="loss")
        self.tracker.log_metric("iterations", METRIC_NAMESPACE_TRAIN,
                                {"iterations": len(self.loss_history), "converged": self.converged})

    def export_model(self) -> dict[str, Any] | None:
        if not self.trained:
            return None
        return {
            "features": list(self.features), "weights": self.weights.tolist(), "intercept": self.intercept,
            "fit_intercept": self.param.fit_intercept, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
            "threshold": self.param.threshold, "loss_history": self.loss_history, "converged": self.converged,
            "masked": self.masked,
        }

    def _load(self, model: dict[str, Any]) -> None:
        try:
            features = [str(f) for f in model["features"]]
            weights = np.asarray(model["weights"], dtype=np.float64)
            mean = np.asarray(model["mean"], dtype=np.float64)
            scale = np.asarray(model["scale"], dtype=np.float64)
            intercept = float(model["intercept"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"HorzLR: the model input is not a HorzLR model (missing or bad {exc})") from None
        if not len(weights) == len(mean) == len(scale) == len(features):
            raise InvalidArgument("HorzLR: the model's weights, scaling and features differ in length")
        if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(mean)) and np.all(scale > 0)):
            raise InvalidArgument("HorzLR: the model holds non-finite weights or non-positive scales")
        self.features, self.weights, self.mean, self.scale, self.intercept = features, weights, mean, scale, intercept
        self.loss_history = [list(p) for p in model.get("loss_history", [])]
        self.converged = bool(model.get("converged", False))
        self.masked = bool(model.get("masked", True))
        self.trained = True


class HorzLRMember(_HorzLRBase):
    """A promoter or provider: holds rows with the label, trains locally, predicts locally."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> None:
        param, tv = self.param, self.ctx.variables(HorzLRVariables)
        if not self.ctx.roles.parties(ARBITER):
            raise InvalidArgument("HorzLR: the job needs an arbiter (role.arbiter) to average the members' models")
        table, label, rows, feature_sums = self._training_rows(data)
        width = len(self.features)
        group = SecureSumMember(self.ctx, tv.public_key.variable, tv.masked_sum.variable, param.precision_bits, COMPONENT)
        self.masked = group.masked
        group.hello({"features": self.features})
        group.welcome(tv.peer_keys.variable)
        self.mean, self.scale = self._scaling(group, table, rows, feature_sums)
        columns = Columns(label, tuple(self.features), self.mean, self.scale)
        self.tracker.set_progress(5.0, "features scaled")

        intercept = 1 if param.fit_intercept else 0
        dimension = width + intercept
        penalized = np.arange(dimension) < width
        optimizer = MemberOptimizer(param.optimizer, param.learning_rate, param.decay, param.decay_sqrt,
                                    param.penalty, param.alpha, penalized)
        seed = param.random_seed if param.random_seed is not None else secrets.randbits(62)
        batches = batch_count(rows, param.batch_size)
        keyed = with_row_keys(table) if batches > 1 else table
        weights = np.zeros(dimension)
        self.loss_history, self.converged = [], False
        for index in range(param.max_iter):
            local = weights
            loss_sum: float | None = None
            for epoch in range(param.local_epochs):
                if batches == 1:
                    sums = table_sums(table, columns, local)
                    if loss_sum is None:  # the first epoch starts from the global weights
                        loss_sum = sums[2]
                    local = optimizer.step(local, mean_gradient(sums, bool(intercept)))
                    continue
                if loss_sum is None:
                    loss_sum = table_sums(table, columns, weights)[2]
                grouped = epoch_batches(keyed, seed, index, epoch, batches)
                try:
                    for batch in range(batches):
                        sums = batch_sums(grouped, batch, columns, local)
                        if sums[3]:
                            local = optimizer.step(local, mean_gradient(sums, bool(intercept)))
                finally:
                    grouped.release()
            assert loss_sum is not None  # local_epochs >= 1
            group.send(np.concatenate([rows * local, [rows, loss_sum]]), round_id(index))
            answer = _global_round(group.receive(tv.aggregate.variable, (round_id(index),)), dimension, index)
            weights = answer["weights"]
            self.loss_history.append([index, answer["loss"]])
            self.converged = answer["converged"]
            self.tracker.set_progress(5.0 + 95.0 * (index + 1) / param.max_iter,
                                      f"round {index + 1}: loss {answer['loss']:.6f}")
            if self.converged:
                break
        self.weights = weights[:width]
        self.intercept = float(weights[width]) if intercept else 0.0
        self.trained = True
        self._record_training(len(group.members))

    def _scaling(self, group: SecureSumMember, table: Table, rows: int,
                 sums: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The global mean and std of every feature (masked sums), or no scaling."""
        width = len(self.features)
        if self.param.feature_scaling == "none":
            return np.zeros(width), np.ones(width)
        tv = self.ctx.variables(HorzLRVariables)
        group.send(np.concatenate([[rows], sums]), ROUND_SCALE_MEAN)
        mean = _floats(group.receive(tv.aggregate.variable, (ROUND_SCALE_MEAN,)), width, "the global feature means")
        group.send(squared_deviations(table, tuple(self.features), mean), ROUND_SCALE_VARIANCE)
        scale = _floats(group.receive(tv.aggregate.variable, (ROUND_SCALE_VARIANCE,)), width, "the global feature scales")
        if not np.all(scale > 0):
            raise InvalidArgument("HorzLR: the arbiter sent a non-positive feature scale")
        return mean, scale

    def _training_rows(self, data: LabeledTable) -> tuple[Table, str, int, FloatArray]:
        """This member's label and feature columns (cached), the label's name, the row count
        and the sum of every feature, checked in one pass over the rows."""
        label = data.label_column
        if label is None:
            raise InvalidArgument("HorzLR: the training data has no label column (DataIO with_label); "
                                  "every member of a horizontal job holds labelled rows")
        self.features = list(data.feature_columns)
        if not self.features:
            raise InvalidArgument("HorzLR: the training data has no feature columns")
        table = data.table.select([label, *self.features]).cache()
        rows, sums, bad = table_stats(table, label, tuple(self.features))
        if rows == 0:
            raise InvalidArgument("HorzLR: this member's training data has no rows")
        if bad:
            raise InvalidArgument(f"HorzLR: label column {label!r} must hold 0 and 1 only")
        return table, label, rows, sums

    def predict(self, data: LabeledTable) -> LabeledTable:
        missing = [f for f in self.features if f not in data.table.schema.names]
        if missing:
            raise InvalidArgument(f"HorzLR: the data lacks the model's feature(s) {', '.join(missing)}")
        id_column, label = data.id_column, data.label_column
        scorer, threshold = self._scorer(), self.param.threshold

        def score(block: pa.Table) -> pa.Table:
            probability = scorer(block)
            columns: dict[str, Any] = {id_column: block.column(id_column)}
            if label is not None:
                columns[label] = block.column(label)
            columns[PREDICT_SCORE_COLUMN] = pa.array(probability, type=pa.float64())
            columns[PREDICT_RESULT_COLUMN] = pa.array((probability >= threshold).astype(np.int64))
            return pa.table(columns)

        fields = [data.table.schema.field(id_column)]
        if label is not None:
            fields.append(data.table.schema.field(label))
        fields += [pa.field(PREDICT_SCORE_COLUMN, pa.float64()), pa.field(PREDICT_RESULT_COLUMN, pa.int64())]
        return LabeledTable(data.table.map_partitions(score, schema=pa.schema(fields)), label, ())

    def _scorer(self) -> Callable[[pa.Table], FloatArray]:
        """Probabilities of a block; holds only plain arrays, so Spark can ship it to executors."""
        features, mean, scale = list(self.features), self.mean.copy(), self.scale.copy()
        weights, intercept = self.weights.copy(), self.intercept

        def probabilities(block: pa.Table) -> FloatArray:
            return sigmoid(((feature_matrix(block, features, "HorzLR") - mean) / scale) @ weights + intercept)

        return probabilities

    def load_model(self, model: dict[str, Any]) -> None:
        self._load(model)
        if self.ctx.roles.parties(ARBITER):
            # An arbiter of a predict job waits for the members' hello; tell it there is no
            # training. Its task runs in the fit flow, so the hello carries the fit tag.
            flow = self.ctx.flow.flow_id
            self.ctx.flow.flow_id = FLOW_FIT
            tv = self.ctx.variables(HorzLRVariables)
            try:
                SecureSumMember(self.ctx, tv.public_key.variable, tv.masked_sum.variable,
                                self.param.precision_bits, COMPONENT).announce_predict()
            finally:
                self.ctx.flow.flow_id = flow


class HorzLRArbiter(_HorzLRBase):
    """Holds no rows: relays keys, adds the masked updates, averages, decides when to stop."""

    needs_data = False

    def coordinate(self) -> None:
        param, tv = self.param, self.ctx.variables(HorzLRVariables)
        if not param.need_run:
            return None  # the members pass their data through and send nothing
        group = SecureSumArbiter(self.ctx, tv.public_key.variable, tv.masked_sum.variable, param.precision_bits, COMPONENT)
        self.masked = group.masked
        hellos = group.gather_hellos(tv.peer_keys.variable)
        modes = {mode for mode, _ in hellos.values()}
        if modes == {MODE_PREDICT}:
            self.tracker.set_progress(100.0, "the members only predict: nothing to aggregate")
            return None
        if MODE_PREDICT in modes:
            predicting = [str(p) for p, (mode, _) in hellos.items() if mode == MODE_PREDICT]
            group.abort(tv.peer_keys.variable, (), f"member(s) {', '.join(predicting)} predict while the others train")
        self.features = self._common_features(group, hellos)
        group.welcome(tv.peer_keys.variable, None)
        width = len(self.features)
        self.mean, self.scale = self._scaling(group, width)

        intercept = 1 if param.fit_intercept else 0
        dimension = width + intercept
        weights = np.zeros(dimension)
        self.loss_history, self.converged = [], False
        for index in range(param.max_iter):
            current = round_id(index)
            total = group.collect(current, dimension + 2, tv.aggregate.variable, (current,))
            rows = total[dimension]
            if rows < 0.5:
                group.abort(tv.aggregate.variable, (current,), f"round {current!r}: the members hold no rows")
            updated, loss = total[:dimension] / rows, float(total[dimension + 1] / rows)
            self.converged = self._stop(loss, updated, weights)
            self.loss_history.append([index, loss])
            weights = updated
            group.reply(tv.aggregate.variable, {"weights": weights, "loss": loss, "converged": self.converged}, (current,))
            self.tracker.set_progress(100.0 * (index + 1) / param.max_iter, f"round {index + 1}: loss {loss:.6f}")
            if self.converged:
                break
        self.weights = weights[:width]
        self.intercept = float(weights[width]) if intercept else 0.0
        self.trained = True
        self._record_training(len(group.members))
        return None

    def _common_features(self, group: SecureSumArbiter, hellos: dict[Any, tuple[str, dict[str, Any]]]) -> list[str]:
        parties = list(hellos)
        peer_keys = self.ctx.variables(HorzLRVariables).peer_keys.variable
        first = hellos[parties[0]][1].get("features")
        if not isinstance(first, list) or not first or not all(isinstance(f, str) for f in first):
            group.abort(peer_keys, (), f"member {parties[0]} sent no feature names")
        for party in parties[1:]:
            features = hellos[party][1].get("features")
            if features != first:
                group.abort(
                    peer_keys, (),
                    f"member {party} has features {features}, member {parties[0]} has {first}; "
                    "every member must hold the same feature columns in the same order",
                )
        return [str(f) for f in first]

    def _scaling(self, group: SecureSumArbiter, width: int) -> tuple[FloatArray, FloatArray]:
        if self.param.feature_scaling == "none":
            return np.zeros(width), np.ones(width)
        tv = self.ctx.variables(HorzLRVariables)
        total = group.collect(ROUND_SCALE_MEAN, width + 1, tv.aggregate.variable, (ROUND_SCALE_MEAN,))
        rows = total[0]
        if rows < 0.5:
            group.abort(tv.aggregate.variable, (ROUND_SCALE_MEAN,), "the members hold no rows")
        mean = total[1:] / rows
        group.reply(tv.aggregate.variable, mean, (ROUND_SCALE_MEAN,))
        squares = group.collect(ROUND_SCALE_VARIANCE, width, tv.aggregate.variable, (ROUND_SCALE_VARIANCE,))
        std = np.sqrt(np.maximum(squares / rows, 0.0))
        scale = np.where(std > MIN_SCALE, std, 1.0)
        group.reply(tv.aggregate.variable, scale, (ROUND_SCALE_VARIANCE,))
        return mean, scale

    def _stop(self, loss: float, updated: FloatArray, previous: FloatArray) -> bool:
        param = self.param
        if param.early_stop == "abs":
            return loss < param.tol
        if param.early_stop == "diff" and self.loss_history:
            return abs(self.loss_history[-1][1] - loss) < param.tol
        if param.early_stop == "weight_diff":
            return float(np.linalg.norm(updated - previous)) < param.tol
        return False




def _floats(value: Any, length: int, what: str) -> FloatArray:
    return PAYLOAD.finite_floats(value, length, f"{what} from the arbiter")


def _global_round(value: Any, dimension: int, index: int) -> dict[str, Any]:
    """The arbiter's answer to a training round, checked."""
    if not isinstance(value, dict) or set(value) != {"weights", "loss", "converged"}:
        raise InvalidArgument(f"HorzLR: the arbiter's answer to round {index} must hold weights, loss and converged")
    loss = value["loss"]
    if not isinstance(loss, float | int) or isinstance(loss, bool) or not np.isfinite(loss):
        raise InvalidArgument(f"HorzLR: the arbiter's loss of round {index} must be a finite number")
    if not isinstance(value["converged"], bool):
        raise InvalidArgument(f"HorzLR: the arbiter's converged flag of round {index} must be true or false")
    weights = _floats(value["weights"], dimension, f"the global weights of round {index}")
    return {"weights": weights, "loss": float(loss), "converged": value["converged"]}
