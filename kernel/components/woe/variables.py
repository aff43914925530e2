"""The messages of WOE, declared with their payload types (checked against transfer_variable.json)."""

from __future__ import annotations

from pathlib import Path

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.federation.variables import Channel, VariableSet


class WOEVariables(VariableSet, component="WOE", group="WOETransferVariable",
                   source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """The per-bin values the promoter sends each provider (WOE or blinded)."""

    provider_tables = Channel(dict, src=PROMOTER, dst=(PROVIDER,))
