"""DataSplit: the promoter cuts its rows into train, validate and test; providers follow.

One message, `split_plan` (promoter -> each provider): the seed and key thresholds of an
unstratified split, or the part sizes of a stratified one, whose (id, part) table then
follows on `split_assignment` as a stream of bounded messages (kernel/stats/partition.py).
The three parts are the task's data outputs in the order of its output names
(`"output": {"data": ["train", "validate", "test"]}`); a part of fraction 0 is written empty.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from kernel.components.data_split.param import DataSplitParam
from kernel.components.data_split.variables import DataSplitVariables
from kernel.constants import PROVIDER
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.partition import part, promoter_parts, provider_parts

PART_NAMES: Final = ("train", "validate", "test")
METRIC_NAMESPACE: Final = "data_split"
WHAT: Final = "DataSplit"


class _DataSplitBase(ModelBase):
    @property
    def param(self) -> DataSplitParam:
        assert isinstance(self.model_param, DataSplitParam)
        return self.model_param

    def _outputs(self, data: LabeledTable, parted: Any) -> LabeledTable:
        parts = [part(data, parted, k) for k in range(len(PART_NAMES))]
        self.more_data = list(parts[1:])
        return parts[0]


class DataSplitPromoter(_DataSplitBase):
    """Cuts its rows by split key, per label class when stratified, and tells the providers."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param = self.param
        seed = param.random_seed if param.random_seed is not None else secrets.randbits(63)
        fractions = [param.train_fraction, param.validate_fraction, param.test_fraction]
        variables = self.ctx.variables(DataSplitVariables)
        parted, sizes = promoter_parts(data, fractions, param.stratified, seed, variables.split_plan.variable,
                                       lambda index: variables.at(index).split_assignment,
                                       bool(self.ctx.roles.parties(PROVIDER)), WHAT)
        totals = {name: sum(s[k] for s in sizes.values() if k < len(s)) for k, name in enumerate(PART_NAMES)}
        self.tracker.log_metric("split", METRIC_NAMESPACE, {"rows": totals, "by_label": sizes if param.stratified
                                                            else None}, metric_type="data_split")
        return self._outputs(data, parted)


class DataSplitProvider(_DataSplitBase):
    """Cuts its rows as the promoter's plan says."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        variables = self.ctx.variables(DataSplitVariables)
        parted = provider_parts(data, variables.split_plan.variable, lambda index: variables.at(index).split_assignment,
                                self.ctx, WHAT)
        return self._outputs(data, parted)
