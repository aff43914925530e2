"""The messages of Evaluation's federation metrics, declared with their payload types (checked against transfer_variable.json).

The masked sums are checked where they are added (`kernel.blocks.secure_sum`), the other
payloads field by field in `kernel.components.evaluation.federation`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.federation.variables import Channel, VariableSet


class EvaluationVariables(VariableSet, component="Evaluation", group="EvaluationTransferVariable",
                          source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """Hello (rows, splits, public key), the relayed keys, the masked sums, the metrics."""

    federation_hello = Channel(dict, src=PROVIDER, dst=(PROMOTER,))
    federation_keys = Channel(dict, src=PROMOTER, dst=(PROVIDER,))
    federation_sums = Channel(np.ndarray, src=PROVIDER, dst=(PROMOTER,))
    federation_metrics = Channel(dict, src=PROMOTER, dst=(PROVIDER,))
