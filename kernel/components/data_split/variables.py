"""The messages of DataSplit, declared with their payload types (checked against transfer_variable.json)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.federation.variables import Channel, VariableSet


class DataSplitVariables(VariableSet, component="DataSplit", group="DataSplitTransferVariable",
                         source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """The promoter's plan of which rows go to which part (checked by kernel.stats.partition)."""

    split_plan = Channel(dict, src=PROMOTER, dst=(PROVIDER,))
    # A stratified plan's (id, part) table, streamed in bounded messages after the plan.
    split_assignment = Channel(pa.Table, src=PROMOTER, dst=(PROVIDER,))
