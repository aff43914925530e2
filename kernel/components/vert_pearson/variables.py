"""The messages of VertPearson, declared with their payload types (checked against transfer_variable.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.errors import InvalidArgument
from kernel.federation.variables import Channel, VariableSet
from kernel.security.paillier import PaillierPublicKey


def _public_key(value: Any, what: str) -> PaillierPublicKey:
    if not isinstance(value, PaillierPublicKey):
        raise InvalidArgument("VertPearson: the promoter's pubkey is not a Paillier public key")
    return value


class VertPearsonVariables(VariableSet, component="VertPearson", group="VertPearsonTransferVariable",
                           source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """Key and alignment, the promoter's encrypted z-scores, each provider's products, the shared matrix."""

    pubkey = Channel(PaillierPublicKey, src=PROMOTER, dst=(PROVIDER,), check=_public_key)
    # A provider answers any plan, aligned or not, so that the promoter learns why it stopped.
    alignment = Channel(object, src=PROMOTER, dst=(PROVIDER,))
    alignment_ack = Channel(dict, src=PROVIDER, dst=(PROMOTER,))
    encrypted_features = Channel(list, src=PROMOTER, dst=(PROVIDER,))
    encrypted_products = Channel(dict, src=PROVIDER, dst=(PROMOTER,))
    correlation = Channel(np.ndarray, src=PROMOTER, dst=(PROVIDER,))
