"""WOE: every member replaces its binned features by per-bin values; the promoter decides them.

Given a VertFeatureBinning model as input.model, the promoter encodes its own features with
the WOE its binning computed, and sends each provider one message, `provider_tables`: per
feature (by the name the promoter knows it under) one value per bin, either
- `woe`: the WOE itself, which with the bin counts tells the provider each bin's label rate;
- `blinded`: a_j * WOE + b_j, with a_j (random sign, magnitude in [e^-1, e]) and b_j (in
  [-5, 5]) drawn per feature by the promoter and never sent. The provider learns only the
  WOE up to an unknown affine map: not the WOE, not a label rate, not which end is risky.
  A model that standardises its inputs (VertLR's default) trains exactly the same on
  either, and a ScoreCard built on it gives the same scores.
The provider never sends its bin edges: it maps its own bins. Given its own exported model,
the component encodes new data without messages (docs/algorithms/credit.md).
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import numpy as np
import pyarrow as pa

from kernel.components.woe.param import WOEParam
from kernel.components.woe.variables import WOEVariables
from kernel.constants import PROVIDER
from kernel.credit.bins import BinningModel, bin_index, bin_labels, read_binning_model
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.columns import float_column

MODEL_KIND: Final = "woe"
METRIC_NAMESPACE: Final = "woe"
BLIND_LOG_SCALE: Final = 1.0
BLIND_SHIFT: Final = 5.0


class _WOEBase(ModelBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.binning: BinningModel | None = None
        # Per encoded feature: inner edges and the value of every bin.
        self.tables: dict[str, dict[str, list[float]]] = {}
        self.fitted = False

    @property
    def param(self) -> WOEParam:
        assert isinstance(self.model_param, WOEParam)
        return self.model_param

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("kind") == MODEL_KIND:
            tables = model.get("tables")
            if not isinstance(tables, dict) or not all(
                    isinstance(t, dict) and len(t.get("values", [])) == len(t.get("edges", [])) + 2
                    for t in tables.values()):
                raise InvalidArgument("WOE: the model input is a malformed WOE model")
            self.tables = {str(n): {"edges": [float(e) for e in t["edges"]], "values": [float(v) for v in t["values"]]}
                           for n, t in tables.items()}
            self.fitted = True
            self._load_own(model)
        else:
            self.binning = read_binning_model(model, "WOE")

    def _load_own(self, model: dict[str, Any]) -> None:
        """Role-specific parts of an exported WOE model."""

    def _own_columns(self, data: LabeledTable) -> list[str]:
        assert self.binning is not None
        wanted = self.param.cols if self.param.cols is not None else [
            n for n in self.binning.features if n in data.feature_columns]
        unknown = [n for n in wanted if n not in self.binning.features or n not in data.table.schema.names]
        if unknown:
            raise InvalidArgument(f"WOEParam.cols: {', '.join(unknown)} not binned features of this data")
        return wanted

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        raise InvalidArgument("WOE: give a VertFeatureBinning model (or a WOE model) as input.model")

    def transform(self, data: LabeledTable) -> LabeledTable:
        if not self.fitted:
            if self.binning is None:
                raise InvalidArgument("WOE: give a VertFeatureBinning model (or a WOE model) as input.model")
            self._fit_tables(data)
            self.fitted = True
            self.tracker.log_metric("woe", METRIC_NAMESPACE, {
                name: {"bins": bin_labels(t["edges"]), "values": t["values"]} for name, t in self.tables.items()
            }, metric_type="woe")
        return self._encode(data)

    def _fit_tables(self, data: LabeledTable) -> None:
        raise NotImplementedError

    def _encode(self, data: LabeledTable) -> LabeledTable:
        missing = [n for n in self.tables if n not in data.table.schema.names]
        if missing:
            raise InvalidArgument(f"WOE: the data lacks the encoded feature(s) {', '.join(missing)}")
        plan = {n: (np.asarray(t["edges"], dtype=np.float64), np.asarray(t["values"], dtype=np.float64))
                for n, t in self.tables.items()}
        schema = data.table.schema
        for name in plan:
            schema = schema.set(schema.get_field_index(name), pa.field(name, pa.float64()))

        def encode(block: pa.Table) -> pa.Table:
            for name, (edges, values) in plan.items():
                encoded = values[bin_index(float_column(block, name), edges)]
                block = block.set_column(block.schema.get_field_index(name), pa.field(name, pa.float64()),
                                         pa.array(encoded))
            return block

        return data.with_table(data.table.map_partitions(encode, schema=schema))

    def _base_model(self) -> dict[str, Any]:
        return {"kind": MODEL_KIND, "tables": self.tables}


class WOEPromoter(_WOEBase):
    """Encodes its own features with their WOE; sends each provider its table, plain or blinded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disclosure = "woe"

    def _fit_tables(self, data: LabeledTable) -> None:
        binning = self.binning
        assert binning is not None
        if binning.role != "promoter":
            raise InvalidArgument("WOE: the promoter needs the promoter's binning model")
        self.tables = {n: {"edges": binning.features[n].edges, "values": binning.features[n].woe}
                       for n in self._own_columns(data)}
        self.disclosure = self.param.provider_disclosure
        providers = self.ctx.roles.parties(PROVIDER)
        if providers and len(binning.provider_woe) != len(providers):
            raise InvalidArgument(
                f"WOE: the binning model describes {len(binning.provider_woe)} providers, the job has {len(providers)}"
            )
        seed = self.param.random_seed if self.param.random_seed is not None else secrets.randbits(63)
        rng = np.random.default_rng(seed)
        for k in range(len(providers)):
            tables: dict[str, np.ndarray] = {}
            for name, woe in binning.provider_woe[k].items():
                values = np.asarray(woe, dtype=np.float64)
                if self.disclosure == "blinded":
                    scale = np.exp(rng.uniform(-BLIND_LOG_SCALE, BLIND_LOG_SCALE)) * rng.choice([-1.0, 1.0])
                    values = scale * values + rng.uniform(-BLIND_SHIFT, BLIND_SHIFT)
                tables[name] = values
            self.ctx.variables(WOEVariables).provider_tables.remote({"mode": self.disclosure, "tables": tables}, idx=k)

    def export_model(self) -> dict[str, Any]:
        return {**self._base_model(), "role": "promoter", "provider_disclosure": self.disclosure}

    def _load_own(self, model: dict[str, Any]) -> None:
        if model.get("role") != "promoter":
            raise InvalidArgument("WOE: the promoter needs the promoter's WOE model")


