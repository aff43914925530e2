"""The messages of FeatureSelection, declared with their payload types (checked against transfer_variable.json)."""

from __future__ import annotations

from pathlib import Path

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.federation.variables import Channel, VariableSet


class FeatureSelectionVariables(VariableSet, component="FeatureSelection", group="FeatureSelectionTransferVariable",
                                source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """The names of the features a provider kept, and the ones the promoter keeps of them."""

    provider_survivors = Channel(list, src=PROVIDER, dst=(PROMOTER,))
    provider_kept = Channel(list, src=PROMOTER, dst=(PROVIDER,))
