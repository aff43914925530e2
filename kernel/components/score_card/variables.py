"""The messages of ScoreCard, declared with their payload types (checked against transfer_variable.json)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.federation.variables import Channel, VariableSet


class ScoreCardVariables(VariableSet, component="ScoreCard", group="ScoreCardTransferVariable",
                         source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """Each provider's table of id and points."""

    provider_points = Channel(pa.Table, src=PROVIDER, dst=(PROMOTER,))
