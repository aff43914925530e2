"""ScoreCard: every member turns its share of a VertLR model into points; the promoter adds them up.

Inputs: the data VertLR read (WOE-encoded features) and, as input.model, the VertLR model
and the WOE model (or, in a later job, this component's own model). Each member computes
for each of its features the points of every bin (kernel/credit/points.py) and keeps the
table: the promoter never sees a provider's table, nor a provider the promoter's. A
provider folds its constant (from its features' means) into its base and sends
`provider_points`, a table of (id, its points for that row), as a stream: one partition at a
time in messages of at most POINTS_STREAM_ROWS rows, ended by an empty table. The promoter
writes each message to the task's scratch area and joins the table read back from there
(kernel/blocks/table_stream.py), so neither driver holds more than one message. The
promoter writes id, label, the score, and `predict_score`, the event probability the score
stands for (so Evaluation reads a ScoreCard output as it reads VertLR's).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kernel.blocks.table_stream import receive_table, send_table
from kernel.components.score_card.param import ScoreCardParam
from kernel.components.score_card.variables import ScoreCardVariables
from kernel.computing import Table
from kernel.constants import PROVIDER
from kernel.credit.bins import bin_labels
from kernel.credit.points import PointScale, effective_linear, rounded
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.columns import float_column

MODEL_KIND: Final = "score_card"
METRIC_NAMESPACE: Final = "score_card"
PREDICT_SCORE_COLUMN: Final = "predict_score"
SHARE_COLUMN: Final = "__weft_points"
# Rows of one provider_points message: 1 MiB of ids and points when an id takes 8 bytes.
POINTS_STREAM_ROWS: Final = 65_536


class _ScoreCardBase(ModelBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.linear: dict[str, Any] | None = None  # the VertLR model
        self.woe: dict[str, dict[str, list[float]]] = {}  # the WOE model's tables
        # Per feature: coefficient on its values, bins, values and points; and this member's base.
        self.card: dict[str, dict[str, Any]] = {}
        self.base_points = 0.0
        self.scale: PointScale | None = None

    @property
    def param(self) -> ScoreCardParam:
        assert isinstance(self.model_param, ScoreCardParam)
        return self.model_param

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("kind") == MODEL_KIND:
            try:
                self.card = {str(n): dict(c) for n, c in model["card"].items()}
                self.base_points = float(model["base_points"])
                self.scale = PointScale(float(model["base_score"]), float(model["base_odds"]), float(model["pdo"]))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InvalidArgument(f"ScoreCard: the model input is malformed ({exc})") from None
        elif model.get("kind") == "woe":
            self.woe = {str(n): dict(t) for n, t in dict(model.get("tables", {})).items()}
        elif {"features", "weights", "mean", "scale"} <= set(model):
            self.linear = model
        else:
            raise InvalidArgument("ScoreCard: input.model takes a VertLR model and a WOE model (or a ScoreCard model)")

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable | None:
        raise InvalidArgument("ScoreCard: give the VertLR and WOE models as input.model")

    def predict(self, data: LabeledTable) -> LabeledTable | None:
        return self.transform(data)

    def transform(self, data: LabeledTable) -> LabeledTable | None:
        if not self.card:
            self._build_card()
        return self._score(data)

    def _build_card(self) -> None:
        param, model = self.param, self.linear
        if model is None:
            raise InvalidArgument("ScoreCard: give the VertLR model as input.model")
        self.scale = PointScale(param.base_score, param.base_odds, param.pdo)
        features = [str(f) for f in model["features"]]
        coefficients, constant = effective_linear(np.asarray(model["weights"]), np.asarray(model["mean"]),
                                                  np.asarray(model["scale"]))
        self.card = {}
        for name, coefficient in zip(features, coefficients.tolist(), strict=True):
            table = self.woe.get(name)
            values = list(table["values"]) if table else []
            self.card[name] = {
                "coefficient": coefficient, "bins": bin_labels(list(table["edges"])) if table else [],
                "values": values,
                "points": rounded(self.scale.points(coefficient, np.asarray(values)), param.points_decimals).tolist(),
            }
        self.base_points = float(rounded(self._base(model, constant), param.points_decimals))
        self.tracker.log_metric("points", METRIC_NAMESPACE, {"base": self.base_points, "features": self.card},
                                metric_type="score_card")

    def _base(self, model: dict[str, Any], constant: float) -> float:
        raise NotImplementedError

    def _points_table(self, data: LabeledTable) -> Table:
        """(id, this member's points) of every row, computed where the rows are."""
        missing = [n for n in self.card if n not in data.table.schema.names]
        if missing:
            raise InvalidArgument(f"ScoreCard: the data lacks the model's feature(s) {', '.join(missing)}")
        assert self.scale is not None
        scale, decimals, id_column = self.scale, self.param.points_decimals, data.id_column
        plan = {n: float(c["coefficient"]) for n, c in self.card.items()}
        base = self.base_points

        def points(block: pa.Table) -> pa.Table:
            total = np.full(block.num_rows, base)
            for name, coefficient in plan.items():
                total = total + rounded(scale.points(coefficient, float_column(block, name)), decimals)
            return pa.table({id_column: block.column(id_column), SHARE_COLUMN: pa.array(total)})

        schema = pa.schema([data.table.schema.field(id_column), pa.field(SHARE_COLUMN, pa.float64())])
        return data.table.map_partitions(points, schema=schema)

    def _score(self, data: LabeledTable) -> LabeledTable | None:
        raise NotImplementedError

    def export_model(self) -> dict[str, Any]:
        assert self.scale is not None
        return {"kind": MODEL_KIND, "card": self.card, "base_points": self.base_points,
                "base_score": self.scale.base_score, "base_odds": self.scale.base_odds, "pdo": self.scale.pdo}


class ScoreCardPromoter(_ScoreCardBase):
    """Holds the intercept's base points and its own tables; adds every provider's points per row."""

    def _base(self, model: dict[str, Any], constant: float) -> float:
        if model.get("role") != "promoter":
            raise InvalidArgument("ScoreCard: the promoter needs the promoter's VertLR model")
        assert self.scale is not None
        return self.scale.base(float(model.get("intercept", 0.0)) + constant)

    def _score(self, data: LabeledTable) -> LabeledTable:
        assert self.scale is not None
        id_column, label, name = data.id_column, data.label_column, self.param.score_column
        scores = self._points_table(data)
        shares = [SHARE_COLUMN]
        for k in range(len(self.ctx.roles.parties(PROVIDER))):
            column = f"{SHARE_COLUMN}_{k}"
            scores = scores.join(self._provider_table(k, data, column))
            shares.append(column)
        expected = data.table.count()
        if len(shares) > 1 and scores.count() != expected:
            raise InvalidArgument(f"ScoreCard: {expected - scores.count()} of the promoter's {expected} rows have no "
                                  "points from every provider; run Intersection on this data too")
        if label is not None:
            scores = scores.join(data.table.select([label]))
        scale = self.scale

        def finish(block: pa.Table) -> pa.Table:
            total = np.sum([block.column(c).to_numpy(zero_copy_only=False) for c in shares], axis=0)
            columns: dict[str, Any] = {id_column: block.column(id_column)}
            if label is not None:
                columns[label] = block.column(label)
            columns[name] = pa.array(np.asarray(total, dtype=np.float64))
            columns[PREDICT_SCORE_COLUMN] = pa.array(scale.probability(total))
            return pa.table(columns)

        fields = [data.table.schema.field(id_column)] + ([data.table.schema.field(label)] if label else []) + [
            pa.field(name, pa.float64()), pa.field(PREDICT_SCORE_COLUMN, pa.float64())]
        table = scores.map_partitions(finish, schema=pa.schema(fields))
        self._log_distribution(table, name)
        return LabeledTable(table, label, ())

    def _log_distribution(self, table: Table, name: str) -> None:
        def extremes(block: pa.Table) -> tuple[float, float, float, int]:
            values = block.column(name).to_numpy(zero_copy_only=False)
            if not len(values):
                return np.inf, -np.inf, 0.0, 0
            return float(values.min()), float(values.max()), float(values.sum()), len(values)

        low, high, total, rows = table.reduce(extremes, lambda a, b: (min(a[0], b[0]), max(a[1], b[1]),
                                                                      a[2] + b[2], a[3] + b[3]))
        self.tracker.log_metric("scores", METRIC_NAMESPACE, {"rows": rows, "min": low if rows else None,
                                                             "max": high if rows else None,
                                                             "mean": total / rows if rows else None})

    def _provider_table(self, k: int, data: LabeledTable, column: str) -> Table:
        """Provider k's stream of (id, points) tables, each checked, written part by part to the
        scratch area and read back as a Table of this session (the driver holds one message)."""
        variables = self.ctx.variables(ScoreCardVariables)
        id_column = data.id_column
        id_type = data.table.schema.field(id_column).type

        def checked(message: pa.Table, index: int) -> pa.Table:
            if message.num_columns != 2:
                raise InvalidArgument(f"ScoreCard: provider {k}'s provider_points message {index} must be a table "
                                      f"of id and points, got columns {', '.join(message.schema.names) or 'none'}")
            if message.schema.field(0).type != id_type or not pa.types.is_floating(message.schema.field(1).type):
                raise InvalidArgument(f"ScoreCard: provider {k}'s provider_points message {index} has ids of "
                                      f"{message.schema.field(0).type} (the promoter's are {id_type}) or "
                                      "non-float points")
            return pa.table({id_column: message.column(0), column: pc.cast(message.column(1), pa.float64())})

        schema = pa.schema([pa.field(id_column, id_type), pa.field(column, pa.float64())])
        # One part directory per flow and provider: a SPARK table reads its parts lazily.
        name = f"score_card_points.{self.ctx.flow.flow_id}.{k}"
        table, _ = receive_table(lambda index: variables.at(index).provider_points.get(idx=k), checked,
                                 self.ctx.scratch(), self.ctx.computing, name, schema)
        return table


class ScoreCardProvider(_ScoreCardBase):
    """Keeps its tables; sends the promoter only its points per row (its constant folded in)."""

    def _base(self, model: dict[str, Any], constant: float) -> float:
        if model.get("role") != "provider":
            raise InvalidArgument("ScoreCard: the provider needs the provider's VertLR model")
        assert self.scale is not None
        return -self.scale.factor * constant

    def _score(self, data: LabeledTable) -> None:
        variables = self.ctx.variables(ScoreCardVariables)
        send_table(lambda index, block: variables.at(index).provider_points.remote(block), self._points_table(data),
                   POINTS_STREAM_ROWS)
        return None
