"""The messages of Intersection, declared with their payload types (checked against transfer_variable.json)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.federation.variables import Channel, VariableSet


class IntersectionVariables(VariableSet, component="Intersection", group="IntersectionTransferVariable",
                            source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """Blinded ids both ways, then the points of the common ids in each provider's list."""

    provider_blinded_ids = Channel(np.ndarray, src=PROVIDER, dst=(PROMOTER,))
    promoter_blinded_ids = Channel(np.ndarray, src=PROMOTER, dst=(PROVIDER,))
    promoter_double_blinded_ids = Channel(np.ndarray, src=PROVIDER, dst=(PROMOTER,))
    intersection_points = Channel(np.ndarray, src=PROMOTER, dst=(PROVIDER,))
