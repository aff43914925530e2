"""The messages of Distribution, declared with their payload types (checked against transfer_variable.json).

They carry the masked-sum protocol of `kernel.blocks.secure_sum`, which checks every
envelope and vector it receives itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernel.constants import ARBITER, PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.federation.variables import Channel, VariableSet

MEMBERS = (PROMOTER, PROVIDER)


class DistributionVariables(VariableSet, component="Distribution", group="DistributionTransferVariable",
                            source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """Hello (features and ranges), common bin edges, masked sums, the merged description."""

    feature_range = Channel(dict, src=MEMBERS, dst=(ARBITER,))
    bin_edges = Channel(dict, src=ARBITER, dst=MEMBERS)
    local_statistics = Channel(np.ndarray, src=MEMBERS, dst=(ARBITER,))
    global_summary = Channel(dict, src=ARBITER, dst=MEMBERS)
