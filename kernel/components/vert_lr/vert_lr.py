"""VertLR: logistic regression on features split by columns; the promoter holds the label and key.

Per mini-batch (the protocol, message by message, is in docs/algorithms/vert_lr.md):
providers send their partial scores u_k = X_k w_k; the promoter computes the residual
d = sigmoid(z) - y, sends it Paillier-encrypted; each provider computes X_k^T [[d]] plus
an encrypted random mask; the promoter decrypts the masked sums and returns them; each
provider removes its mask and updates its own weights. No arbiter takes part.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from kernel.blocks.link import log_loss_sum, sigmoid
from kernel.blocks.optimizers import MemberOptimizer
from kernel.blocks.payloads import PayloadCheck
from kernel.blocks.table_stream import receive_table, send_table
from kernel.components.vert_lr.batches import (
    BatchPlan,
    KeyArray,
    Scaling,
    column_std,
    encrypted_gradient_sum,
    epoch_batches,
    gather_batch,
    plain_gradient_sum,
    table_stats,
    with_row_keys,
)
from kernel.components.vert_lr.constants import (
    FEATURE_PRECISION_BITS_RAW,
    FEATURE_PRECISION_BITS_SCALED,
    MASK_STATISTICAL_BITS,
    METRIC_NAMESPACE_TRAIN,
    MIN_SCALE,
    PREDICT_RESULT_COLUMN,
    PREDICT_SCORE_COLUMN,
    PREDICT_STREAM_ROWS,
    PROMOTER_SCORE_COLUMN,
    PROVIDER_SCORE_COLUMN,
)
from kernel.components.vert_lr.param import VertLRParam
from kernel.components.vert_lr.variables import VertLRVariables
from kernel.computing import Table
from kernel.computing.table import BlockGroups
from kernel.constants import BACKEND_LOCAL, PROVIDER
from kernel.errors import InvalidArgument
from kernel.features import feature_matrix
from kernel.model_base import LabeledTable, ModelBase
from kernel.security.paillier import (
    EncryptedVector,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
)

FloatArray = npt.NDArray[np.float64]

PAYLOAD: Final = PayloadCheck("VertLR")


class _VertLRBase(ModelBase):
    is_estimator = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.features: list[str] = []
        self.weights: FloatArray = np.zeros(0)
        self.mean: FloatArray = np.zeros(0)
        self.scale: FloatArray = np.ones(0)
        self.variables = self.ctx.variables(VertLRVariables)

    @property
    def param(self) -> VertLRParam:
        assert isinstance(self.model_param, VertLRParam)
        return self.model_param

    @property
    def _paillier_workers(self) -> int | None:
        # LOCAL blocks run on threads of this process: each may use the param's threads. On
        # Spark every executor core already multiplies a partition of its own.
        return self.param.workers if self.ctx.computing.backend == BACKEND_LOCAL else 1

    # -- data -------------------------------------------------------------------------------
    def _training_table(self, data: LabeledTable, with_label: bool) -> tuple[Table, int, str]:
        """The training rows with their row keys (cached where they are), their count and the
        digest of their ids; sets the features and their scaling. Only sums reach the driver."""
        self.features = list(data.feature_columns)
        label = data.label_column
        if with_label and label is None:
            raise InvalidArgument("VertLR: the promoter's training data has no label column (DataIO with_label)")
        columns = [data.id_column] + ([label] if with_label and label else []) + self.features
        table = with_row_keys(data.table, columns)
        features = tuple(self.features)
        rows, digest, mean, bad_labels = table_stats(table, features, label if with_label else None)
        if bad_labels:
            raise InvalidArgument(f"VertLR: label column {label!r} must hold 0 and 1 only")
        if self.param.feature_scaling == "standard" and rows:
            self.mean = mean
            std = column_std(table, features, mean, rows)
            self.scale = np.where(std > MIN_SCALE, std, 1.0)
        else:
            self.mean, self.scale = np.zeros(len(self.features)), np.ones(len(self.features))
        return table, rows, digest

    def _scaling(self) -> Scaling:
        return Scaling(tuple(self.features), self.mean.copy(), self.scale.copy())

    def _linear_scorer(self, weights: FloatArray) -> Callable[[pa.Table], FloatArray]:
        """A function of a block giving its scaled features times `weights`; it holds only
        plain arrays, so Spark can ship it to executors."""
        features, mean, scale = list(self.features), self.mean.copy(), self.scale.copy()

        def score(block: pa.Table) -> FloatArray:
            result: FloatArray = ((feature_matrix(block, features, "VertLR") - mean) / scale) @ weights
            return result

        return score

    def _check_predict_features(self, data: LabeledTable) -> None:
        missing = [f for f in self.features if f not in data.table.schema.names]
        if missing:
            raise InvalidArgument(f"VertLR: the data lacks the model's feature(s) {', '.join(missing)}")

    # -- model ------------------------------------------------------------------------------
    def _base_model(self) -> dict[str, Any]:
        return {
            "features": list(self.features), "weights": self.weights[: len(self.features)].tolist(),
            "mean": self.mean.tolist(), "scale": self.scale.tolist(),
        }

    def _load_base(self, model: dict[str, Any]) -> None:
        try:
            self.features = [str(f) for f in model["features"]]
            weights = np.asarray(model["weights"], dtype=np.float64)
            self.mean = np.asarray(model["mean"], dtype=np.float64)
            self.scale = np.asarray(model["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"VertLR: the model input is not a VertLR model ({exc})") from None
        if not len(weights) == len(self.mean) == len(self.scale) == len(self.features):
            raise InvalidArgument("VertLR: the model's weights, scaling and features differ in length")
        self.weights = weights


class VertLRPromoter(_VertLRBase):
    """Holds the label, the intercept and the Paillier private key; drives every iteration."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intercept = 0.0
        self.loss_history: list[list[float]] = []
        self.converged = False

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> None:
        param, tv = self.param, self.variables
        table, rows, digest = self._training_table(data, with_label=True)
        label = data.label_column
        width = len(self.features)
        if rows == 0:
            raise InvalidArgument("VertLR: the training data has no rows")
        providers = self.ctx.roles.parties(PROVIDER)
        seed = param.random_seed if param.random_seed is not None else secrets.randbits(62)
        batch_size = rows if param.batch_size == -1 else min(param.batch_size, rows)
        batches = -(-rows // batch_size)
        private_key: PaillierPrivateKey | None = None
        if providers:
            public_key, private_key = generate_keypair(param.key_bits)
            tv.pubkey.remote(public_key)
            tv.alignment.remote({"rows": rows, "digest": digest, "seed": seed,
                                 "batch_size": batch_size, "max_iter": param.max_iter})
            for k, ack in enumerate(tv.alignment_ack.get_all()):
                if ack.get("aligned") is not True:
                    raise InvalidArgument(
                        f"VertLR: provider {k}'s rows do not match the promoter's {rows} ids; "
                        "run Intersection on both members' data first"
                    )
        intercept = 1 if param.fit_intercept else 0
        weights = np.zeros(width + intercept)
        penalized = np.arange(width + intercept) < width
        optimizer = MemberOptimizer(param.optimizer, param.learning_rate, param.decay, param.decay_sqrt,
                                    param.penalty, param.alpha, penalized)
        scaling = self._scaling()
        self.loss_history, self.converged = [], False
        started = time.perf_counter()
        for epoch, epoch_scope in tv.iterations(param.max_iter):
            epoch_loss = 0.0
            grouped = epoch_batches(table, seed, epoch, batches)
            for batch in range(batches):
                scope, plan = epoch_scope.at(batch), BatchPlan(seed, epoch, batches, batch)
                offset = float(weights[width]) if intercept else 0.0
                keys, z, y = gather_batch(grouped, plan, scaling, weights[:width], offset, label)
                if not len(keys):
                    continue  # every member draws the same empty batch and skips it
                for k, forward in enumerate(scope.provider_forward.get_all()):
                    z = z + _vector(forward, len(y), f"provider {k}'s provider_forward")
                residual = sigmoid(z) - y
                epoch_loss += log_loss_sum(z, y)
                if private_key is not None:
                    encrypted = EncryptedVector.encrypt(
                        private_key, residual, precision_bits=param.residual_precision_bits, workers=param.workers
                    )
                    scope.encrypted_residual.remote(encrypted)
                gradient = plain_gradient_sum(grouped, plan, scaling, keys, residual) / len(y)
                if intercept:
                    gradient = np.append(gradient, residual.mean())
                weights = optimizer.step(weights, gradient)
                if private_key is not None:
                    self._unwrap_gradients(private_key, scope)
            grouped.release()
            loss = epoch_loss / rows
            self.converged = self._stop(loss)
            self.loss_history.append([epoch, loss])
            if providers:
                epoch_scope.converged.remote(self.converged)
            self.tracker.set_progress(100.0 * (epoch + 1) / param.max_iter, f"epoch {epoch + 1}: loss {loss:.6f}")
            if self.converged:
                break
        self.weights = weights[:width]
        self.intercept = float(weights[width]) if intercept else 0.0
        self.tracker.log_metric("loss", METRIC_NAMESPACE_TRAIN, self.loss_history, metric_type="loss")
        epochs = len(self.loss_history)
        self.tracker.log_metric("iterations", METRIC_NAMESPACE_TRAIN, {
            "iterations": epochs, "converged": self.converged,
            "seconds_per_epoch": (time.perf_counter() - started) / epochs,
        })

    def _unwrap_gradients(self, private_key: PaillierPrivateKey, scope: VertLRVariables) -> None:
        """Decrypt every provider's masked X^T [[d]] and send the plaintext integers back."""
        for k, masked in enumerate(scope.masked_gradient.get_all()):
            if masked.public_key != private_key.public_key:
                raise InvalidArgument(f"VertLR: provider {k}'s masked_gradient is not a vector under our key")
            scope.decrypted_masked_gradient.remote(
                masked.decrypt_integers(private_key, workers=self.param.workers), idx=k
            )

    def _stop(self, loss: float) -> bool:
        param = self.param
        if param.early_stop == "abs":
            return loss < param.tol
        if param.early_stop == "diff" and self.loss_history:
            return abs(self.loss_history[-1][1] - loss) < param.tol
        return False

    def predict(self, data: LabeledTable) -> LabeledTable:
        self._check_predict_features(data)
        id_column, label = data.id_column, data.label_column
        scorer, intercept = self._linear_scorer(self.weights), self.intercept

        def own_score(block: pa.Table) -> pa.Table:
            columns: dict[str, Any] = {id_column: block.column(id_column)}
            if label is not None:
                columns[label] = block.column(label)
            columns[PROMOTER_SCORE_COLUMN] = pa.array(scorer(block) + intercept)
            return pa.table(columns)

        fields = [data.table.schema.field(id_column)]
        if label is not None:
            fields.append(data.table.schema.field(label))
        fields.append(pa.field(PROMOTER_SCORE_COLUMN, pa.float64()))
        scores = data.table.map_partitions(own_score, schema=pa.schema(fields))
        score_columns = [PROMOTER_SCORE_COLUMN]
        for k in range(len(self.ctx.roles.parties(PROVIDER))):
            name = f"{PROVIDER_SCORE_COLUMN}_{k}"
            scores = scores.join(self._provider_scores(k, data, name))
            score_columns.append(name)
        expected = data.table.count()
        if score_columns[1:] and scores.count() != expected:
            raise InvalidArgument(
                f"VertLR: {expected - scores.count()} of the promoter's {expected} rows have no score from "
                "every provider; run Intersection on the prediction data too"
            )
        threshold = self.param.threshold

        def finish(block: pa.Table) -> pa.Table:
            total = np.sum([block.column(c).to_numpy() for c in score_columns], axis=0)
            probability = sigmoid(np.asarray(total, dtype=np.float64))
            columns: dict[str, Any] = {id_column: block.column(id_column)}
            if label is not None:
                columns[label] = block.column(label)
            columns[PREDICT_SCORE_COLUMN] = pa.array(probability)
            columns[PREDICT_RESULT_COLUMN] = pa.array((probability >= threshold).astype(np.int64))
            return pa.table(columns)

        out_fields = fields[:-1] + [pa.field(PREDICT_SCORE_COLUMN, pa.float64()),
                                    pa.field(PREDICT_RESULT_COLUMN, pa.int64())]
        result = scores.map_partitions(finish, schema=pa.schema(out_fields))
        return LabeledTable(result, label, ())

    def _provider_scores(self, k: int, data: LabeledTable, name: str) -> Table:
        """Provider k's stream of (id, score) tables, each checked, written part by part to the
        scratch area and read back as a Table of this session (the driver holds one message)."""
        id_column = data.id_column
        id_type = data.table.schema.field(id_column).type
        schema = pa.schema([pa.field(id_column, id_type), pa.field(name, pa.float64())])
        # One part directory per flow (train, validate, ...): a SPARK table reads its parts lazily.
        part = f"vert_lr_scores.{self.ctx.flow.flow_id}.{k}"
        scores, _ = receive_table(
            lambda index: self.variables.at(index).predict_forward.get(idx=k),
            lambda forward, index: self._checked_scores(forward, k, id_type, id_column, name),
            self.ctx.scratch(), self.ctx.computing, part, schema,
        )
        return scores

    @staticmethod
    def _checked_scores(forward: pa.Table, k: int, id_type: pa.DataType, id_column: str, name: str) -> pa.Table:
        if forward.num_columns != 2:
            raise InvalidArgument(f"VertLR: provider {k}'s predict_forward must be a table of id and score")
        if forward.schema.field(0).type != id_type:
            raise InvalidArgument(
                f"VertLR: provider {k}'s ids are {forward.schema.field(0).type}, the promoter's are {id_type}"
            )
        score = forward.column(1)
        if not pa.types.is_floating(score.type):
            raise InvalidArgument(f"VertLR: provider {k}'s scores must be floats")
        return pa.table({id_column: forward.column(0), name: pc.cast(score, pa.float64())})

    def export_model(self) -> dict[str, Any]:
        return {
            **self._base_model(), "role": "promoter", "intercept": self.intercept,
            "fit_intercept": self.param.fit_intercept, "loss_history": self.loss_history,
            "converged": self.converged,
        }

    def load_model(self, model: dict[str, Any]) -> None:
        self._load_base(model)
        if model.get("role") != "promoter":
            raise InvalidArgument("VertLR: the promoter needs the promoter's model")
        self.intercept = float(model.get("intercept", 0.0))
        self.loss_history = [list(p) for p in model.get("loss_history", [])]
        self.converged = bool(model.get("converged", False))


class VertLRProvider(_VertLRBase):
    """Holds some features and their weights; never sees a label or a residual in the clear."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> None:
        param, tv = self.param, self.variables
        table, rows, digest = self._training_table(data, with_label=False)
        width = len(self.features)
        public_key = tv.pubkey.get()
        plan = tv.alignment.get()
        aligned = plan["rows"] == rows and plan["digest"] == digest
        tv.alignment_ack.remote({"rows": rows, "aligned": aligned})
        if not aligned:
            raise InvalidArgument(
                f"VertLR: this provider's {rows} rows do not match the promoter's {plan['rows']} ids; "
                "run Intersection on both members' data first"
            )
        weights = np.zeros(width)
        optimizer = MemberOptimizer(param.optimizer, param.learning_rate, param.decay, param.decay_sqrt,
                                    param.penalty, param.alpha, np.ones(width, dtype=np.bool_))
        scaling, batches = self._scaling(), -(-rows // plan["batch_size"])
        for epoch, epoch_scope in tv.iterations(plan["max_iter"]):
            grouped = epoch_batches(table, plan["seed"], epoch, batches)
            for batch in range(batches):
                scope, batch_plan = epoch_scope.at(batch), BatchPlan(plan["seed"], epoch, batches, batch)
                keys, scores, _ = gather_batch(grouped, batch_plan, scaling, weights, 0.0, None)
                if not len(keys):
                    continue
                scope.provider_forward.remote(scores)
                residual = scope.encrypted_residual.get()
                if residual.public_key != public_key or len(residual) != len(keys):
                    raise InvalidArgument("VertLR: encrypted_residual is not a vector of this batch under the key")
                gradient = self._masked_round(grouped, batch_plan, scaling, keys, residual, public_key, scope)
                weights = optimizer.step(weights, gradient / len(keys))
            grouped.release()
            self.tracker.set_progress(100.0 * (epoch + 1) / plan["max_iter"], f"epoch {epoch + 1}")
            if epoch_scope.converged.get() is True:
                break
        self.weights = weights

    def _masked_round(
        self, grouped: BlockGroups, plan: BatchPlan, scaling: Scaling, keys: KeyArray, residual: EncryptedVector,
        public_key: PaillierPublicKey, scope: VertLRVariables,
    ) -> FloatArray:
        """X^T d through the promoter: send X^T [[d]] + [[r]], get it decrypted, remove r.
        X^T [[d]] is summed from every partition's product of its batch rows."""
        param = self.param
        bits = param.feature_precision_bits
        if bits is None:
            scaled = param.feature_scaling == "standard"
            bits = FEATURE_PRECISION_BITS_SCALED if scaled else FEATURE_PRECISION_BITS_RAW
        product = encrypted_gradient_sum(grouped, plan, scaling, keys, residual, bits, self._paillier_workers)
        limit = 1 << (product.bound.bit_length() + MASK_STATISTICAL_BITS)
        masks = [secrets.randbelow(2 * limit + 1) - limit for _ in range(len(product))]
        # The mask is encrypted at the product's own fixed-point scale, so it covers every bit.
        encrypted_masks = EncryptedVector(
            public_key, public_key.encrypt_integers(masks, param.workers), product.frac_bits, limit
        )
        scope.masked_gradient.remote(product + encrypted_masks)
        unwrapped = scope.decrypted_masked_gradient.get()
        if len(unwrapped) != len(masks) \
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in unwrapped):
            raise InvalidArgument(f"VertLR: decrypted_masked_gradient must be {len(masks)} integers")
        sums = np.array([float(value - mask) for value, mask in zip(unwrapped, masks, strict=True)])
        result: FloatArray = np.ldexp(sums, -product.frac_bits)
        return result

    def predict(self, data: LabeledTable) -> None:
        self._check_predict_features(data)
        id_column, scorer = data.id_column, self._linear_scorer(self.weights)

        def partial_score(block: pa.Table) -> pa.Table:
            return pa.table({id_column: block.column(id_column), PROVIDER_SCORE_COLUMN: pa.array(scorer(block))})

        schema = pa.schema([data.table.schema.field(id_column), pa.field(PROVIDER_SCORE_COLUMN, pa.float64())])
        scores = data.table.map_partitions(partial_score, schema=schema)
        # A stream of messages, one partition at a time, ended by an empty table.
        send_table(lambda index, block: self.variables.at(index).predict_forward.remote(block), scores,
                   PREDICT_STREAM_ROWS)
        return None

    def export_model(self) -> dict[str, Any]:
        return {**self._base_model(), "role": "provider"}

    def load_model(self, model: dict[str, Any]) -> None:
        self._load_base(model)
        if model.get("role") != "provider":
            raise InvalidArgument("VertLR: the provider needs the provider's model")




def _vector(value: Any, length: int, what: str) -> FloatArray:
    return PAYLOAD.finite_floats(value, length, what)