class WOEProvider(_WOEBase):
    """Encodes its own features with the per-bin values the promoter sends; never sends its edges."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.blinded = False

    def _fit_tables(self, data: LabeledTable) -> None:
        binning = self.binning
        assert binning is not None
        if binning.role != "provider":
            raise InvalidArgument("WOE: the provider needs the provider's binning model")
        message = self.ctx.variables(WOEVariables).provider_tables.get()
        if message.get("mode") not in ("woe", "blinded") \
                or not isinstance(message.get("tables"), dict):
            raise InvalidArgument("WOE: the promoter's provider_tables are malformed")
        self.blinded = message["mode"] == "blinded"
        received: dict[str, Any] = message["tables"]
        self.tables = {}
        for name in self._own_columns(data):
            public = binning.public_names.get(name, name)
            values = received.get(public)
            bins = binning.features[name]
            if not isinstance(values, np.ndarray) or values.shape != (bins.size,) or not np.isfinite(values).all():
                raise InvalidArgument(f"WOE: the promoter sent no table of {bins.size} values for {public!r}")
            self.tables[name] = {"edges": bins.edges, "values": values.astype(np.float64).tolist()}

    def export_model(self) -> dict[str, Any]:
        return {**self._base_model(), "role": "provider", "blinded": self.blinded}

    def _load_own(self, model: dict[str, Any]) -> None:
        if model.get("role") != "provider":
            raise InvalidArgument("WOE: the provider needs the provider's WOE model")
        self.blinded = bool(model.get("blinded", False))
