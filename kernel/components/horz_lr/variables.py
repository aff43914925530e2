"""The messages of HorzLR, declared with their payload types (checked against transfer_variable.json).

They carry the masked-sum protocol of `kernel.blocks.secure_sum`, which checks every
envelope and vector it receives itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernel.constants import ARBITER, PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.federation.variables import Channel, VariableSet

MEMBERS = (PROMOTER, PROVIDER)


class HorzLRVariables(VariableSet, component="HorzLR", group="HorzLRTransferVariable",
                      source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """Hello (mask key, features), the relayed keys, masked sums per round, the arbiter's answers."""

    public_key = Channel(dict, src=MEMBERS, dst=(ARBITER,))
    peer_keys = Channel(dict, src=ARBITER, dst=MEMBERS)
    masked_sum = Channel(np.ndarray, src=MEMBERS, dst=(ARBITER,))
    aggregate = Channel(dict, src=ARBITER, dst=MEMBERS)
