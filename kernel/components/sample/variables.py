"""The messages of Sample, declared with their payload types (checked against transfer_variable.json)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.federation.variables import Channel, VariableSet


class SampleVariables(VariableSet, component="Sample", group="SampleTransferVariable",
                      source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """The promoter's plan of which rows each member keeps (checked by kernel.stats.partition)."""

    sample_plan = Channel(dict, src=PROMOTER, dst=(PROVIDER,))
    # A stratified plan's (id, part) table, streamed in bounded messages after the plan.
    sample_assignment = Channel(pa.Table, src=PROMOTER, dst=(PROVIDER,))
