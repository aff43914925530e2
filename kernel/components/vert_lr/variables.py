"""The messages of VertLR, declared with their payload types (checked against transfer_variable.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from kernel.constants import PROMOTER, PROVIDER, TRANSFER_VARIABLE_FILE
from kernel.errors import InvalidArgument
from kernel.federation.variables import Channel, VariableSet
from kernel.security.paillier import EncryptedVector, PaillierPublicKey


def _public_key(value: Any, what: str) -> PaillierPublicKey:
    if not isinstance(value, PaillierPublicKey):
        raise InvalidArgument("VertLR: the promoter's pubkey is not a Paillier public key")
    return value


def _plan(value: Any, what: str) -> dict[str, Any]:
    """The promoter's alignment message, checked."""
    if not isinstance(value, dict):
        raise InvalidArgument("VertLR: alignment must be a dict")
    for key in ("rows", "seed", "batch_size", "max_iter"):
        if not isinstance(value.get(key), int) or isinstance(value.get(key), bool) or value[key] < 0:
            raise InvalidArgument(f"VertLR: alignment.{key} must be a non-negative integer")
    if value["batch_size"] < 1 or value["max_iter"] < 1:
        raise InvalidArgument("VertLR: alignment.batch_size and max_iter must be at least 1")
    if not isinstance(value.get("digest"), str):
        raise InvalidArgument("VertLR: alignment.digest must be a string")
    return value


class VertLRVariables(VariableSet, component="VertLR", group="VertLRTransferVariable",
                      source=Path(__file__).with_name(TRANSFER_VARIABLE_FILE)):
    """Setup (key, alignment), then per batch: forward, residual, masked gradient; per epoch: converged."""

    pubkey = Channel(PaillierPublicKey, src=PROMOTER, dst=(PROVIDER,), check=_public_key)
    alignment = Channel(dict, src=PROMOTER, dst=(PROVIDER,), check=_plan)
    alignment_ack = Channel(dict, src=PROVIDER, dst=(PROMOTER,))
    provider_forward = Channel(np.ndarray, src=PROVIDER, dst=(PROMOTER,))
    encrypted_residual = Channel(EncryptedVector, src=PROMOTER, dst=(PROVIDER,))
    masked_gradient = Channel(EncryptedVector, src=PROVIDER, dst=(PROMOTER,))
    decrypted_masked_gradient = Channel(list, src=PROMOTER, dst=(PROVIDER,))
    converged = Channel(bool, src=PROMOTER, dst=(PROVIDER,))
    predict_forward = Channel(pa.Table, src=PROVIDER, dst=(PROMOTER,))
