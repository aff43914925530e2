"""Sample: the promoter picks the rows to keep; providers keep the same ids.

One message, `sample_plan` (promoter -> each provider), as DataSplit's `split_plan`: the seed
and key threshold of a random sample, or the part sizes of a stratified one, whose (id, part)
table then follows on `sample_assignment` as a stream of bounded messages. Counts are exact:
round(share x rows) of every class (kernel/stats/split.py).
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from kernel.components.sample.param import SampleParam
from kernel.components.sample.variables import SampleVariables
from kernel.constants import PROVIDER
from kernel.errors import InvalidArgument
from kernel.model_base import LabeledTable, ModelBase
from kernel.stats.partition import part, promoter_parts, provider_parts

METRIC_NAMESPACE: Final = "sample"
WHAT: Final = "Sample"


class SamplePromoter(ModelBase):
    """Keeps its sampled rows and tells the providers which."""

    @property
    def param(self) -> SampleParam:
        assert isinstance(self.model_param, SampleParam)
        return self.model_param

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        param = self.param
        seed = param.random_seed if param.random_seed is not None else secrets.randbits(63)
        stratified = param.method == "stratified"
        fractions: Any = [param.fraction]
        if stratified:
            fractions = {_label_value(key): [share] for key, share in param.fractions.items()}
        variables = self.ctx.variables(SampleVariables)
        parted, sizes = promoter_parts(data, fractions, stratified, seed, variables.sample_plan.variable,
                                       lambda index: variables.at(index).sample_assignment,
                                       bool(self.ctx.roles.parties(PROVIDER)), WHAT)
        self.tracker.log_metric("sample", METRIC_NAMESPACE, {"kept": {k: v[0] if v else 0 for k, v in sizes.items()}},
                                metric_type="sample")
        return part(data, parted, 0)


class SampleProvider(ModelBase):
    """Keeps the rows the promoter's plan names."""

    def fit(self, data: LabeledTable, validate_data: LabeledTable | None = None) -> LabeledTable:
        variables = self.ctx.variables(SampleVariables)
        parted = provider_parts(data, variables.sample_plan.variable, lambda index: variables.at(index).sample_assignment,
                                self.ctx, WHAT)
        return part(data, parted, 0)


def _label_value(key: str) -> int | float | str:
    """A label value written as a JSON key ("1", "0.5") back as the number the label holds."""
    try:
        number = float(key)
    except ValueError:
        raise InvalidArgument(f"SampleParam.fractions: {key!r} is not a label value") from None
    return int(number) if number.is_integer() else number
