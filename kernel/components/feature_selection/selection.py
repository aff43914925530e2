"""FeatureSelection: every member filters its own features; the promoter ranks IV over all members.

Each member applies, to its own features, the manual lists, the missing-rate and variance
filters (computed over its rows) and the IV threshold (IVs from its VertFeatureBinning
model, given as input.model). Then:

1. `provider_survivors`  provider -> promoter: the names of its features still kept, as the
                         promoter knows them: the anonymous ids of the binning step, or the
                         real names when the provider sets reveal_feature_names
2. `provider_kept`       promoter -> provider: which of those stay; with iv_top_k the promoter
                         keeps the k features of highest IV among every member's survivors
                         (it knows the providers' IVs from binning), otherwise all of them

Given its own exported model instead of a binning model, the component applies the stored
selection to new data (no messages).
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import pyarrow as pa

from kernel.components.feature_selection.param import FeatureSelectionParam
from kernel.components.feature_selection.variables import FeatureSelectionVariables
from kernel.constants import PROVIDER
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.summary import Moments, block_moments, merge_moments

METRIC_NAMESPACE = "feature_selection"
MODEL_KIND = "feature_selection"


class _SelectionBase(ModelBase, abc.ABC):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.iv: dict[str, float] | None = None
        self.public_names: dict[str, str] = {}
        self.kept: list[str] | None = None
        self.dropped: dict[str, str] = {}
        # A provider whose binning WOE and IV stayed at the promoter: the promoter applies its IV filters.
        self.iv_withheld = False

    @property
    def param(self) -> FeatureSelectionParam:
        assert isinstance(self.model_param, FeatureSelectionParam)
        return self.model_param

    # -- the rule table: data alone fits; data + binning model fits with IV; data + own model applies
    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        survivors = self._local_filters(data)
        self.kept = self._coordinate(data, survivors)
        self.tracker.log_metric("selection", METRIC_NAMESPACE, {"kept": self.kept, "dropped": self.dropped},
                                metric_type="selection")
        return self._apply(data)

    def transform(self, data: LabeledTable) -> LabeledTable:
        if self.kept is None:
            return self.fit(data)
        return self._apply(data)

    def _apply(self, data: LabeledTable) -> LabeledTable:
        assert self.kept is not None
        missing = [name for name in self.kept if name not in data.table.schema.names]
        if missing:
            raise InvalidArgument(f"FeatureSelection: the data lacks the selected feature(s) {', '.join(missing)}")
        label = [data.label_column] if data.label_column else []
        table = data.table.select([data.id_column, *label, *self.kept])
        return data.with_table(table, feature_columns=tuple(self.kept))

    @abc.abstractmethod
    def _coordinate(self, data: LabeledTable, survivors: list[str]) -> list[str]:
        """The promoter's and the providers' halves of the cross-member selection."""

    # -- local filters ---------------------------------------------------------------------------
    def _local_filters(self, data: LabeledTable) -> list[str]:
        param = self.param
        features = list(data.feature_columns)
        self.dropped = {}
        for field, names in (("manual_keep", param.manual_keep or []), ("manual_drop", param.manual_drop)):
            unknown = [n for n in names if n not in features]
            if unknown:
                raise InvalidArgument(f"FeatureSelectionParam.{field}: {', '.join(unknown)} not among the features")
        for name in features:
            if (param.manual_keep is not None and name not in param.manual_keep) or name in param.manual_drop:
                self.dropped[name] = "manual"
        survivors = [f for f in features if f not in self.dropped]
        if survivors and (param.max_missing_rate is not None or param.min_variance is not None):
            moments = self._moments(data, survivors)
            for name in survivors:
                m = moments[name]
                rows = m.count + m.missing
                if param.max_missing_rate is not None and rows and m.missing / rows > param.max_missing_rate:
                    self.dropped[name] = "missing_rate"
                elif param.min_variance is not None and (m.variance() or 0.0) < param.min_variance:
                    self.dropped[name] = "variance"
            survivors = [f for f in survivors if f not in self.dropped]
        if param.iv_threshold is not None or param.iv_top_k is not None:
            if self.iv is None:
                raise InvalidArgument(
                    "FeatureSelectionParam.iv_threshold/iv_top_k: give a VertFeatureBinning model as input.model"
                )
        if param.iv_threshold is not None and not self.iv_withheld:
            assert self.iv is not None
            for name in survivors:
                if name in self.iv and self.iv[name] < param.iv_threshold:
                    self.dropped[name] = "iv_threshold"
            survivors = [f for f in survivors if f not in self.dropped]
        return survivors

    @staticmethod
    def _moments(data: LabeledTable, names: list[str]) -> Moments:
        def block(rows: pa.Table) -> Moments:
            return block_moments({n: rows.column(n).to_numpy(zero_copy_only=False) for n in names})

        result: Moments = data.table.select(names).reduce(block, merge_moments)
        return result

    # -- models --------------------------------------------------------------------------------
    def export_model(self) -> dict[str, Any]:
        return {"kind": MODEL_KIND, "kept": list(self.kept or []), "dropped": dict(self.dropped)}

    def load_model(self, model: dict[str, Any]) -> None:
        if model.get("kind") == MODEL_KIND:
            self.kept = [str(n) for n in model.get("kept", [])]
            self.dropped = {str(k): str(v) for k, v in dict(model.get("dropped", {})).items()}
            self._load_selection(model)
        elif isinstance(model.get("bins"), dict):
            self.iv = {str(n): float(b.get("iv", 0.0)) for n, b in model["bins"].items()}
            self.iv_withheld = bool(model.get("woe_withheld", False))
            self._load_binning(model)
        else:
            raise InvalidArgument("FeatureSelection: input.model must be a VertFeatureBinning or FeatureSelection model")

    def _load_selection(self, model: dict[str, Any]) -> None:
        """Role-specific parts of an exported selection model."""

    def _load_binning(self, model: dict[str, Any]) -> None:
        """Role-specific parts of a binning model."""


class FeatureSelectionPromoter(_SelectionBase):
    """Filters its own features and decides the global IV ranking over every member."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # IVs of the providers' features as the promoter knows them (from its binning model).
        self.provider_iv: list[dict[str, float]] = []
        self.provider_kept: list[list[str]] = []
        self.provider_iv_withheld = False

    def _load_binning(self, model: dict[str, Any]) -> None:
        self.provider_iv_withheld = model.get("provider_woe") is False
        self.provider_iv = [{str(n): float(b.get("iv", 0.0)) for n, b in dict(features).items()}
                            for features in model.get("provider_bins", [])]

    def _load_selection(self, model: dict[str, Any]) -> None:
        self.provider_kept = [list(k) for k in model.get("provider_kept", [])]

    def _coordinate(self, data: LabeledTable, survivors: list[str]) -> list[str]:
        providers = self.ctx.roles.parties(PROVIDER)
        theirs: list[list[str]] = []
        if providers:
            for k, message in enumerate(self.ctx.variables(FeatureSelectionVariables).provider_survivors.get_all()):
                if not all(isinstance(n, str) for n in message):
                    raise InvalidArgument(f"FeatureSelection: provider {k}'s provider_survivors must be names")
                theirs.append(message)
        threshold = self.param.iv_threshold
        if threshold is not None and self.provider_iv_withheld:
            # The providers' IVs stayed here (binning's provider_woe false), so they cannot
            # filter on them: the promoter applies its threshold to their features.
            theirs = [[n for n in names if (self.provider_iv[k] if k < len(self.provider_iv) else {}).get(n, threshold)
                       >= threshold] for k, names in enumerate(theirs)]
        kept_own, kept_theirs = survivors, theirs
        top_k = self.param.iv_top_k
        if top_k is not None:
            own_iv = self.iv or {}
            ranked = [(own_iv.get(n, -np.inf), -1, n) for n in survivors]
            for k, names in enumerate(theirs):
                known = self.provider_iv[k] if k < len(self.provider_iv) else {}
                ranked += [(known.get(n, -np.inf), k, n) for n in names]
            chosen = sorted(ranked, key=lambda item: -item[0])[:top_k]
            chosen_set = {(k, n) for _, k, n in chosen}
            kept_own = [n for n in survivors if (-1, n) in chosen_set]
            kept_theirs = [[n for n in names if (k, n) in chosen_set] for k, names in enumerate(theirs)]
            for name in survivors:
                if name not in kept_own:
                    self.dropped[name] = "iv_top_k"
        for k, names in enumerate(kept_theirs):
            self.ctx.variables(FeatureSelectionVariables).provider_kept.remote(names, idx=k)
        self.provider_kept = kept_theirs
        if providers:
            self.tracker.log_metric("provider_selection", METRIC_NAMESPACE, kept_theirs, metric_type="selection")
        return kept_own

    def export_model(self) -> dict[str, Any]:
        return {**super().export_model(), "provider_kept": self.provider_kept}


class FeatureSelectionProvider(_SelectionBase):
    """Filters its own features; the promoter sees their names only if this member allows it."""

    def _load_binning(self, model: dict[str, Any]) -> None:
        self.public_names = {str(k): str(v) for k, v in dict(model.get("public_names", {})).items()}

    def _public_name(self, name: str, position: int) -> str:
        if name in self.public_names:
            return self.public_names[name]  # as the promoter already knows it from binning
        return name if self.param.reveal_feature_names else f"feature_{position}"

    def _coordinate(self, data: LabeledTable, survivors: list[str]) -> list[str]:
        positions = {name: i for i, name in enumerate(data.feature_columns)}
        public = {self._public_name(name, positions[name]): name for name in survivors}
        tv = self.ctx.variables(FeatureSelectionVariables)
        tv.provider_survivors.remote(list(public))
        answer = tv.provider_kept.get()
        if not all(isinstance(n, str) and n in public for n in answer):
            raise InvalidArgument("FeatureSelection: provider_kept must name features this provider sent")
        kept = [public[n] for n in answer]
        reason = "iv_top_k" if self.param.iv_top_k is not None else "iv_threshold"
        for name in survivors:
            if name not in kept:
                self.dropped[name] = reason
        return [name for name in survivors if name in kept]
